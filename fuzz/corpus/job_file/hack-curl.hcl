# curl under a tight sandbox, against a local server (a prestart sidecar in the same group),
# because there is no internet to reach. curl gets `stdio rpath inet dns`: sockets and name
# resolution, but no exec, no writes, no fork and no threads.
job "curl" {
  type = "batch"

  group "group" {
    network {
      port "http" {}
    }

    task "server" {
      driver      = "pledge"
      user        = "nobody"
      kill_signal = "SIGINT" # http.server exits cleanly on SIGINT (KeyboardInterrupt)

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      config {
        command  = "/usr/bin/python3"
        args     = ["-m", "http.server", "${NOMAD_PORT_http}", "--bind", "${NOMAD_IP_http}", "--directory", "${NOMAD_TASK_DIR}"]
        promises = "stdio rpath inet"
        unveil   = ["r:/etc/mime.types", "r:${NOMAD_TASK_DIR}"]
      }

      template {
        destination = "local/index.html"
        data        = <<EOH
<!doctype html>
<html>
  <title>Example Domain</title>
</html>
EOH
      }
    }

    task "curl" {
      driver = "pledge"
      user   = "nobody"

      config {
        command  = "/usr/bin/curl"
        args     = ["--silent", "--show-error", "--retry", "30", "--retry-connrefused", "--retry-delay", "1", "http://${NOMAD_ADDR_http}/"]
        promises = "stdio rpath inet dns"
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
