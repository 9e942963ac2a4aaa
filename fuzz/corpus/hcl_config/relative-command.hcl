args = [
  "--port",
  "$${NOMAD_PORT_http}"
]
command = "./run.sh"
