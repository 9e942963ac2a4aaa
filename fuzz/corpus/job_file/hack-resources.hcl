# The original driver's five resource cases: each task prints one interface file of its own
# cgroup, found from /proc/self/cgroup, on cgroups v2 (the v2 file) or v1 (the v1 file), so the
# job shows what the driver wrote:
#   memory.max           memory.max / memory.limit_in_bytes: 209715200 (200 MiB, hard)
#   memory.max.oversub   memory.max / memory.limit_in_bytes: 262144000 (memory_max 250 MiB, hard)
#   memory.low.oversub   memory.low / memory.soft_limit_in_bytes: 157286400 (memory 150 MiB, soft)
#   cpu.max              cpu.weight / cpu.shares: the weight for 1000 MHz (a hard cpu.max cap only with the plugin's cpu_hard_limit)
#   cpu.max.cores        cpuset.cpus / cpuset.cpus: the one reserved core
#
# The tasks need a shell and its tools (promises proc exec, unveil rx:/usr/bin) only to find the
# file; the limits themselves are applied by the driver before the task runs.
job "resources" {
  type = "batch"

  group "group" {
    task "memory.max" {
      driver = "pledge"

      config {
        command  = "/bin/sh"
        args     = ["-c", "if [ -e /sys/fs/cgroup/cgroup.controllers ]; then f=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/memory.max; else f=/sys/fs/cgroup/memory$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' /proc/self/cgroup | cut -d: -f3)/memory.limit_in_bytes; fi; echo \"$f: $(cat $f)\""]
        promises = "stdio rpath proc exec"
        unveil   = ["rx:/usr/bin", "rx:/bin", "r:/proc", "r:/sys/fs/cgroup"]
      }

      resources {
        cpu    = 100
        memory = 200
      }
    }

    task "memory.max.oversub" {
      driver = "pledge"

      config {
        command  = "/bin/sh"
        args     = ["-c", "if [ -e /sys/fs/cgroup/cgroup.controllers ]; then f=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/memory.max; else f=/sys/fs/cgroup/memory$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' /proc/self/cgroup | cut -d: -f3)/memory.limit_in_bytes; fi; echo \"$f: $(cat $f)\""]
        promises = "stdio rpath proc exec"
        unveil   = ["rx:/usr/bin", "rx:/bin", "r:/proc", "r:/sys/fs/cgroup"]
      }

      resources {
        cpu        = 100
        memory     = 150
        memory_max = 250
      }
    }

    task "memory.low.oversub" {
      driver = "pledge"

      config {
        command  = "/bin/sh"
        args     = ["-c", "if [ -e /sys/fs/cgroup/cgroup.controllers ]; then f=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/memory.low; else f=/sys/fs/cgroup/memory$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' /proc/self/cgroup | cut -d: -f3)/memory.soft_limit_in_bytes; fi; echo \"$f: $(cat $f)\""]
        promises = "stdio rpath proc exec"
        unveil   = ["rx:/usr/bin", "rx:/bin", "r:/proc", "r:/sys/fs/cgroup"]
      }

      resources {
        cpu        = 100
        memory     = 150
        memory_max = 250
      }
    }

    task "cpu.max" {
      driver = "pledge"

      config {
        command  = "/bin/sh"
        args     = ["-c", "if [ -e /sys/fs/cgroup/cgroup.controllers ]; then f=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/cpu.weight; else f=/sys/fs/cgroup/cpu$(grep -E '^[0-9]+:([^:]*,)?cpu(,[^:]*)?:' /proc/self/cgroup | cut -d: -f3)/cpu.shares; fi; echo \"$f: $(cat $f)\""]
        promises = "stdio rpath proc exec"
        unveil   = ["rx:/usr/bin", "rx:/bin", "r:/proc", "r:/sys/fs/cgroup"]
      }

      resources {
        cpu = 1000
      }
    }

    task "cpu.max.cores" {
      driver = "pledge"

      config {
        command  = "/bin/sh"
        args     = ["-c", "if [ -e /sys/fs/cgroup/cgroup.controllers ]; then f=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)/cpuset.cpus; else f=/sys/fs/cgroup/cpuset$(grep -E '^[0-9]+:([^:]*,)?cpuset(,[^:]*)?:' /proc/self/cgroup | cut -d: -f3)/cpuset.cpus; fi; echo \"$f: $(cat $f)\""]
        promises = "stdio rpath proc exec"
        unveil   = ["rx:/usr/bin", "rx:/bin", "r:/proc", "r:/sys/fs/cgroup"]
      }

      resources {
        cores = 1
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
