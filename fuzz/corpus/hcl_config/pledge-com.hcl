pledge_executable = "/opt/bin/pledge-1.8.com"
