# Two set-up commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test static bench lint format-check typecheck stop clean proto

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev,fast]'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/ibledger network init --if-missing
	$(VENV)/bin/ibledger network up
	$(VENV)/bin/ibledger demo
	@echo
	@echo "The 4-node network is still running: try '$(VENV)/bin/ibledger network status'; stop it with 'make stop'."

stop: $(STAMP)
	$(VENV)/bin/ibledger network down

# The static checks run first and stop the build on the first failure; then the tests.
# `make test PYTEST_ARGS=tests/cli` narrows the test run, never the checks.
test: static
	$(PY) -m pytest -q $(PYTEST_ARGS)

static: lint format-check typecheck

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .

format-check: $(STAMP)
	$(VENV)/bin/ruff format --check .

# Strict over the whole package and bench/ (pyproject.toml: [tool.mypy] packages).
typecheck: $(STAMP)
	$(VENV)/bin/mypy

proto: $(STAMP)
	$(PY) -m ibledger.proto.generate

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
