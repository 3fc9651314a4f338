"""Jobs: creation, the progress service every task reports through, cancel, delete.

State lives in the database; every change is also broadcast to the channel groups
`job.<id>` and `user.<owner id>` so pages update live and can catch up from the API.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from emotions.models import Job, job_group, user_group
from emotions.services.errors import Conflict, ServiceError, failure_message
from emotions.services.events import broadcast

logger = logging.getLogger(__name__)

# Which Celery task runs which kind of job; tasks are sent by name so the web
# process never imports the worker code (torch and friends).
TASKS = {
    (Job.Kind.DIAGNOSTIC, "cpu"): "sersite.cpu.diagnostic",
    (Job.Kind.DIAGNOSTIC, "gpu"): "sersite.gpu.diagnostic",
    (Job.Kind.ANALYSIS, "gpu"): "sersite.gpu.analyse_lecture",
    (Job.Kind.IMPORT, "cpu"): "sersite.cpu.import_dataset",
    (Job.Kind.TRAINING, "gpu"): "sersite.gpu.train_model",
}
DEFAULT_QUEUE = {
    Job.Kind.DIAGNOSTIC: "cpu",
    Job.Kind.ANALYSIS: "gpu",
    Job.Kind.IMPORT: "cpu",
    Job.Kind.TRAINING: "gpu",
}


class JobCancelled(Exception):
    """Raised inside a task at its next progress report once cancel was asked."""


def serialize_job(job: Job) -> dict[str, Any]:
    """The public shape of a job, shared by the API and the live events."""
    return {
        "id": job.pk,
        "kind": job.kind,
        "state": job.state,
        "progress": round(job.progress, 4),
        "stage": job.stage,
        "message": job.message,
        "error": job.error,
        "result": job.result,
        "device": job.device,
        "cancel_requested": job.cancel_requested,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def _emit(job: Job, event: str, data: dict | None = None) -> None:
    """The event to the job's group and to the owner's group (all their open pages).

    Both copies carry the data, so a page listening to its user's group from before
    a job was created misses none of its results; `via` lets a consumer that is in
    both groups deliver each event once.
    """
    message = {"type": "job.event", "event": event, "job": serialize_job(job), "data": data}
    broadcast([job_group(job.pk)], {**message, "via": "job"})
    broadcast([user_group(job.owner_id)], {**message, "via": "user"})


def create_job(
    owner, kind: str, params: dict | None = None, queue: str | None = None, dispatch: bool = True
) -> Job:
    """Save a queued job and send its task once the row is committed (unless the caller,
    e.g. a management command, runs it in its own process: `dispatch=False`)."""
    queue = queue or DEFAULT_QUEUE[kind]
    task_name = TASKS.get((kind, queue))
    if task_name is None:
        raise ServiceError(f"{kind} jobs cannot run on the {queue!r} queue.")
    job = Job.objects.create(owner=owner, kind=kind, params=params or {})
    if dispatch:
        transaction.on_commit(lambda: _dispatch(job.pk, task_name, queue))
    return job


def _dispatch(job_id: int, task_name: str, queue: str) -> None:
    from sersite.celery import app

    try:
        # Results live in the job's row, never in Celery's result store: without
        # ignore_result every send subscribes this process to the task's result channel,
        # and with Redis down it retried that for 20 s before the job could fail.
        result = app.send_task(task_name, args=[job_id], queue=queue, ignore_result=True)
    except Exception as exc:  # broker down: the job must not stay queued forever
        logger.exception("could not queue job %s", job_id)
        fail(job_id, f"Could not reach the job queue: {exc}")
        return
    Job.objects.filter(pk=job_id).update(celery_task_id=result.id)


def start(job_id: int, worker: str, device: str) -> Job | None:
    """Move a job to running for this worker; None when it must not run here.

    Guards against duplicate execution: a redelivered task (broker visibility
    timeout, a retried task) finds the job running with a fresh heartbeat, or
    finished, and does nothing.
    """
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(
        state=Job.State.RUNNING,
        started_at=now,
        heartbeat_at=now,
        worker=worker,
        device=device,
        stage="starting",
        message="",
    )
    if not claimed:
        job = Job.objects.filter(pk=job_id).first()
        if job is None or job.is_terminal or not _is_stale(job, now):
            return None
        # The worker that ran it died: take it over, but only if nobody else did.
        claimed = Job.objects.filter(pk=job_id, heartbeat_at=job.heartbeat_at).update(
            heartbeat_at=now, worker=worker, device=device
        )
        if not claimed:
            return None
    Job.objects.filter(pk=job_id).update(attempts=F("attempts") + 1)
    job = Job.objects.get(pk=job_id)
    _emit(job, "state")
    return job


def _is_stale(job: Job, now) -> bool:
    limit = timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT)
    return job.heartbeat_at is None or now - job.heartbeat_at > limit


@dataclass
class Reporter:
    """What a running job's code gets to report progress and publish results.

    Progress is saved and broadcast at most every `min_interval` seconds (first,
    last and stage changes always go through); each report checks for cancel.
    """

    job_id: int
    min_interval: float = 0.25
    _last: float = field(default=0.0, repr=False)
    _stage: str = field(default="", repr=False)

    def progress(self, fraction: float, stage: str = "", message: str = "", **data) -> None:
        now = time.monotonic()
        fraction = min(max(float(fraction), 0.0), 1.0)
        stage_changed = stage != self._stage
        if not stage_changed and fraction < 1.0 and now - self._last < self.min_interval:
            return
        self._last, self._stage = now, stage
        report(self.job_id, fraction, stage, message, data or None)

    def publish(self, event: str, data: dict) -> None:
        """Broadcast a result event (e.g. a batch of segments) without saving progress."""
        self.check_cancel()
        job = Job.objects.get(pk=self.job_id)
        _emit(job, event, data)

    def check_cancel(self) -> None:
        if Job.objects.filter(pk=self.job_id, cancel_requested=True).exists():
            raise JobCancelled()

    def cancelled(self) -> bool:
        return Job.objects.filter(pk=self.job_id, cancel_requested=True).exists()


def report(
    job_id: int, progress: float, stage: str = "", message: str = "", data: dict | None = None
) -> Job:
    """Save a running job's progress, broadcast it, and raise JobCancelled if asked."""
    now = timezone.now()
    Job.objects.filter(pk=job_id, state=Job.State.RUNNING).update(
        progress=progress, stage=stage[:60], message=message[:500], heartbeat_at=now
    )
    job = Job.objects.get(pk=job_id)
    if job.cancel_requested or job.state == Job.State.CANCELLED:
        raise JobCancelled()
    _emit(job, "progress", data)
    return job


