"""A dying worker never leaves a job running: heartbeats tell slow from dead, and the
next worker to start (or the periodic reaper) fails the orphaned job with a reason."""

import os
import signal
import time

import pytest

from emotions.models import Job
from emotions.services import jobs
from sersite.celery import app
from tests.conftest import start_worker
from tests.live import wait_for_job

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

TIMEOUT_S = 2  # heartbeat timeout of the workers in this test (a beat every 0.5 s)


def _send(user, queue: str, **params) -> Job:
    job = Job.objects.create(owner=user, kind=Job.Kind.DIAGNOSTIC, params=params)
    app.send_task("sersite.cpu.diagnostic", args=[job.pk], queue=queue)
    return job


def test_slow_job_lives_and_killed_worker_job_fails(live_env, logs_dir, make_user, settings):
    queue = f"faults-{os.getpid()}"
    env = {**live_env, "JOB_HEARTBEAT_TIMEOUT": str(TIMEOUT_S)}
    settings.JOB_HEARTBEAT_TIMEOUT = TIMEOUT_S
    user = make_user("ada")
    doomed = start_worker(env, logs_dir, name="doomed", queues=queue)
    try:
        # 1. Steps of 3 s with no progress report in between: heartbeats keep it alive.
        slow = _send(user, queue, steps=2, delay=3)
        wait_for_job(slow.pk, lambda j: j.state == "running")
        time.sleep(TIMEOUT_S + 1.5)
        assert jobs.reap_stale_jobs() == 0
        assert wait_for_job(slow.pk, lambda j: j.is_terminal).state == "succeeded"

        # 2. Kill the worker (and its pool) in the middle of a job.
        doomed_job = _send(user, queue, steps=200, delay=0.1)
        wait_for_job(doomed_job.pk, lambda j: j.state == "running" and j.progress > 0)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        if doomed.poll() is None:
            os.killpg(doomed.pid, signal.SIGKILL)
    assert Job.objects.get(pk=doomed_job.pk).state == "running"
    time.sleep(TIMEOUT_S + 0.5)

    # 3. The next worker to start fails the orphan with a reason, and then works.
    rescuer = start_worker(env, logs_dir, name="rescuer", queues=queue)
    try:
        failed = wait_for_job(doomed_job.pk, lambda j: j.is_terminal, timeout=30)
        assert failed.state == "failed" and "stopped responding" in failed.error
        after = _send(user, queue, steps=1, delay=0)
        assert wait_for_job(after.pk, lambda j: j.is_terminal).state == "succeeded"
    finally:
        os.killpg(rescuer.pid, signal.SIGTERM)
        rescuer.wait(timeout=20)
