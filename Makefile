# Atlas CRM. `make run` and `make test` work on a fresh machine with Python 3.11, git and make.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
UVPIP := $(UV) pip --quiet
PYTHON := $(BIN)/python
# Local packages, installed editable on top of the hash-pinned lock (with --no-deps).
LOCAL_PACKAGES := services/api services/kit services/contacts services/deals services/tasks gateway cli services/reporting services/notifications services/integrations
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-clock lint proto proto-check lock lock-upgrade outdated bench clean

install: $(STAMP)

$(STAMP): requirements.lock tools/uv-bootstrap.txt $(addsuffix /pyproject.toml,$(LOCAL_PACKAGES))
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r tools/uv-bootstrap.txt
	$(UVPIP) install --python $(PYTHON) --require-hashes -r requirements.lock
	$(UVPIP) install --python $(PYTHON) --no-deps --no-build-isolation $(addprefix -e ,$(LOCAL_PACKAGES))
	touch $@

run: install
	$(BIN)/crm up

# Lint first (ruff, mypy, buf, import contracts): CI fails on any of them.
test: install lint
	$(BIN)/pytest

# The time-sensitive tests with the clock started at 00:30, 06:00, 12:45, 18:15, 23:50 UTC
# and before each DST change of Berlin and New York (about an hour; not part of `make test`).
test-clock: install
	$(PYTHON) tools/clock_matrix.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd protos && ../$(BIN)/buf lint
	$(BIN)/lint-imports

# Regenerates crm_api from protos/; tests/test_proto_stubs.py fails when it is stale.
proto: install
	$(PYTHON) -m crm_kit.protogen services/api/src

# `make lock` keeps every pin that still satisfies requirements.in; `make lock-upgrade` moves every
# pin to its newest allowed release (then `make install`, `make proto` if grpcio-tools moved, and test).
lock: install
	$(UV) pip compile requirements.in --generate-hashes --python-version 3.11 --no-header --quiet -o requirements.lock

lock-upgrade: install
	$(UV) pip compile requirements.in --generate-hashes --python-version 3.11 --no-header --quiet --upgrade -o requirements.lock

# Which pins are behind their latest release, and whether a constraint holds them back.
outdated: install
	$(PYTHON) tools/outdated.py

bench: install
	command -v wrk >/dev/null 2>&1 || { apt-get update && apt-get install -y wrk; }
	$(PYTHON) bench/contacts_bench.py
	$(PYTHON) bench/workflow_bench.py
	$(PYTHON) bench/reporting_bench.py
	$(PYTHON) bench/notifications_bench.py
	$(PYTHON) bench/integrations_bench.py

clean:
	rm -rf $(VENV) .state .pytest_cache .mypy_cache .ruff_cache
