# Shows the task's private pid namespace: `ps` sees only itself (a header and one line), not
# the host's processes. /etc/passwd is unveiled only so ps can print user names.
job "ps" {
  type = "batch"

  group "group" {
    task "ps" {
      driver = "pledge"
      user   = "root"

      config {
        command  = "/bin/ps"
        args     = ["aux"]
        promises = "stdio rpath"
        unveil   = ["r:/proc", "r:/etc/passwd", "r:/etc/nsswitch.conf"]
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
