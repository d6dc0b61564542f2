# Two set-up commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test static bench bench-all chaos lint format-check typecheck stop clean proto

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev,fast]'
	@touch $(STAMP)

# IBLEDGER_CRYPTO=sm2-sm3 make run: a new network on the national suite (network init reads it).
run: $(STAMP)
	$(VENV)/bin/ibledger network init --if-missing
	$(VENV)/bin/ibledger network up
	$(VENV)/bin/ibledger demo
	@echo
	@echo "The 4-node network is still running: try '$(VENV)/bin/ibledger network status'; stop it with 'make stop'."

stop: $(STAMP)
	$(VENV)/bin/ibledger network down

# The static checks run first and stop the build on the first failure; then the tests, as three
# pytest processes side by side (tests/suite.py: the loopback real-process tests, the
# network-namespace tests, and the rest).
# `make test PYTEST_ARGS=tests/cli` narrows the test run to one process, never the checks.
test: static
	$(if $(PYTEST_ARGS),$(PY) -m pytest -q $(PYTEST_ARGS),$(PY) -m tests.suite)

static: lint format-check typecheck

# The standard load suite (about 5 minutes) into bench-results/suite-<time> (or BENCH_OUT);
# its plots need the optional [bench] extra (matplotlib), installed here if missing; without
# it the suite still writes its JSON and CSV and says why there are no plots.
bench: $(STAMP)
	@$(PY) -c 'import matplotlib' 2>/dev/null || $(PY) -m pip install --quiet -e '.[bench]' \
		|| echo "matplotlib could not be installed: no plots"
	$(PY) -m bench suite $(BENCH_OUT)

# The longer fault campaigns (about 10 minutes): failpoint crashes and I/O errors, kill -9 and
# SIGSTOP of the primary and of a backup, and, as root with ip and nft, network partitions
# between network namespaces. Prints the summary table and writes it as JSON and markdown to
# chaos-results/chaos-<time> (or CHAOS_OUT); CHAOS_ARGS passes --seed, --rounds or --kinds.
chaos: $(STAMP)
	$(PY) -m tests.chaos $(if $(CHAOS_OUT),--out $(CHAOS_OUT)) $(CHAOS_ARGS)

# Every micro-benchmark (verify, ledger, consensus, network, fairness) with its defaults.
bench-all: $(STAMP)
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
