"""No job holds a worker forever, and no user holds the queue.

Against a real Celery worker (its own queue, one process): a job stuck without reporting
progress is stopped by its time limit (soft, or hard when it ignores the signal), by cancel
(interrupted, then killed), a job whose process is killed ends failed with a reason, and
the next job runs on the same worker. A job left running by a worker killed whole ends
when its owner looks, with no worker left. Four jobs from one user: the fourth is a 429,
nothing stored, while another user's job is accepted and runs.
"""

import io
import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from emotions.models import Job, Lecture
from emotions.services import jobs
from tests.conftest import _stop, start_worker
from tests.hardening import inputs as make
from tests.live import wait_for_job
from workers.supervisor import KILLED_ON_CANCEL

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

TASK = "sersite.cpu.diagnostic"


def _ended(job_id: int, timeout: float = 90) -> Job:
    return wait_for_job(job_id, lambda j: j.is_terminal, timeout)


@pytest.fixture
def limited_worker(live_env, logs_dir, settings):
    """A worker on a queue of its own, with short grace periods; jobs sent from here get a
    3 s time limit and are killed 3 s later if they ignore it."""
    settings.JOB_TIME_LIMIT_DIAGNOSTIC = 3
    settings.JOB_TIME_LIMIT_GRACE = 3
    env = {
        **live_env,
        "JOB_CANCEL_GRACE": "1",
        "JOB_TIME_LIMIT_GRACE": "3",
        "WORKER_SUPERVISE_INTERVAL": "0.5",
    }
    queue = f"limits-{os.getpid()}"
    proc = start_worker(env, logs_dir, name="limits", queues=queue)
    proc.queue = queue
    yield proc
    _stop(proc)


def _send(worker, user, **params) -> Job:
    job = Job.objects.create(owner=user, kind=Job.Kind.DIAGNOSTIC, params=params)
    assert jobs.send(job.pk, TASK, worker.queue)
    return job


