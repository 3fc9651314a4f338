"""The job service: state transitions, duplicate-execution guard, cancel, delete, reaper."""

from datetime import timedelta

import pytest
from django.utils import timezone

from emotions.models import Job
from emotions.services import jobs
from emotions.services.errors import Conflict

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(make_user):
    return Job.objects.create(owner=make_user("ada"), kind=Job.Kind.DIAGNOSTIC)


def test_start_claims_a_queued_job_once(job):
    started = jobs.start(job.pk, "w1", "cpu (2 threads)")
    assert started.state == Job.State.RUNNING and started.attempts == 1
    # A redelivered copy of the task must not run it a second time.
    assert jobs.start(job.pk, "w2", "cpu") is None
    job.refresh_from_db()
    assert job.worker == "w1"


def test_stale_running_job_is_taken_over(job, settings):
    jobs.start(job.pk, "w1", "cpu")
    old = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT + 5)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=old)
    taken = jobs.start(job.pk, "w2", "cpu")
    assert taken is not None and taken.worker == "w2" and taken.attempts == 2


def test_finished_job_never_restarts(job):
    jobs.start(job.pk, "w1", "cpu")
    jobs.succeed(job.pk, {"x": 1})
    assert jobs.start(job.pk, "w2", "cpu") is None


def test_cancel_queued_job_ends_it_at_once(job):
    cancelled = jobs.request_cancel(job)
    assert cancelled.state == Job.State.CANCELLED and cancelled.finished_at is not None
    assert jobs.start(job.pk, "w1", "cpu") is None


def test_cancel_running_job_raises_at_next_report(job):
    jobs.start(job.pk, "w1", "cpu")
    jobs.report(job.pk, 0.1, "x")
    jobs.request_cancel(Job.objects.get(pk=job.pk))
    with pytest.raises(jobs.JobCancelled):
        jobs.report(job.pk, 0.2, "x")
    assert Job.objects.get(pk=job.pk).progress == pytest.approx(0.2)


def test_run_records_failure_and_cancel(job, make_user):
    def boom(job, reporter):
        raise ValueError("bad block 7")

    failed = jobs.run(job.pk, boom, "w1", "cpu")
    assert failed.state == Job.State.FAILED
    # Plain words and a reference, never the exception (it is in the log).
    assert failed.error.startswith(f"An internal error stopped this job (reference {job.pk})")
    assert "ValueError" not in failed.error

    other = Job.objects.create(owner=job.owner, kind=Job.Kind.DIAGNOSTIC)

    def cancels(job, reporter):
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
        reporter.progress(0.5, "stage")
        return {"never": True}

    assert jobs.run(other.pk, cancels, "w1", "cpu").state == Job.State.CANCELLED


def test_cannot_cancel_or_delete_in_wrong_state(job):
    jobs.start(job.pk, "w1", "cpu")
    with pytest.raises(Conflict):
        jobs.delete_job(Job.objects.get(pk=job.pk))
    jobs.succeed(job.pk)
    with pytest.raises(Conflict):
        jobs.request_cancel(Job.objects.get(pk=job.pk))
    jobs.delete_job(Job.objects.get(pk=job.pk))
    assert not Job.objects.filter(pk=job.pk).exists()


def test_reaper_fails_only_silent_running_jobs(job, make_user, settings):
    fresh = Job.objects.create(owner=job.owner, kind=Job.Kind.DIAGNOSTIC)
    jobs.start(job.pk, "w1", "cpu")
    jobs.start(fresh.pk, "w1", "cpu")
    old = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT + 5)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=old)
    assert jobs.reap_stale_jobs() == 1
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.state == Job.State.FAILED and "stopped responding" in job.error
    assert fresh.state == Job.State.RUNNING
