# Prints the task's environment: the NOMAD_* variables Nomad sets (alloc id, task dir, limits,
# ports) and TMPDIR pointing at the task's own tmp dir. Dangerous loader variables (LD_*) never
# reach the task.
job "env" {
  type = "batch"

  group "group" {
    task "env" {
      driver = "pledge"

      config {
        command  = "/usr/bin/env"
        promises = "stdio rpath"
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
