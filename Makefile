# The two commands: `make run` (the local stack) and `make test` (every test).
# Each does its own set-up on a fresh machine: a virtual environment from the pinned
# requirements, and Azurite from package-lock.json.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_PY := $(VENV)/.installed
STAMP_NODE := node_modules/.installed

.PHONY: run test lint bench key deps clean

run: deps
	$(PY) -m local.stack

test: deps lint
	$(PY) -m pytest

lint: $(STAMP_PY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: deps
	$(PY) bench/import_time.py
	$(PY) bench/graph_sim_throughput.py

key: $(STAMP_PY)
	@$(PY) -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"

deps: $(STAMP_PY) $(STAMP_NODE)

$(STAMP_PY): requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

$(STAMP_NODE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) node_modules .local .pytest_cache .ruff_cache
