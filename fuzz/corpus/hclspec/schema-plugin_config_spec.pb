
ä
2
unveil_best_effort
unveil_best_effortbool
:
allow_net_bind_service 
allow_net_bind_servicebool
"
	rlimit_as
	rlimit_asnumber
$

pids_limit

pids_limitnumber
$

rlimit_cpu

rlimit_cpunumber
*
rlimit_nofile
rlimit_nofilenumber
2
pledge_executable
pledge_executablestring
(
rlimit_fsize
rlimit_fsizenumber
*
cpu_hard_limit
cpu_hard_limitbool
"
	state_dir
	state_dirstring
(
rlimit_nproc
rlimit_nprocnumber