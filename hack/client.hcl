# A development agent (server and client in one) that loads the driver from /tmp/plugins:
#
#   make dev    # builds target/release/nomad-pledge-driver into /tmp/plugins
#   make run    # sudo nomad agent -dev -config=hack/client.hcl
#
# The local runner reads the plugin block below too:
#   nomad-pledge-driver run --plugin-config hack/client.hcl hack/http.hcl

server {
  enabled = true

  default_scheduler_config {
    memory_oversubscription_enabled = true # lets jobs set resources.memory_max
  }
}

client {
  enabled = true
}

plugin_dir = "/tmp/plugins"

# The block is selected by the binary's file name in plugin_dir; jobs say driver = "pledge".
# Every option is shown with its default.
plugin "nomad-pledge-driver" {
  config {
    # Run tasks under an external pledge.com, exactly as the original Go driver did. Unset (the
    # default): the driver's built-in sandbox (seccomp promises + Landlock unveil).
    # pledge_executable = "/opt/bin/pledge-1.8.com"

    # Where each task's supervisor keeps its state (exit status, plan) across plugin restarts.
    state_dir = "/run/nomad-pledge-driver"

    # Cap CPU at the task's resources.cpu with cpu.max (v2) / cfs quota (v1). Off: cpu is a
    # relative weight only, as in raw_exec and exec.
    cpu_hard_limit = false

    # Processes per task (pids.max); a task may override it. 0 = unlimited.
    pids_limit = 4096

    # Let tasks that set net_bind_service = true keep CAP_NET_BIND_SERVICE (ports below 1024).
    allow_net_bind_service = false

    # Start tasks even when the kernel's Landlock can enforce their unveil only in part
    # (older ABIs); the partial enforcement is reported as a task event. Off: such tasks fail.
    unveil_best_effort = false

    # Default resource limits (setrlimit) per task; tasks may override each. 0 = unlimited.
    rlimit_nofile = 65536
    rlimit_nproc  = 0
    rlimit_fsize  = 0
    rlimit_cpu    = 0
    rlimit_as     = 0
  }
}

# Promises a task can hold (config.promises), as in OpenBSD pledge(2):
# stdio     the basic calls: read/write on open fds, memory, time, exit, signals to itself
# rpath     read-only path operations (open for reading, stat, readlink, chdir)
# wpath     write path operations (open for writing) -- never reads
# cpath     create and remove files and directories
# dpath     create special files (mkfifo, mknod)
# flock     file locks
# fattr     change file attributes (chmod, utimes)
# chown     change file owners
# tty       terminal ioctls
# inet      IPv4 and IPv6 sockets
# anet      TCP servers only: bind, listen, accept on IPv4/IPv6 stream sockets (no connect)
# unix      unix-domain sockets
# dns       name resolution (UDP/TCP to resolvers, resolver files unveiled)
# recvfd    receive file descriptors (SCM_RIGHTS)
# sendfd    send file descriptors (SCM_RIGHTS)
# proc      fork, wait, signal processes of the task
# exec      execve
# id        setuid, setgid and friends
# thread    create threads (clone with CLONE_THREAD), futexes
# prot_exec map memory executable (JITs)
# vminfo    read /proc's memory, cpu and load files
# tmppath   create and remove files in the task's own TMPDIR (unveiled rwc)
# settime   set the clock
# unveil    change the unveil set at run time
