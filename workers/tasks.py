"""Celery tasks: a few lines each — load ids, call a service, report.

Task names carry their queue (sersite.cpu.* / sersite.gpu.*), see CELERY_TASK_ROUTES.
"""

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from emotions.services import jobs
from workers import registry
from workers.device import device_description, worker_label


def _run(job_id: int, body) -> None:
    jobs.run(job_id, body, worker=worker_label(), device=device_description())


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
