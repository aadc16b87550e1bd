# Two commands on a fresh machine (Python >= 3.11 with venv, and make):
#   make demo   - the whole system end to end against RabbitMQ
#   make test   - the test suite (unit, property and integration tests)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install demo test lint bench clean

# Reinstall whenever the project's dependencies change.
# The product (with its development extra) and paymq's tools (tools/: the demo, the
# benchmarks, the fault-injection suite), which add their commands to `paymq`.
$(VENV)/.installed: pyproject.toml tools/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e ./tools
	touch $@

# anvil, the local Ethereum node of the tests and the demo, pinned in package-lock.json.
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

demo: install
	$(BIN)/paymq demo

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install
	$(BIN)/paymq bench --payments 5000 --provider-latency-ms 50
	$(BIN)/paymq bench-chain --payouts 300 --processes 2 --threads 8

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis
