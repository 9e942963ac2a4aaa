args = [
  "/proc/self/cgroup"
]
command = "/bin/cat"
promises = "stdio rpath"
unveil = [
  "r:/proc/self/cgroup"
]
