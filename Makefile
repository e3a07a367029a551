# The two commands a new user needs: `make run` and `make test`. Each creates .venv if missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test test-faults bench lint install clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## install, migrate and serve on the embedded PostgreSQL (add ARGS=--demo)
	$(BIN)/ledger serve $(ARGS)

test: $(STAMP)  ## install and run the whole suite (PostgreSQL tests on the embedded server)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-faults: $(STAMP)  ## fault tests, then the long kill run (>= 10 API and 10 PostgreSQL kill -9s)
	$(BIN)/python -m pytest -p no:cacheprovider -q tests/faults
	$(BIN)/python -m tests.faults.kill_run --long $(ARGS)

bench: $(STAMP)  ## benchmarks (see bench/README.md)
	$(BIN)/python -m bench.run_all $(ARGS)

lint: $(STAMP)  ## ruff on everything, mypy on the domain
	$(BIN)/ruff check ledger api tests bench
	$(BIN)/mypy ledger/domain --ignore-missing-imports

clean:
	rm -rf $(VENV) .ledger .pytest_cache
