# lakegate — the two commands a new user needs: `make run` (demo server) and `make test` (everything, with services).
PYTHON ?= python3
PORT   ?= 8080
VENV   := .venv
PY     := $(VENV)/bin/python
# Two install profiles, each with its own stamp (named after pyproject.toml's checksum, so an edit reinstalls):
# the demo's (the package and the official client) and everything (extras, test and dev tools). The full
# install also satisfies the demo, so `make run` after `make test` installs nothing, and `make test` after
# `make run` upgrades to the full install.
SUM        := $(shell cksum pyproject.toml | cut -d' ' -f1)
STAMP      := $(VENV)/.installed-full-$(SUM)
DEMO_STAMP := $(VENV)/.installed-demo-$(SUM)

.PHONY: run test check format bench bench-1m fuzz services install clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[test,dev,azure,gcp,postgres]'
	rm -f $(VENV)/.installed-* && touch $@ $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[client]'
	rm -f $(VENV)/.installed-demo-* && touch $@

install: $(STAMP)

## Build demo tables on local disk, write demo/server.yaml + demo/profile.share, serve on 127.0.0.1:$(PORT)
## (`make run PORT=9090` for another port). Installs only what the demo needs: the package and the official
## delta-sharing client. Afterwards `lakegate` is .venv/bin/lakegate (or `. .venv/bin/activate`).
run: $(DEMO_STAMP)
	$(VENV)/bin/lakegate demo --directory demo --port $(PORT)

## Test services (Ceph RGW, Azurite, PostgreSQL) from Debian and npm packages.
services:
	bash scripts/install-test-services.sh

## The quality gate: formatting, lint and types (configured in pyproject.toml). Fast: run it before committing.
check: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

## Apply what the gate can fix by itself: formatting, import order and ruff's safe fixes.
format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Install everything and run the whole suite under coverage (test and server subprocesses alike); fails below
## the floor (`fail_under` in pyproject.toml).
test: $(STAMP) services
	rm -f .coverage .coverage.*
	$(PY) -m coverage run -m pytest -q
	$(PY) -m coverage combine -q
	$(PY) -m coverage report

## Benchmarks (figures go to docs/performance.md).
bench: $(STAMP) services
	$(PY) benchmarks/bench_signing.py
	$(PY) benchmarks/bench_query.py
	$(PY) benchmarks/bench_paging.py
	$(PY) benchmarks/bench_long_log.py
	$(PY) benchmarks/bench_small.py
	$(PY) benchmarks/bench_workers.py
	$(PY) benchmarks/bench_iceberg.py
	$(PY) benchmarks/bench_federation.py
	$(PY) benchmarks/bench_local.py

## The same for a 1M-file local table (opt-in: ~10 min and ~3 GB of disk).
bench-1m: $(STAMP)
	$(PY) benchmarks/bench_local.py 1000000

## Fuzz every route of a running server: 50,000 requests, a random seed (printed; repeat a run with FUZZ_SEED=N).
fuzz: $(STAMP)
	FUZZ_REQUESTS=$${FUZZ_REQUESTS:-50000} FUZZ_SEED=$${FUZZ_SEED:-random} $(PY) -m pytest -q -s tests/e2e/security/test_fuzz.py

clean:
	rm -rf $(VENV) demo .bench .test-services
