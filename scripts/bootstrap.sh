#!/usr/bin/env bash
# Create the virtualenv and install the pinned requirements (again only when they change).
# Usage: scripts/bootstrap.sh [requirements file]   (default: requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
REQ="${1:-requirements.txt}"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
  done
fi
[ -n "$PY" ] || { echo "Python 3.11 is needed: install python3.11 and python3.11-venv." >&2; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Python >= 3.11 is needed ($PY is older)." >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $PY"
  "$PY" -m venv .venv || { echo "Could not create a virtualenv: install python3-venv." >&2; exit 1; }
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
# One stamp per requirements file, holding the digest of what it installed.
digest() { cat "$1" requirements.txt requirements-nodeps.txt | sha256sum | cut -d' ' -f1; }
current() { [ "$(cat ".venv/.installed-$(basename "$1")" 2>/dev/null)" = "$(digest "$1")" ]; }
# requirements-dev.txt includes requirements.txt: a venv made by `make test` serves
# `make run` as it is (no second pass over torch).
if current "$REQ" || { [ "$(basename "$REQ")" = requirements.txt ] && current requirements-dev.txt; }; then
  exit 0
fi
echo "== installing $REQ (torch is large: the first time takes a few minutes)"
.venv/bin/python -m pip install --quiet -r "$REQ"
.venv/bin/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
digest "$REQ" > ".venv/.installed-$(basename "$REQ")"
