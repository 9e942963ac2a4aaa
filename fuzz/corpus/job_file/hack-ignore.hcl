# A task that ignores SIGINT and SIGTERM: stopping it waits kill_timeout (3s here), then the
# driver kills the whole cgroup. It prints "ignoring SIGINT and SIGTERM" once its handlers are
# in place.
job "ignore" {
  group "group" {
    task "ignore" {
      driver       = "pledge"
      kill_timeout = "3s"

      config {
        command  = "/usr/bin/python3"
        args     = ["${NOMAD_TASK_DIR}/ignore.py"]
        promises = "stdio rpath tty"
        unveil   = ["r:${NOMAD_TASK_DIR}"]
      }

      template {
        destination = "local/ignore.py"
        data        = <<EOH
import signal
import sys

if __name__ == '__main__':
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ignoring SIGINT and SIGTERM", flush=True)
    signal.pause()
EOH
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
