command = "x"
unveil = [
  "/usr",
  "rwxc:/tmp/",
  "r:/srv/a:b",
  "r://var//./log/",
  "x:/bin/sh"
]