def _finish(job_id: int, state: str, **fields) -> Job:
    Job.objects.filter(pk=job_id).exclude(state__in=Job.TERMINAL_STATES).update(
        state=state, finished_at=timezone.now(), **fields
    )
    job = Job.objects.get(pk=job_id)
    _emit(job, "state")
    return job


def succeed(job_id: int, result: dict | None = None, message: str = "Done.") -> Job:
    return _finish(
        job_id, Job.State.SUCCEEDED, progress=1.0, result=result or {}, message=message, stage=""
    )


def fail(job_id: int, error: str) -> Job:
    return _finish(job_id, Job.State.FAILED, error=error[:5000], message=error[:500])


def mark_cancelled(job_id: int) -> Job:
    return _finish(job_id, Job.State.CANCELLED, message="Cancelled.")


class RunningElsewhere(Exception):
    """The job is running on another worker that still sends heartbeats."""


class _Heartbeat(threading.Thread):
    """Touches the job's heartbeat while its body runs, however long a step takes, so the
    reaper (and a redelivered copy of the task) can tell a slow job from a dead worker."""

    def __init__(self, job_id: int, interval: float):
        super().__init__(name=f"heartbeat-job-{job_id}", daemon=True)
        self.job_id, self.interval = job_id, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                Job.objects.filter(pk=self.job_id, state=Job.State.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        except Exception:  # database gone for a moment: the next beat tries again
            logger.warning("heartbeat of job %s failed", self.job_id, exc_info=True)
        finally:
            connection.close()


def run(job_id: int, body: Callable[[Job, Reporter], dict | None], worker: str, device: str):
    """Run `body` as job `job_id`: the one wrapper every Celery task uses.

    The body returns the result dict (its "message", if any, becomes the job's message,
    e.g. a result worth a remark). Cancel ends `cancelled`; any exception ends
    `failed` with its message stored, and is not re-raised, so the worker lives on.
    Raises RunningElsewhere when another live worker runs this job (the task then
    checks again later, and takes over if that worker dies).
    """
    job = start(job_id, worker, device)
    if job is None:
        current = Job.objects.filter(pk=job_id).first()
        if current is not None and current.state == Job.State.RUNNING:
            raise RunningElsewhere(f"job {job_id} runs on {current.worker}")
        logger.info("job %s not started here (finished or cancelled)", job_id)
        return None
    if job.cancel_requested:
        return mark_cancelled(job_id)
    heartbeat = _Heartbeat(job_id, interval=max(settings.JOB_HEARTBEAT_TIMEOUT / 4, 0.5))
    heartbeat.start()
    try:
        result = body(job, Reporter(job_id))
    except JobCancelled:
        return mark_cancelled(job_id)
    except ServiceError as exc:
        return fail(job_id, failure_message(exc, job_id))
    except Exception as exc:
        if Job.objects.filter(pk=job_id, cancel_requested=True).exists():
            # What it was working on went away with the cancel (e.g. a deleted lecture).
            return mark_cancelled(job_id)
        # Plain words for the owner; the traceback goes to the log under the job's id.
        return fail(job_id, failure_message(exc, job_id))
    finally:
        heartbeat.stopped.set()
    return succeed(job_id, result, message=(result or {}).get("message") or "Done.")


def request_cancel(job: Job) -> Job:
    """Cancel a queued job at once, or ask a running one to stop at its next report."""
    if job.is_terminal:
        raise Conflict(f"This job has already ended ({job.state}).")
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    claimed = Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(
        state=Job.State.CANCELLED,
        finished_at=timezone.now(),
        message="Cancelled before it started.",
    )
    if claimed and job.celery_task_id:
        from sersite.celery import app

        try:
            app.control.revoke(job.celery_task_id)
        except Exception:  # the job row already says cancelled; the task will skip it
            logger.warning("could not revoke task of job %s", job.pk, exc_info=True)
    if not claimed:
        Job.objects.filter(pk=job.pk).update(message="Cancelling…")
    job.refresh_from_db()
    _emit(job, "state")
    return job


def delete_job(job: Job) -> None:
    if not job.is_terminal:
        raise Conflict("This job is still running: cancel it first, then delete it.")
    job.delete()


def reap_stale_jobs() -> int:
    """Fail running jobs whose worker stopped sending heartbeats; returns how many."""
    limit = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT)
    stale = list(
        Job.objects.filter(state=Job.State.RUNNING, heartbeat_at__lt=limit).values_list(
            "pk", flat=True
        )
    )
    for job_id in stale:
        fail(job_id, "The worker running this job stopped responding; the job was stopped.")
    return len(stale)
