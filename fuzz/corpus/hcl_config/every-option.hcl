args = [
  "-g",
  "daemon off;"
]
bind_ports = [
  80,
  443
]
command = "/usr/sbin/nginx"
connect_ports = [
  8080
]
importance = "high"
ipc_mode = "private"
kill_on_violation = true
net_bind_service = true
pid_mode = "host"
pids_limit = 100
promises = "stdio rpath wpath cpath inet dns proc exec id"
rlimit_as = 4294967296
rlimit_cpu = 3600
rlimit_fsize = 1073741824
rlimit_nofile = 1024
rlimit_nproc = 0
sandbox_mode = "complain"
unveil = [
  "rwc:/var/log/nginx",
  "r:/etc/nginx",
  "rx:/usr/sbin/nginx"
]
