#!/usr/bin/env bash
# Make sure a Redis answers at REDIS_URL's host and port (default 127.0.0.1:6379).
# Starts one (installing redis-server from the distribution when missing) if none
# listens; prints the PID file of a Redis it started, so the caller can stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
HOSTPORT="${URL#redis://}"; HOSTPORT="${HOSTPORT#*@}"; HOSTPORT="${HOSTPORT%%/*}"
HOST="${HOSTPORT%%:*}"; PORT="${HOSTPORT##*:}"; [ "$PORT" = "$HOST" ] && PORT=6379
listening() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }
if listening; then exit 0; fi
case "$HOST" in 127.0.0.1|localhost|::1) ;; *)
  echo "No Redis answers at $HOST:$PORT and it is not this machine: start it there." >&2; exit 1;;
esac
if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing redis-server from the distribution's packages" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis-server is missing and apt-get is not available: install Redis, then retry." >&2; exit 1
  fi
fi
mkdir -p var
PIDFILE="$PWD/var/redis-$PORT.pid"
redis-server --daemonize yes --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no \
  --dir "$PWD/var" --pidfile "$PIDFILE" --logfile "$PWD/var/redis-$PORT.log" >/dev/null
for _ in $(seq 50); do listening && break; sleep 0.1; done
listening || { echo "Redis did not start: see var/redis-$PORT.log" >&2; exit 1; }
echo "$PIDFILE"
