# The two commands: `make run` (the local stack) and `make test` (every test).
# Each does its own set-up on a fresh machine: a virtual environment from the pinned
# requirements, and Azurite from package-lock.json; `make test` also installs Debian's chromium
# for the browser tests (Playwright's own browser download does not work on our machines).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_PY := $(VENV)/.installed
STAMP_NODE := node_modules/.installed
CHROMIUM := /usr/bin/chromium
TOOLS := .venv-tools
STAMP_TOOLS := $(TOOLS)/.installed

.PHONY: run test lint bench soak key deps chromium clean tools deploy

run: deps
	$(PY) -m local.stack

test: deps tools lint $(CHROMIUM)
	$(PY) -m pytest

# checkov (tests/infra/test_template.py) in its own environment: it pins packaging<24, our pytest
# needs >=24. Only `make test` installs it; `make run` does not need it.
tools: $(STAMP_TOOLS)

$(STAMP_TOOLS): infra/requirements-tools.txt infra/constraints-tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check -r infra/requirements-tools.txt -c infra/constraints-tools.txt
	touch $@

lint: $(STAMP_PY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: deps
	$(PY) bench/import_time.py
	$(PY) bench/graph_sim_throughput.py
	$(PY) bench/linking.py
	$(PY) bench/ics_render.py
	$(PY) bench/sync.py

# bench/soak.py: users on both sides, every simulator's faults, host processes killed and restarted,
# for SOAK_SECONDS (600 unless set; `make test` runs 60 s of it, tests/soak/); the last line is the
# counts, and the exit status is 1 when anything was duplicated, lost, wrongly deleted or unconverged.
soak: deps
	$(PY) bench/soak.py

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

# Debian's chromium for tests/browser (driven by Playwright with executable_path=$(CHROMIUM)).
# Installed only when missing; as root directly, otherwise through sudo where there is one.
chromium: $(CHROMIUM)

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
	else echo "$@ is missing and installing it needs root: apt-get install chromium" >&2; exit 1; fi; \
	set -x; $$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
	test -x $@

clean:
	rm -rf $(VENV) $(TOOLS) node_modules .local .pytest_cache .ruff_cache

# docs/deploy.md, step 3: check the parameters, then deploy infra/main.bicep to resource group RG.
#   make deploy RG=rg-calsync PARAMS='secretsOfficerPrincipalId=<your object id>'
# Needs only python3 and the Azure CLI (signed in with az login); no virtual environment.
deploy:
	@test -n "$(RG)" || { echo "usage: make deploy RG=<resource group> [PARAMS='name=value ...']" >&2; exit 2; }
	$(PYTHON) infra/check_parameters.py infra/main.parameters.json $(PARAMS)
	az deployment group create --resource-group "$(RG)" --name calsync \
	  --template-file infra/main.bicep --parameters infra/main.parameters.json $(PARAMS)
	az deployment group show --resource-group "$(RG)" --name calsync --query properties.outputs -o json
