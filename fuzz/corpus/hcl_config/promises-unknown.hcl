command = "x"
promises = "stdio inett rpath bogus"
