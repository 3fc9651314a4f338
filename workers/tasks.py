"""Celery tasks: a few lines each — load ids, call a service, report.

Task names carry their queue (sersite.cpu.* / sersite.gpu.*), see CELERY_TASK_ROUTES.
"""

import logging

from billiard.exceptions import WorkerLostError
from celery import current_task, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import task_failure, worker_ready, worker_shutdown
from django.conf import settings

from emotions.services import jobs
from emotions.services.errors import ServiceError
from workers import registry
from workers.device import device_description, worker_label

logger = logging.getLogger(__name__)


def _run(job_id: int, body) -> None:
    try:
        jobs.run(job_id, _bounded(body), worker=worker_label(), device=device_description())
    except jobs.RunningElsewhere:
        # A redelivered copy while the job runs on another worker: look again once a
        # heartbeat could have gone stale, and take the job over if that worker died.
        raise current_task.retry(
            countdown=settings.JOB_HEARTBEAT_TIMEOUT, max_retries=None
        ) from None
    except SoftTimeLimitExceeded:
        # The limit struck outside the job's own code (loading libraries, say): the job
        # still ends, with the same reason.
        jobs.fail_past_time_limit(job_id, _soft_limit())


def _soft_limit() -> float:
    _, soft = current_task.request.timelimit or (None, None)
    return soft or 0


def _bounded(body):
    """`body`, with Celery's soft time limit (and the supervisor's interrupt of a job that
    ignores its cancel, the same signal) turned into the job's end with a reason."""

    def bounded(job, reporter: jobs.Reporter):
        try:
            return body(job, reporter)
        except SoftTimeLimitExceeded:
            if reporter.cancelled():
                raise jobs.JobCancelled() from None
            raise ServiceError(jobs.time_limit_message(job, _soft_limit())) from None

    return bounded


@task_failure.connect
def _job_process_lost(sender=None, exception=None, args=None, **kwargs) -> None:
    """In the worker's main process: a job whose process was killed (past its hard time
    limit, by the kernel) ends failed with a reason; the pool starts a fresh process."""
    if not isinstance(exception, TimeLimitExceeded | WorkerLostError) or not args:
        return
    job_id = args[0]
    if isinstance(exception, TimeLimitExceeded):
        # The exception carries the hard limit; the job's own limit is the soft one.
        hard = float(exception.args[0]) if exception.args else 0.0
        grace = settings.JOB_TIME_LIMIT_GRACE
        jobs.fail_past_time_limit(job_id, hard - grace if hard > grace else hard)
    else:
        jobs.fail_lost(job_id)


@shared_task(name="sersite.cpu.diagnostic")
def diagnostic_cpu(job_id: int) -> None:
    from emotions.services.diagnostics import run_diagnostic

    _run(job_id, run_diagnostic)


@shared_task(name="sersite.gpu.diagnostic")
def diagnostic_gpu(job_id: int) -> None:
    from emotions.services.diagnostics import run_diagnostic

    _run(job_id, run_diagnostic)


@shared_task(name="sersite.cpu.reap_stale_jobs")
def reap_stale_jobs() -> int:
    return jobs.reap_stale_jobs()


@worker_ready.connect
def _announce(sender, **kwargs) -> None:
    queues = [q.name for q in sender.task_consumer.queues] if sender.task_consumer else []
    registry.announce(sender.hostname, queues, device_description())
    # Jobs left running by a worker that died (killed, host lost) end here at the latest.
    reaped = jobs.reap_stale_jobs()
    if reaped:
        logger.warning("failed %d job(s) whose worker stopped responding", reaped)


@worker_shutdown.connect
def _withdraw(sender, **kwargs) -> None:
    try:
        registry.withdraw(sender.hostname)
    except Exception:  # Redis gone at shutdown: the key expires on its own
        pass


@shared_task(name="sersite.gpu.analyse_lecture")
def analyse_lecture(job_id: int) -> None:
    from emotions.services.lectures import analyse

    _run(job_id, analyse)


@shared_task(name="sersite.cpu.import_dataset")
def import_dataset(job_id: int) -> None:
    from emotions.services.datasets import run_import

    _run(job_id, run_import)


@shared_task(name="sersite.gpu.train_model")
def train_model(job_id: int) -> None:
    from emotions.services.training import run_training

    _run(job_id, run_training)
