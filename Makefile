# Two entry points for a fresh machine: `make demo` and `make test`.
# Each builds (or reuses) the pinned virtual environment: scripts/ensure-venv.sh keeps it in a cache
# outside the clone (FAULTZOO_VENV_CACHE), keyed by the hash of the dependency files.
SHELL := /bin/bash
SHARED ?= $(abspath ../shared)
VENV = $(shell scripts/ensure-venv.sh)
# Offline sources of this machine: the mirror of upstream checkpoints and the data files in ../shared.
ifneq ($(wildcard $(SHARED)/mirror),)
export FAULTZOO_MIRROR ?= $(SHARED)/mirror
endif
export FAULTZOO_TEST_SHARED ?= $(SHARED)
DEMO_OUT ?= demo-out
# CIFAR-10 data for the demo: the 1,000 exact test images of ../shared when present, else the
# torchvision test set under $$FAULTZOO_DATA (downloaded on first use).
DEMO_NPZ := $(SHARED)/datasets/cifar10/test-first1000-exact.npz
DEMO_DATA ?= $(if $(wildcard $(DEMO_NPZ)),$(DEMO_NPZ),cifar10 --download --limit 1000)
DEMO_FAULTS ?= 300
DEMO_WORKERS ?= 2

.PHONY: demo test venv bench clean

venv:
	@echo $(VENV)

# The main job: a real campaign on cifar10/resnet20 (upstream weights) with DEMO_FAULTS faults of its
# dnn-benchmarks fault list, on CIFAR-10 test images; resumable (re-run continues an interrupted demo);
# it ends with the campaign's report (rates with intervals, plots) and prints where it is.
demo:
	@venv=$(VENV); set -e; mkdir -p $(DEMO_OUT); \
	"$$venv/bin/faultzoo" faultlist cifar10/resnet20 --design dnn-benchmarks --format torch \
		-o $(DEMO_OUT)/cifar10_resnet20_FL.csv; \
	"$$venv/bin/faultzoo" campaign cifar10/resnet20 --faults $(DEMO_OUT)/cifar10_resnet20_FL.csv \
		--fault-sample $(DEMO_FAULTS) --data $(DEMO_DATA) --workers $(DEMO_WORKERS) -o $(DEMO_OUT)/campaign; \
	"$$venv/bin/faultzoo" report $(DEMO_OUT)/campaign

# Tests run in TEST_JOBS processes (one per core, at most 4: each holds torch and TensorFlow), a test
# file per process at a time so that its module fixtures are built once, files with slow tests first
# (tests/conftest.py orders them); PYTEST_ARGS adds options.
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 )))
test:
	@venv=$(VENV); test -x "$$venv/bin/python" || { echo "make: virtual environment setup failed" >&2; exit 1; }; \
	"$$venv/bin/python" -m pytest -q -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

bench:
	@venv=$(VENV); set -e; \
	"$$venv/bin/python" benchmarks/eval_speed.py; \
	"$$venv/bin/python" benchmarks/faultlist_speed.py; \
	"$$venv/bin/python" benchmarks/campaign_speed.py

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build src/*.egg-info
