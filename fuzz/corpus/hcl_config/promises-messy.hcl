command = "x"
promises = "  STDIO,rpath\tinet  inet "
