args = [
  "-c",
  "exit 0"
]
command = "sh"
promises = "stdio rpath wpath cpath dpath flock fattr chown inet anet unix dns tty recvfd sendfd proc exec id thread prot_exec vminfo tmppath settime unveil"
