# The two commands a new user needs: `make run` and `make test`. Each creates .venv if missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell cat pyproject.toml setup.py | sha1sum | cut -c1-12)
# `make run` installs the service only; `make test` (and `make install`) add the dev extras.
RUN_STAMP := $(VENV)/.installed-run-$(HASH)
DEV_STAMP := $(VENV)/.installed-dev-$(HASH)

.PHONY: run test test-faults bench lint install lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(DEV_STAMP): pyproject.toml setup.py | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(RUN_STAMP)

install: $(DEV_STAMP)

run: $(RUN_STAMP)  ## install, migrate and serve on the embedded PostgreSQL (add ARGS=--demo)
	$(BIN)/ledger serve $(ARGS)

test: $(DEV_STAMP)  ## install and run the whole suite (PostgreSQL tests on the embedded server)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-faults: $(DEV_STAMP)  ## fault tests, the long kill run (>= 10 API and 10 PostgreSQL kill -9s), the failover run
	$(BIN)/python -m pytest -p no:cacheprovider -q tests/faults
	$(BIN)/python -m tests.faults.kill_run --long $(ARGS)
	$(BIN)/python -m tests.faults.failover_run

bench: $(DEV_STAMP)  ## benchmarks (see bench/README.md)
	$(BIN)/python -m bench.run_all $(ARGS)

lint: $(DEV_STAMP)  ## ruff on everything, the layer contracts (.importlinter), mypy on the domain
	$(BIN)/ruff check ledger api tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy ledger/domain --ignore-missing-imports

lock:  ## re-pin requirements.lock (the deployable service's dependencies, with hashes)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes \
	  --custom-compile-command "make lock" --quiet -o requirements.lock

clean:
	rm -rf $(VENV) .ledger .pytest_cache
