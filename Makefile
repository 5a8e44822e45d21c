# The two commands: `make run` (the local stack) and `make test` (every test).
# Each does its own set-up on a fresh machine: a virtual environment from the pinned
# requirements, and Azurite from package-lock.json; `make test` also installs Debian's chromium
# for the browser tests (Playwright's own browser download does not work on our machines).
# Below them: `make check` (lint and the tests that need no stack, for the edit-test loop) and
# `make nightly` (the long runs CI runs smaller: the full-stack convergence machine at 200 examples).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_PY := $(VENV)/.installed
STAMP_NODE := node_modules/.installed
CHROMIUM := /usr/bin/chromium
TOOLS := .venv-tools
STAMP_TOOLS := $(TOOLS)/.installed

# Parallel workers for `make test` (pytest-xdist): one more than the CPUs, since a good part of the
# suite waits (on queues, notifications, a budget's minute) while another worker can use the CPU.
# Each file goes whole to one worker, longest first (tests/parallel.py); 0 runs all in this process.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
# The set-up's independent parts (the venv, node_modules, the checkov venv, chromium) are made side by
# side: on a fresh clone `make deps tools` took 1 min 15 s instead of 1 min 54 s one after the other
# (a whole clean-clone `make test` was 9 min 0 s against 8 min 49 s before: within the machine's
# noise; what cut the set-up was pip's --no-compile below, 1 min 25 s to 37 s). No output sync:
# `make run` and the test run print as they go.
MAKEFLAGS += --jobs=4
CONVERGENCE_SOAK ?= 200

.PHONY: run test check nightly soak lint bench key deps chromium clean tools deploy

run: deps
	$(PY) -m local.stack

test: deps tools lint $(CHROMIUM)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=12

# Lint and every test that needs no stack (no Azurite, simulator, host or browser): marker `stack`,
# set by tests/conftest.py from the fixtures a test uses. deps for node: the ICS tests read the feed
# with ical.js too.
check: deps lint
	$(PY) -m pytest -m "not stack"

# What CI runs smaller: the full-stack convergence machine (tests/sync/test_engine_convergence.py)
# at CONVERGENCE_SOAK examples, where `make test` runs 100. CONVERGENCE_SEED=random explores new ones.
nightly: deps
	CONVERGENCE_EXAMPLES=$(CONVERGENCE_SOAK) $(PY) -m pytest -s tests/sync/test_engine_convergence.py

# checkov (tests/infra/test_template.py) in its own environment: it pins packaging<24, our pytest
# needs >=24. Only `make test` installs it; `make run` does not need it.
tools: $(STAMP_TOOLS)

$(STAMP_TOOLS): infra/requirements-tools.txt infra/constraints-tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check --no-compile -r infra/requirements-tools.txt -c infra/constraints-tools.txt
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

# bench/scale.py: 100, 300 and 1,000 linked techs with 200 appointments each on the simulators
# (SCALE_SIZES=100,300 SCALE_APPOINTMENTS=20 make it smaller; hours at full size); docs/benchmarks.md.
.PHONY: bench-scale
bench-scale: deps
	$(PY) bench/scale.py

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
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -r requirements-dev.txt -c constraints.txt
	touch $@

# The stamp holds the package-lock.json it was installed from: a fresh checkout (newer files, the
# same lock) does not run `npm ci` again, which would first empty node_modules.
$(STAMP_NODE): package.json package-lock.json
	cmp -s package-lock.json $@ || { npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json $@; }
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
