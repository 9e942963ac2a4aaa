# Shows where the driver placed the task: its own cgroup, named after the allocation and task
# as Nomad names them (nomad.slice/share.slice/<alloc>.<task>.scope on cgroups v2).
job "cgroup" {
  type = "batch"

  group "group" {
    task "cat" {
      driver = "pledge"

      config {
        command  = "/bin/cat"
        args     = ["/proc/self/cgroup"]
        promises = "stdio rpath"
        unveil   = ["r:/proc/self/cgroup"]
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
