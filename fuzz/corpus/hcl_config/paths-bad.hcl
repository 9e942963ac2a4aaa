pledge_executable = "pledge.com"
state_dir = "/run/../etc"
