# The OMS. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000
# The MySQL/MariaDB driver builds only where its C library is present; the embedded default (SQLite) needs none.
EXTRAS := dev$(shell pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null && echo ,mysql)

.PHONY: help run test lint format typecheck imports migrations-check deploy-check pytest bench worker cron install migrate seed clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}'

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.installed-*; touch $@

install: $(VENV)/.installed-$(EXTRAS) ## create .venv and install the project with its dev tools

migrate: install ## apply database migrations
	$(MANAGE) migrate --noinput

seed: migrate ## load the demo data (idempotent)
	$(MANAGE) seed_demo

run: seed ## set everything up and serve on http://127.0.0.1:8000 (plus a worker and cron when REDIS_URL is set)
	@if [ -n "$$REDIS_URL" ]; then \
	  echo "REDIS_URL set: starting an RQ worker and the RQ cron scheduler"; \
	  $(MANAGE) rqworker high default low --with-scheduler & worker=$$!; \
	  $(MANAGE) rqcron oms.cron & cron=$$!; \
	  trap 'kill $$worker $$cron 2>/dev/null; wait $$worker $$cron 2>/dev/null' EXIT INT TERM; \
	  $(MANAGE) runserver $(HOST):$(PORT); \
	else \
	  echo "No REDIS_URL: jobs run inline in the web process"; \
	  $(MANAGE) runserver $(HOST):$(PORT); \
	fi

test: install lint typecheck imports migrations-check deploy-check pytest ## the whole suite: lint, types, layer contracts, migrations, deploy check, tests

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install ## mypy with the django-stubs plugin (strict on channels_adapters)
	$(BIN)/mypy .

imports: install ## import-linter: the domain layers point one way
	$(BIN)/lint-imports

migrations-check: install ## fail if a model change has no migration
	DJANGO_SETTINGS_MODULE=oms.settings.test $(MANAGE) makemigrations --check --dry-run

deploy-check: install ## production settings pass `check --deploy` with no warnings
	DJANGO_SETTINGS_MODULE=oms.settings.production SECRET_KEY=$$(head -c 48 /dev/urandom | base64 | tr -d '\n') \
	  FIELD_ENCRYPTION_KEYS=$$($(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
	  ALLOWED_HOSTS=oms.example.com DATABASE_URL=sqlite:////tmp/oms-deploy-check.sqlite3 \
	  $(MANAGE) check --deploy --fail-level WARNING

pytest: install ## the test suite (MariaDB/Redis when DATABASE_URL/REDIS_URL are set, SQLite otherwise)
	DJANGO_SETTINGS_MODULE=oms.settings.test $(BIN)/pytest $(PYTEST_ARGS)

bench: install ## every benchmark, one after another (print figures; need MariaDB and Redis, see README)
	$(BIN)/python bench/webhook_ingest.py
	$(BIN)/python bench/last_unit.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/reconcile.py
	$(BIN)/python bench/catalog_import.py
	$(BIN)/python bench/packing.py

worker: install ## an RQ worker for all queues (needs REDIS_URL)
	$(MANAGE) rqworker high default low --with-scheduler

cron: install ## the RQ cron scheduler (needs REDIS_URL; run exactly one)
	$(MANAGE) rqcron oms.cron

clean: ## remove the venv, the SQLite database and generated files
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* var test-artifacts .pytest_cache .ruff_cache .mypy_cache
