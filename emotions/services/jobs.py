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
from django.contrib.auth import get_user_model
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
    """The one public shape of a job: the API's JobSerializer, the live events and the
    consumer's catch-up all send this."""
    return {
        "id": job.pk,
        "kind": job.kind,
        "state": job.state,
        "progress": round(job.progress, 4),
        "stage": job.stage,
        "message": job.message,
        "error": job.error,
        "params": job.params,
        "result": job.result,
        "device": job.device,
        "cancel_requested": job.cancel_requested,
        "created_at": _timestamp(job.created_at),
        "started_at": _timestamp(job.started_at),
        "finished_at": _timestamp(job.finished_at),
    }


def _timestamp(moment) -> str | None:
    # Written as DRF writes datetimes (local time zone, "Z" for UTC), so the API's
    # output stays what clients already parse.
    if moment is None:
        return None
    text = timezone.localtime(moment).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


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
    with transaction.atomic():
        if dispatch:
            # Jobs a command runs in its own process (dispatch=False) take no queue slot.
            check_job_quota(owner)
        job = Job.objects.create(owner=owner, kind=kind, params=params or {})
    if dispatch:
        transaction.on_commit(lambda: _dispatch(job.pk, task_name, queue))
    return job


def _dispatch(job_id: int, task_name: str, queue: str) -> None:
    send(job_id, task_name, queue)


class TooManyJobs(ServiceError):
    """The user already has JOBS_PER_USER_MAX jobs queued or running."""

    status_code = 429


def check_job_quota(owner) -> None:
    """Refuse a new job while `owner` has JOBS_PER_USER_MAX jobs queued or running, of all
    kinds together: one user's burst of uploads cannot fill the queue ahead of everyone
    else (0 turns the limit off)."""
    limit = settings.JOBS_PER_USER_MAX
    if not limit:
        return
    # Two requests at once must not both see room: the owner's row is locked until the
    # transaction that creates the job commits (SQLite serialises writers anyway).
    users = get_user_model().objects.select_for_update()
    list(users.filter(pk=owner.pk).values_list("pk"))
    active = Job.objects.filter(owner=owner, state__in=(Job.State.QUEUED, Job.State.RUNNING))
    if active.count() >= limit:
        raise TooManyJobs(
            f"You already have {limit} jobs queued or running (the limit is {limit} per user, "
            "so that everyone's jobs get their turn). Wait for one to finish, or cancel one, "
            "then try again."
        )


# What a queued job whose task could not be sent says until the queue is back, and the
# task id that marks it for `dispatch_unsent` (jobs a command runs itself keep "").
WAITING_FOR_QUEUE = "Waiting for the job queue (unreachable just now); it starts once it is back."
UNSENT = "unsent"


def send(job_id: int, task_name: str, queue: str) -> bool:
    """Send a queued job's task, with the job's time limits; False when the broker is out
    of reach (the job stays queued, unsent, and `dispatch_unsent` sends it later).

    The task id is claimed on the row first, so two dispatchers never send one job twice.
    """
    from celery.utils import uuid

    from sersite.celery import app

    task_id = uuid()
    claimed = Job.objects.filter(
        pk=job_id, state=Job.State.QUEUED, celery_task_id__in=("", UNSENT)
    ).update(celery_task_id=task_id)
    if not claimed:
        return False
    job = Job.objects.get(pk=job_id)
    soft = time_limit_for(job)
    try:
        # Results live in the job's row, never in Celery's result store: without
        # ignore_result every send subscribes this process to the task's result channel,
        # and with Redis down it retried that for 20 s.
        app.send_task(
            task_name,
            args=[job_id],
            queue=queue,
            task_id=task_id,
            ignore_result=True,
            soft_time_limit=soft,
            time_limit=soft + settings.JOB_TIME_LIMIT_GRACE,
        )
    except Exception:  # broker down: the job waits, and is sent once the queue is back
        logger.warning("could not queue job %s; it will be sent later", job_id, exc_info=True)
        Job.objects.filter(pk=job_id, celery_task_id=task_id).update(
            celery_task_id=UNSENT, message=WAITING_FOR_QUEUE
        )
        _emit(Job.objects.get(pk=job_id), "state")
        return False
    if job.message == WAITING_FOR_QUEUE:
        Job.objects.filter(pk=job_id, message=WAITING_FOR_QUEUE).update(message="")
    return True


def dispatch_unsent(min_age_s: float = 0.0) -> int:
    """Send the queued jobs whose task never reached the broker (it was down when they
    were created); returns how many were sent. Workers call this every few seconds, so
    such jobs start once the queue is back. Jobs a command runs in its own process
    (dispatch=False) are never sent."""
    cutoff = timezone.now() - timedelta(seconds=min_age_s)
    unsent = Job.objects.filter(
        state=Job.State.QUEUED, celery_task_id=UNSENT, created_at__lt=cutoff
    )
    sent = 0
    for job in unsent.order_by("created_at", "pk")[:100]:
        queue = DEFAULT_QUEUE[job.kind]
        if not send(job.pk, TASKS[(job.kind, queue)], queue):
            break  # the broker is still out of reach: try again at the next round
        sent += 1
    return sent


