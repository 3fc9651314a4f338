"""Health of the parts the site needs: database, Redis, workers (and their devices)."""

from typing import Any

import redis
from django.conf import settings
from django.db import connection


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def check_redis() -> dict[str, Any]:
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
        client.ping()
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}


def check_workers(timeout: float = 1.5) -> dict[str, Any]:
    """Ping the workers over the broker; report each one's queues and device."""
    from sersite.celery import app
    from workers.registry import known_workers

    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception as exc:
        return {"ok": False, "error": str(exc), "workers": []}
    alive = sorted(name for reply in replies for name in reply)
    try:
        records = known_workers()
    except Exception:
        records = {}
    unknown = [name for name in alive if name not in records]
    if unknown:  # answered but not announced (Redis lost the records): ask them directly
        records.update(_ask_queues(app, unknown, timeout))
    workers = [
        {
            "hostname": name,
            "queues": records.get(name, {}).get("queues", []),
            "device": records.get(name, {}).get("device", "unknown"),
        }
        for name in alive
    ]
    queues = {q for w in workers for q in w["queues"]}
    result: dict[str, Any] = {"ok": bool(workers), "workers": workers}
    missing = {"cpu", "gpu"} - queues
    if workers and missing:
        result["warning"] = f"no worker listens on queue(s): {', '.join(sorted(missing))}"
    if not workers:
        result["error"] = "no worker answered"
    return result


def _ask_queues(app, names: list[str], timeout: float) -> dict[str, dict]:
    """The queues of these workers, from the workers themselves (device unknown)."""
    try:
        replies = app.control.inspect(destination=names, timeout=timeout).active_queues() or {}
    except Exception:
        return {}
    return {name: {"queues": sorted(q["name"] for q in queues)} for name, queues in replies.items()}


def overall() -> dict[str, Any]:
    checks = {"database": check_database(), "redis": check_redis()}
    checks["workers"] = (
        check_workers() if checks["redis"]["ok"] else {"ok": False, "error": "Redis is down"}
    )
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}
