"""/healthz and `manage.py doctor` report the database, Redis and the workers."""

import pytest
import requests
from django.core.management import call_command

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_healthz_green_with_worker(live_url, celery_worker):
    answer = requests.get(f"{live_url}/healthz", timeout=15)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["checks"]["database"]["ok"] and report["checks"]["redis"]["ok"]
    workers = report["checks"]["workers"]["workers"]
    mine = [w for w in workers if w["hostname"] == celery_worker.hostname]
    assert mine and mine[0]["device"].split(" ")[0] in {"cpu", "cuda"}
    assert set(mine[0]["queues"]) == {"cpu", "gpu"}


def test_doctor_reports_worker_device(celery_worker, capsys):
    call_command("doctor")
    out = capsys.readouterr().out
    assert celery_worker.hostname in out and "device=" in out


def test_doctor_fails_without_workers(settings, capsys):
    from emotions.services import health

    # A broker address where nothing listens: the check must say so, not hang.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    report = health.overall()
    assert not report["ok"] and not report["checks"]["redis"]["ok"]
    with pytest.raises(SystemExit):
        call_command("doctor")
