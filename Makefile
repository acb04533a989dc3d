# lakegate — the two commands a new user needs: `make run` (demo server) and `make test` (everything, with services).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test bench services install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,azure,gcp,postgres]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## Build demo tables on local disk, write demo/server.yaml + demo/profile.share, serve on 127.0.0.1:8080.
run: $(STAMP)
	$(VENV)/bin/lakegate demo --directory demo --port 8080

## Test services (Ceph RGW, Azurite, PostgreSQL) from Debian and npm packages.
services:
	bash scripts/install-test-services.sh

## Install everything and run the whole suite.
test: $(STAMP) services
	$(PY) -m pytest -q

## Benchmarks (figures go to docs/performance.md).
bench: $(STAMP) services
	$(PY) benchmarks/bench_signing.py
	$(PY) benchmarks/bench_query.py

clean:
	rm -rf $(VENV) demo .bench .test-services
