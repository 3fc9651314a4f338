#!/usr/bin/env bash
# Run the whole site: virtualenv, Redis, migrations, the ASGI server and a worker.
# Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh requirements.txt
scripts/system_packages.sh espeak-ng || echo "(espeak-ng unavailable: only manage.py demo needs it)" >&2
REDIS_PIDFILE="$(scripts/redis.sh)"
stop_redis() {
  if [ -n "$REDIS_PIDFILE" ] && [ -f "$REDIS_PIDFILE" ]; then
    kill "$(cat "$REDIS_PIDFILE")" 2>/dev/null || true
  fi
}
trap stop_redis EXIT
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput -v 0
.venv/bin/python manage.py ensure_admin
# honcho sets PORT (5000) for its processes, so the port travels as WEB_PORT: the address
# printed here is the one the server listens on.
export HOST="${HOST:-127.0.0.1}" WEB_PORT="${PORT:-8000}"
echo
echo "  sersite runs at http://${HOST}:${WEB_PORT}/   (Ctrl-C stops it)"
echo
.venv/bin/honcho start -f Procfile
