# Expected to FAIL: `cat /etc/passwd` runs as root with promise rpath, but /etc/passwd is not
# unveiled, so Landlock denies the open (EACCES) even to root. The task exits 1 with
# "Permission denied"; the local runner then prints the hint to add unveil "r:/etc/passwd".
job "passwd" {
  type = "sysbatch"

  group "group" {
    task "cat" {
      driver = "pledge"
      user   = "root"

      config {
        command  = "/bin/cat"
        args     = ["/etc/passwd"]
        promises = "stdio rpath"
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
