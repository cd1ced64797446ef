# Bordin: `make run` to try it, `make test` to check it. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1:8000

.PHONY: run code audit test check test-sqlite test-postgres lint typecheck bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,pdf,rq,research]'
	touch $(STAMP)

install: $(STAMP)

# Development server with the demo clinic. DEBUG is on here only.
run: export DEBUG = 1
run: export SITE_URL = http://$(HOST)
run: $(STAMP)
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py seed_demo
	@$(BIN)/python manage.py demo_logins
	$(BIN)/python manage.py runserver $(HOST)

# The demo accounts' current two-factor code (staff sign in with password and authenticator app).
code: export DEBUG = 1
code: $(STAMP)
	@$(BIN)/python manage.py demo_code

# The whole suite. DATABASE_URL=postgres://... runs it against PostgreSQL instead of SQLite.
test: $(STAMP)
	.ci/system-deps
	$(BIN)/python -m pytest -n 2 -q --ds=tests.settings $(PYTEST_ARGS)

# The inner loop: lint, types, then the suite without the browser tests and the slow simulation
# studies (the browser and slow markers, pyproject.toml). `make test` stays the whole suite, as CI runs it.
check: lint typecheck
	$(BIN)/python -m pytest -n 2 -q --ds=tests.settings -m "not browser and not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check monitoring clinics tests bench

# Known vulnerabilities in the installed packages (fails on any; see .ci/audit).
audit: $(STAMP)
	mkdir -p var
	.ci/audit

typecheck: $(STAMP)
	$(BIN)/mypy monitoring clinics

bench: $(STAMP)
	$(BIN)/python bench/analytics.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
