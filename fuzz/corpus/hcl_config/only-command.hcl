command = "/usr/bin/true"
