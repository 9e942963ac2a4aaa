
Ì
 
ipc_mode
ipc_modestring
*

bind_ports

bind_portslist(number)
$

pids_limit

pids_limitnumber
(
rlimit_nproc
rlimit_nprocnumber
$

rlimit_cpu

rlimit_cpunumber
(
sandbox_mode
sandbox_modestring

args
argslist(string)
0
kill_on_violation
kill_on_violationbool
0
connect_ports
connect_portslist(number)
 
promises
promisesstring
$

importance

importancestring
 
pid_mode
pid_modestring
*
rlimit_nofile
rlimit_nofilenumber
"
	rlimit_as
	rlimit_asnumber
.
net_bind_service
net_bind_servicebool
 
command
commandstring
(
rlimit_fsize
rlimit_fsizenumber
"
unveil
unveillist(string)