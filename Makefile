# Two entry points for a fresh machine: `make demo` and `make test`.
# Each builds (or reuses) the pinned virtual environment: scripts/ensure-venv.sh keeps it in a cache
# outside the clone (FAULTZOO_VENV_CACHE), keyed by the hash of the dependency files.
SHELL := /bin/bash
SHARED ?= $(abspath ../shared)
VENV = $(shell scripts/ensure-venv.sh)
# Offline sources of this machine: the mirror of upstream checkpoints and the data files in ../shared.
export FAULTZOO_MIRROR ?= $(SHARED)/mirror
export FAULTZOO_TEST_SHARED ?= $(SHARED)
DEMO_OUT ?= demo-out
DEMO_DATA ?= $(SHARED)/datasets/cifar10/test-first1000-exact.npz
DEMO_FAULTS ?= 300

.PHONY: demo test venv bench clean

venv:
	@echo $(VENV)

demo:
	@venv=$(VENV); set -e; \
	"$$venv/bin/faultzoo" demo --data "$(DEMO_DATA)" --faults $(DEMO_FAULTS) -o "$(DEMO_OUT)"

test:
	@venv=$(VENV); cd $(CURDIR) && "$$venv/bin/python" -m pytest -q $(PYTEST_ARGS)

bench:
	@venv=$(VENV); set -e; \
	"$$venv/bin/python" benchmarks/eval_speed.py; \
	"$$venv/bin/python" benchmarks/faultlist_speed.py; \
	"$$venv/bin/python" benchmarks/campaign_speed.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build src/*.egg-info
