args = [
  "-sS",
  "http://127.0.0.1:8181/index.html"
]
command = "curl"
promises = "stdio rpath inet dns sendfd"
