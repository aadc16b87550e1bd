# Two commands on a fresh machine (Python >= 3.11 with venv, and make):
#   make demo   - the whole system end to end against RabbitMQ
#   make test   - the test suite (unit, property and integration tests)
#   make test-pythons - the unit, property and sandbox tests on Python 3.12 and 3.13 too
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install demo test test-pythons lint bench clean

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

# The tests that need no broker, database or chain, on each newer Python found here as well,
# each in its own .venv-<version> installed like .venv. A version not installed is skipped
# with a note; one that fails fails the target after the others have run.
EXTRA_PYTHONS ?= 3.12 3.13
PYENV_ROOT    ?= $(HOME)/.pyenv
PURE_TESTS    := tests/unit tests/properties tests/sandbox

# The first python<version> that runs: on PATH (a pyenv shim runs only for a version pyenv
# has selected), else pyenv's newest build of that version.
find_python = for candidate in $$(command -v python$(1)) \
	  $$(ls -d $(PYENV_ROOT)/versions/$(1).*/bin/python$(1) 2>/dev/null | sort -rV); do \
	  "$$candidate" -c 'import ensurepip, venv' 2>/dev/null && { echo "$$candidate"; break; }; \
	done

test-pythons:
	@status=0; \
	for version in $(EXTRA_PYTHONS); do \
	  python=$$($(call find_python,$$version)); \
	  if [ -z "$$python" ]; then \
	    echo "test-pythons: no usable python$$version here, skipped"; continue; \
	  fi; \
	  echo "test-pythons: $(PURE_TESTS) on $$python"; \
	  $(MAKE) --no-print-directory VENV=.venv-$$version PYTHON=$$python .venv-$$version/.installed \
	    && .venv-$$version/bin/pytest $(PURE_TESTS) || status=1; \
	done; \
	exit $$status

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install
	$(BIN)/paymq bench --payments 5000 --provider-latency-ms 50
	$(BIN)/paymq bench-chain --payouts 300 --processes 2 --threads 8

clean:
	rm -rf $(VENV) .venv-* node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis
