# A service in bridge networking: the task sees port 8181 in the allocation's network namespace
# (joined by the driver), Nomad maps a host port to it and registers the `pybridge` service
# with an HTTP check. The local runner has no CNI: it runs the group in host networking with
# the `to` port as the host port, and says so.
job "bridge" {
  group "group" {
    network {
      mode = "bridge"
      port "http" {
        to = 8181
      }
    }

    service {
      provider = "nomad"
      name     = "pybridge"
      port     = "http"

      check {
        type     = "http"
        path     = "/index.html"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "server" {
      driver      = "pledge"
      user        = "nobody"
      kill_signal = "SIGINT" # http.server exits cleanly on SIGINT (KeyboardInterrupt)

      config {
        command  = "/usr/bin/python3"
        args     = ["-m", "http.server", "8181", "--directory", "${NOMAD_TASK_DIR}"]
        promises = "stdio rpath inet"
        unveil   = ["r:/etc/mime.types", "r:${NOMAD_TASK_DIR}"]
      }

      template {
        destination = "local/index.html"
        data        = <<EOH
<!doctype html>
<html>
  <title>bridge mode</title>
  <body><p>Hello from the allocation's network namespace.</p></body>
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
