"""/healthz finds the workers after Redis lost their records (a restart, a flush): the
health check asks a worker that answers the ping for its queues, and each worker writes
its record again within seconds."""

import time

import pytest

from emotions.services import health
from workers import registry

pytestmark = pytest.mark.live


def _mine(result: dict, hostname: str) -> dict:
    return next(w for w in result["workers"] if w["hostname"] == hostname)


def test_lost_records_are_found_again(celery_worker):
    hostname = celery_worker.hostname
    assert hostname in registry.known_workers()
    registry._client().delete(registry._key(hostname))  # as a Redis restart would

    result = health.check_workers(timeout=5)
    assert set(_mine(result, hostname)["queues"]) == {"cpu", "gpu"}, result
    assert "warning" not in result, result

    deadline = time.monotonic() + 60
    while hostname not in registry.known_workers():
        assert time.monotonic() < deadline, "the worker never announced itself again"
        time.sleep(0.5)
    record = registry.known_workers()[hostname]
    assert record["queues"] == ["cpu", "gpu"] and record["device"].startswith(("cpu", "cuda"))
