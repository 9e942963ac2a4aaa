args = []
command = ""
importance = ""
pid_mode = ""
promises = ""
sandbox_mode = ""
unveil = []
