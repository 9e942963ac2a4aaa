bind_ports = []
command = "x"
connect_ports = []
kill_on_violation = false
net_bind_service = false
