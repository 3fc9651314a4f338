"""Celery tasks: a few lines each — load ids, call a service, report.

Task names carry their queue (sersite.cpu.* / sersite.gpu.*), see CELERY_TASK_ROUTES.
"""

import logging

from celery import current_task, shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from emotions.services import jobs
from workers import registry
from workers.device import device_description, worker_label

logger = logging.getLogger(__name__)


def _run(job_id: int, body) -> None:
    try:
        jobs.run(job_id, body, worker=worker_label(), device=device_description())
    except jobs.RunningElsewhere:
        # A redelivered copy while the job runs on another worker: look again once a
        # heartbeat could have gone stale, and take the job over if that worker died.
        raise current_task.retry(
            countdown=settings.JOB_HEARTBEAT_TIMEOUT, max_retries=None
        ) from None


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
