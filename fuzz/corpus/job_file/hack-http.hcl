# A static web server, sandboxed: python3's http.server runs as `nobody` and may only make the
# system calls of `stdio rpath inet` (no exec, no writes, no fork) and read only what is unveiled
# (its own task dir and /etc/mime.types; the interpreter and its libraries are unveiled by the
# driver). It is the README's first command:
#
#   cargo run --release -p pledge-grpc --bin nomad-pledge-driver -- run hack/http.hcl
#
# The runner prints the URL; Ctrl-C stops the task. Under Nomad: `nomad job run hack/http.hcl`.
job "http" {
  group "web" {
    network {
      mode = "host"
      # Dynamic: Nomad (or the local runner) picks a free port; NOMAD_PORT_http holds it.
      port "http" {}
    }

    task "server" {
      driver      = "pledge"
      user        = "nobody"
      kill_signal = "SIGINT" # http.server exits cleanly on SIGINT (KeyboardInterrupt)

      config {
        command    = "/usr/bin/python3"
        args       = ["-m", "http.server", "${NOMAD_PORT_http}", "--bind", "${NOMAD_IP_http}", "--directory", "${NOMAD_TASK_DIR}"]
        promises   = "stdio rpath inet"
        unveil     = ["r:/etc/mime.types", "r:${NOMAD_TASK_DIR}"]
        importance = "low"
      }

      resources {
        memory     = 128
        memory_max = 200
      }

      template {
        destination = "local/index.html"
        data        = <<EOH
<!doctype html>
<html>
  <title>example</title>
  <body><p>Hello, friend! This page is served from inside a pledge sandbox.</p></body>
</html>
EOH
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
