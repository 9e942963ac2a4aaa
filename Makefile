# Development targets, like the original driver's Makefile.
#
#   make dev     build the plugin (release) into $(PLUGIN_DIR)
#   make run     start a Nomad dev agent that loads it (needs `nomad` on PATH)
#   make local   run a job file with the local runner instead (no Nomad needed)
#   make test    run every test (the README's test command)
#   make ci      what CI runs: packages, fmt, clippy, tests

PLUGIN_DIR ?= /tmp/plugins
CARGO      ?= cargo
JOB        ?= hack/http.hcl
BIN        := target/release/nomad-pledge-driver

.PHONY: default dev run local test ci clean

default: dev

dev:
	$(CARGO) build --release -p pledge-grpc --bin nomad-pledge-driver
	mkdir -p $(PLUGIN_DIR)
	install -m 0755 $(BIN) $(PLUGIN_DIR)/nomad-pledge-driver
	@echo "installed $(PLUGIN_DIR)/nomad-pledge-driver"

run: dev
	@if ! command -v nomad >/dev/null 2>&1; then \
	  echo "nomad is not installed. Install Nomad 1.7 or newer from HashiCorp (see"; \
	  echo "https://developer.hashicorp.com/nomad/install: their apt/yum repositories or a"; \
	  echo "release zip), then run make run again. Without a cluster, try the local runner:"; \
	  echo "  make local JOB=hack/http.hcl"; \
	  exit 1; \
	fi
	@if [ "$$(id -u)" = 0 ]; then \
	  nomad agent -dev -config=hack/client.hcl; \
	else \
	  echo "the driver needs root (as raw_exec does): running the agent with sudo"; \
	  sudo nomad agent -dev -config=hack/client.hcl; \
	fi

local:
	$(CARGO) run --release -p pledge-grpc --bin nomad-pledge-driver -- run $(JOB)

test:
	$(CARGO) test --workspace --all-targets

ci:
	bash .ci/run

clean:
	rm -f $(PLUGIN_DIR)/nomad-pledge-driver
