command = "env"
promises = "stdio rpath"
