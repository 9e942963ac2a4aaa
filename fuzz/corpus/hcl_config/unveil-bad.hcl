command = "x"
unveil = [
  "",
  "r:tmp",
  "r:/a/../b",
  "q:/x",
  "rw:/ok",
  "r:/nul\u0000byte"
]
