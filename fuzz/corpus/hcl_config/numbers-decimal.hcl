command = "x"
pids_limit = 0.1
rlimit_as = 18446744073709551615
rlimit_cpu = -1
rlimit_fsize = 300
rlimit_nofile = 1.5
rlimit_nproc = 1000
