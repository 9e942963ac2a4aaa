args = [
  "-m",
  "http.server",
  "8181",
  "--directory",
  "/var/lib/nomad/alloc/5f1c0a2e-8d4b-4f3a-9c1e-2b7d6e5a4f30/http/local"
]
command = "python3"
importance = "low"
promises = "stdio rpath inet"
unveil = [
  "r:/var/lib/nomad/alloc/5f1c0a2e-8d4b-4f3a-9c1e-2b7d6e5a4f30/http/local",
  "r:/etc/mime.types"
]
