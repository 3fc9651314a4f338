#!/usr/bin/env bash
# Install what the tests need and run lint and the whole suite against real Redis,
# a real Celery worker and the real ASGI server (started by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh requirements-dev.txt
scripts/system_packages.sh chromium espeak-ng
REDIS_PIDFILE="$(scripts/redis.sh)"
trap '[ -n "$REDIS_PIDFILE" ] && [ -f "$REDIS_PIDFILE" ] && kill "$(cat "$REDIS_PIDFILE")" 2>/dev/null || true' EXIT
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The layering: the ML core imports no Django, services no pages or API (pyproject.toml).
.venv/bin/lint-imports
# Types of the modules listed under [tool.mypy] in pyproject.toml (django-stubs).
.venv/bin/mypy
.venv/bin/python manage.py makemigrations --check --dry-run >/dev/null \
  || { echo "Models changed without a migration: run manage.py makemigrations." >&2; exit 1; }
SERSITE_TESTING=1 .venv/bin/python -m pytest "$@"