def test_stuck_jobs_end_by_time_limit_cancel_or_lost_process(limited_worker, make_user, settings):
    user = make_user("ada")
    # A first job loads the libraries, so the 3 s limits below count the stuck code only.
    settings.JOB_TIME_LIMIT_DIAGNOSTIC = 600
    assert _ended(_send(limited_worker, user, steps=1, delay=0).pk).state == "succeeded"
    settings.JOB_TIME_LIMIT_DIAGNOSTIC = 3

    # 1. Spinning without a report: the soft limit stops it, with a reason.
    spun = _ended(_send(limited_worker, user, spin="interruptible").pk)
    assert spun.state == "failed", spun.message
    assert spun.error.startswith("Stopped after ") and "the time limit for a self-test job" in (
        spun.error
    ), spun.error
    assert "is 3 s" in spun.error and "Exception" not in spun.error

    # 2. Ignoring the soft limit (as code stuck in C would): killed at the hard limit.
    stuck = _ended(_send(limited_worker, user, spin="uninterruptible").pk)
    assert stuck.state == "failed" and "the time limit for a self-test job" in stuck.error

    # 3. Cancel: a job that ignores it too is interrupted, then its process killed.
    settings.JOB_TIME_LIMIT_DIAGNOSTIC = 600
    for mode, message in (("interruptible", "Cancelled."), ("uninterruptible", KILLED_ON_CANCEL)):
        job = _send(limited_worker, user, spin=mode)
        wait_for_job(job.pk, lambda j: j.state == "running", timeout=90)
        if mode == "uninterruptible":
            # The worker's only process is stuck; its reaper never waits behind it.
            gone = timezone.now() - timedelta(hours=1)
            orphan = Job.objects.create(
                owner=user, kind="diagnostic", state="running", heartbeat_at=gone
            )
            assert _ended(orphan.pk, timeout=60).error == jobs.STALE_MESSAGE
            assert Job.objects.get(pk=job.pk).state == "running"
        jobs.request_cancel(job)
        cancelled = _ended(job.pk, timeout=60)
        assert (cancelled.state, cancelled.message) == ("cancelled", message), mode

    # 4. A job whose process dies (the kernel's OOM killer, say) fails with a reason.
    doomed = _send(limited_worker, user, steps=300, delay=0.1)
    running = wait_for_job(doomed.pk, lambda j: j.state == "running" and j.progress > 0, timeout=90)
    os.kill(int(running.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    lost = _ended(doomed.pk)
    assert lost.state == "failed" and lost.error == jobs.LOST_MESSAGE

    # 5. Through all of it the worker lived on, with a fresh process for the next job.
    assert limited_worker.poll() is None
    after = _ended(_send(limited_worker, user, steps=1, delay=0).pk)
    assert after.state == "succeeded", after.error
    assert after.worker != running.worker


def test_orphan_fails_when_its_owner_looks_with_no_worker_left(
    live_env, logs_dir, make_user, settings
):
    settings.JOB_HEARTBEAT_TIMEOUT = 2
    queue = f"orphans-{os.getpid()}"
    worker = start_worker({**live_env, "JOB_HEARTBEAT_TIMEOUT": "2"}, logs_dir, "gone", queue)
    worker.queue = queue
    owner = make_user("ada")
    try:
        job = _send(worker, owner, steps=300, delay=0.1)
        wait_for_job(job.pk, lambda j: j.state == "running" and j.progress > 0, timeout=90)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    time.sleep(3)  # past the heartbeat timeout; nothing else runs a reaper now
    assert Job.objects.get(pk=job.pk).state == "running"
    client = APIClient()
    client.force_authenticate(owner)
    read = client.get(f"/api/jobs/{job.pk}/").json()
    assert read["state"] == "failed" and read["error"] == jobs.STALE_MESSAGE


def _post_lecture(client: APIClient):
    upload = io.BytesIO(make.valid_wav(1.0))
    upload.name = "talk.wav"
    return client.post("/api/lectures/", {"file": upload}, format="multipart")


def test_fourth_job_is_refused_and_nothing_stored(
    make_user, emotion_model, settings, tmp_path, monkeypatch
):
    settings.MEDIA_ROOT = tmp_path
    settings.JOBS_PER_USER_MAX = 3
    # The jobs stay queued: a worker left running by an earlier test must not finish them
    # before the fourth upload (the limit counts queued jobs too).
    monkeypatch.setattr(jobs, "_dispatch", lambda *args, **kwargs: None)
    client = APIClient()
    client.force_authenticate(make_user("teacher"))
    # Queued (no worker on this run's queues needed: the limit counts queued jobs too).
    for _ in range(3):
        assert _post_lecture(client).status_code == 201
    refused = _post_lecture(client)
    assert refused.status_code == 429, refused.content
    assert "limit is 3 per user" in refused.json()["detail"]
    assert Lecture.objects.count() == 3 and Job.objects.count() == 3
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 3
    selftest = client.post("/api/jobs/", {"steps": 1}, format="json")
    assert selftest.status_code == 429
    # A cancelled job frees its slot.
    jobs.request_cancel(Job.objects.first())
    assert _post_lecture(client).status_code == 201


def test_one_user_cannot_starve_another(make_user, login_as, live_url, celery_worker):
    from tests.live import wait_for_state

    make_user("hog")
    make_user("other")
    hog, other = login_as("hog"), login_as("other")
    long = {"steps": 10, "delay": 0.3}
    accepted = [hog.post(f"{live_url}/api/jobs/", json=long, timeout=30) for _ in range(3)]
    assert [a.status_code for a in accepted] == [201, 201, 201]
    refused = hog.post(f"{live_url}/api/jobs/", json=long, timeout=30)
    assert refused.status_code == 429 and "per user" in refused.json()["detail"]
    mine = other.post(f"{live_url}/api/jobs/", json={"steps": 1, "delay": 0}, timeout=30)
    assert mine.status_code == 201, mine.text
    done = wait_for_state(other, live_url, mine.json()["id"], {"succeeded", "failed"}, 120)
    assert done["state"] == "succeeded", done
    for answer in accepted:
        job = wait_for_state(hog, live_url, answer.json()["id"], {"succeeded", "failed"}, 120)
        assert job["state"] == "succeeded"
    # Its jobs done, the same user may start again.
    again = hog.post(f"{live_url}/api/jobs/", json={"steps": 1, "delay": 0}, timeout=30)
    assert again.status_code == 201


@pytest.mark.parametrize("page", ["/", "/jobs/", "/jobs/{id}/", "/api/jobs/"])
def test_every_job_view_fails_its_owners_orphans(make_user, settings, client, page):
    owner, other = make_user("ada"), make_user("bob")
    stale = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT + 5)
    mine, theirs = (
        Job.objects.create(owner=user, kind="diagnostic", state="running", heartbeat_at=stale)
        for user in (owner, other)
    )
    client.force_login(owner)
    assert client.get(page.format(id=mine.pk)).status_code == 200
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.state, mine.error) == ("failed", jobs.STALE_MESSAGE)
    assert theirs.state == "running"  # each user's reads end their own orphans only
