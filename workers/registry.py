"""Workers announce themselves in Redis: host, queues and device, for /healthz and doctor."""

import json
import os
import time

import redis
from django.conf import settings

# Liveness comes from a Celery ping; the key only tells which device a worker uses.
KEY_TTL_S = 7 * 24 * 3600


def _key(hostname: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}:worker:{hostname}"


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


# This process's own record, kept to announce it again (see refresh).
_announced: dict = {}


def announce(hostname: str, queues: list[str], device: str) -> None:
    record = {
        "hostname": hostname,
        "queues": sorted(queues),
        "device": device,
        "pid": os.getpid(),
        "started": time.time(),
    }
    _announced.clear()
    _announced.update(record)
    _client().set(_key(hostname), json.dumps(record), ex=KEY_TTL_S)


def refresh() -> bool:
    """Write this worker's record again if Redis lost it (a restart, a flush); the
    worker's supervisor calls this every few seconds. True when it had to."""
    if not _announced:
        return False
    client = _client()
    key = _key(_announced["hostname"])
    if client.exists(key):
        return False
    client.set(key, json.dumps(_announced), ex=KEY_TTL_S)
    return True


def withdraw(hostname: str) -> None:
    _client().delete(_key(hostname))


def known_workers() -> dict[str, dict]:
    client = _client()
    out = {}
    for key in client.scan_iter(_key("*")):
        raw = client.get(key)
        if raw:
            record = json.loads(raw)
            out[record["hostname"]] = record
    return out
