args = [
  "infinity"
]
command = "sleep"
importance = "lowest"
promises = "stdio rpath"
