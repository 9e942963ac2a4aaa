args = [
  "aux"
]
command = "ps"
promises = "stdio rpath exec"
unveil = [
  "r:/proc"
]
