args = [
  "-c",
  "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nsignal.pause()"
]
command = "python3"
promises = "stdio rpath tty"
unveil = [
  "r://var/lib/nomad/alloc/5f1c0a2e-8d4b-4f3a-9c1e-2b7d6e5a4f30/http/local"
]