def time_limit_for(job: Job) -> int:
    """Seconds a job may run before it is stopped (its soft limit; the worker process is
    killed JOB_TIME_LIMIT_GRACE seconds later if it does not stop). Sized to the work:
    a lecture's analysis grows with its length (LECTURE_MAX_SECONDS when not known yet)."""
    if job.kind == Job.Kind.ANALYSIS:
        from emotions.models import Lecture

        lecture = Lecture.objects.filter(pk=job.params.get("lecture")).first()
        seconds = _recording_seconds(lecture) or settings.LECTURE_MAX_SECONDS
        extra = seconds * settings.JOB_TIME_LIMIT_ANALYSIS_PER_AUDIO_SECOND
        return int(settings.JOB_TIME_LIMIT_ANALYSIS + extra)
    return {
        Job.Kind.DIAGNOSTIC: settings.JOB_TIME_LIMIT_DIAGNOSTIC,
        Job.Kind.IMPORT: settings.JOB_TIME_LIMIT_IMPORT,
        Job.Kind.TRAINING: settings.JOB_TIME_LIMIT_TRAINING,
    }[job.kind]


def _recording_seconds(lecture) -> float | None:
    """A lecture's length: known once analysed, else read from its file's header (a few
    milliseconds; None when the storage has no local files or the header does not say)."""
    if lecture is None or lecture.duration_s:
        return lecture.duration_s if lecture else None
    from emotions.ser import audio

    try:
        info = audio.probe(lecture.audio.path, decode_if_unknown=False)
    except (NotImplementedError, ValueError, OSError, audio.AudioDecodeError):
        return None
    return info.duration_s or None


def time_limit_message(job: Job, limit_s: float) -> str:
    """Why a job was stopped by its time limit, for its owner."""
    now = timezone.now()
    ran = (now - job.started_at).total_seconds() if job.started_at else limit_s
    return (
        f"Stopped after {_duration(ran)}: the time limit for a "
        f"{job.get_kind_display().lower()} job like this one is {_duration(limit_s)}. "
        "Try a smaller input, or ask an admin to raise the limit."
    )


def _duration(seconds: float) -> str:
    seconds = max(int(round(seconds)), 1)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{round(seconds / 60)} minutes"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min"


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


def mark_cancelled(job_id: int, message: str = "Cancelled.") -> Job:
    return _finish(job_id, Job.State.CANCELLED, message=message)


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
    if claimed and job.celery_task_id not in ("", UNSENT):
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


STALE_MESSAGE = "The worker running this job stopped responding; the job was stopped."
LOST_MESSAGE = (
    "The worker process running this job ended unexpectedly (it was killed, or ran out "
    "of memory); the job was stopped. Try again; if it happens again, ask an admin."
)


def reap_stale_jobs(owner=None) -> int:
    """Fail running jobs whose worker stopped sending heartbeats; returns how many.

    Every worker runs this every few seconds (in its main process, never behind a job),
    and the API runs it for the user who reads their jobs, so an orphan ends even when no
    worker is left at all.
    """
    limit = timezone.now() - timedelta(seconds=settings.JOB_HEARTBEAT_TIMEOUT)
    stale = Job.objects.filter(state=Job.State.RUNNING, heartbeat_at__lt=limit)
    if owner is not None:
        stale = stale.filter(owner=owner)
    ids = list(stale.values_list("pk", flat=True))
    for job_id in ids:
        fail(job_id, STALE_MESSAGE)
    return len(ids)


def fail_lost(job_id: int, error: str = LOST_MESSAGE) -> None:
    """Fail a job whose worker process is gone (killed by its hard time limit, by the
    kernel, or crashed); a job already ended keeps its state."""
    if Job.objects.filter(pk=job_id).exclude(state__in=Job.TERMINAL_STATES).exists():
        fail(job_id, error)


def fail_past_time_limit(job_id: int, limit_s: float | None = None) -> None:
    """Fail a job stopped by its time limit (`limit_s`, else the limit it would get now)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is not None:
        fail_lost(job_id, time_limit_message(job, limit_s or time_limit_for(job)))


def running_with_cancel(job_ids: list[int]) -> set[int]:
    """Which of these jobs run while their owner asked to cancel them."""
    asked = Job.objects.filter(pk__in=job_ids, cancel_requested=True, state=Job.State.RUNNING)
    return set(asked.values_list("pk", flat=True))
