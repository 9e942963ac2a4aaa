args = [
  "a\u0000b"
]
command = "/bin/true\u0000--evil"
