args = [
  "/sys/fs/cgroup/nomad.slice/share.slice/5f1c0a2e-8d4b-4f3a-9c1e-2b7d6e5a4f30.mem.scope/memory.max"
]
command = "cat"
promises = "stdio rpath"
unveil = [
  "r:/sys/fs/cgroup/nomad.slice"
]
