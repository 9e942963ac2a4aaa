args = [
  "/etc/passwd"
]
command = "cat"
promises = "stdio rpath"
