# A long-running service doing nothing, as `nobody`, with the lowest CPU importance
# (nice 19 / cpu.weight.nice 19). Stop it with `nomad job stop sleep` (or Ctrl-C in the runner).
job "sleep" {
  group "group" {
    task "sleep" {
      driver = "pledge"
      user   = "nobody"

      config {
        command    = "/bin/sleep"
        args       = ["infinity"]
        promises   = "stdio rpath"
        importance = "lowest"
      }
    }
  }
}
