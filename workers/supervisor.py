"""The worker's supervisor: a timer in the worker's main process, beside the pool.

The main process never runs a job, so what must happen while every child is busy (or
stuck) happens here, every WORKER_SUPERVISE_INTERVAL seconds:
- a cancelled job that has not stopped on its own is interrupted (SIGUSR1: Celery's soft
  time limit signal) after JOB_CANCEL_GRACE seconds, and its process killed after twice
  that (the pool starts a fresh one); the job is then marked cancelled;
- jobs whose worker stopped sending heartbeats are failed (the reaper);
- queued jobs whose task never reached the broker (it was down) are sent;
- the worker re-announces itself, so /healthz knows it again after Redis restarts.
"""

import logging
import os
import signal
import time

from celery import bootsteps

logger = logging.getLogger(__name__)

KILLED_ON_CANCEL = "Cancelled: the job did not stop on its own, so its process was ended."
# Seconds between runs of the slower duties (the cancel check runs every tick).
REAP_EVERY_S = 10.0
DISPATCH_EVERY_S = 5.0
ANNOUNCE_EVERY_S = 15.0


class Supervisor(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer", "celery.worker.components:Pool"}
    label = "Supervisor"

    def __init__(self, worker, **kwargs):
        self.timer_entry = None
        self.cancel_seen: dict[int, float] = {}  # job id -> when its cancel was first seen
        self.interrupted: set[int] = set()
        self.last_run: dict[str, float] = {}

    def start(self, worker) -> None:
        from django.conf import settings

        self.worker = worker
        self.timer_entry = worker.timer.call_repeatedly(
            settings.WORKER_SUPERVISE_INTERVAL, self.tick, priority=10
        )

    def stop(self, worker) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    def tick(self) -> None:
        from django.db import close_old_connections

        close_old_connections()
        for name, every, duty in (
            ("cancel", 0.0, self.enforce_cancels),
            ("reap", REAP_EVERY_S, self.reap),
            ("dispatch", DISPATCH_EVERY_S, self.dispatch),
            ("announce", ANNOUNCE_EVERY_S, self.announce),
        ):
            now = time.monotonic()
            if now - self.last_run.get(name, float("-inf")) < every:
                continue
            self.last_run[name] = now
            try:
                duty()
            except Exception:  # database or Redis away for a moment: the next tick retries
                logger.warning("supervisor: %s failed", name, exc_info=True)

    # ------------------------------------------------------------ duties

    def enforce_cancels(self) -> None:
        from celery.worker import state
        from django.conf import settings

        from emotions.services import jobs

        names = set(jobs.TASKS.values())
        running = {
            request.args[0]: request
            for request in list(state.active_requests)
            if request.name in names and request.args and request.time_start
        }
        asked = jobs.running_with_cancel(list(running))
        now, grace = time.monotonic(), settings.JOB_CANCEL_GRACE
        for job_id in asked:
            waited = now - self.cancel_seen.setdefault(job_id, now)
            request = running[job_id]
            if waited >= 2 * grace:
                logger.warning("job %s ignored its cancel: ending its process", job_id)
                request.terminate(self.worker.pool, signal=signal.SIGKILL)
                jobs.mark_cancelled(job_id, KILLED_ON_CANCEL)
            elif waited >= grace and job_id not in self.interrupted:
                # Raises SoftTimeLimitExceeded in the job's code: it stops as cancelled,
                # its cleanup runs. Code that blocks the signal is killed at 2x grace.
                self.interrupted.add(job_id)
                os.kill(request.worker_pid, signal.SIGUSR1)
        for job_id in set(self.cancel_seen) - asked:
            del self.cancel_seen[job_id]
            self.interrupted.discard(job_id)

    def reap(self) -> None:
        from emotions.services import jobs

        reaped = jobs.reap_stale_jobs()
        if reaped:
            logger.warning("failed %d job(s) whose worker stopped responding", reaped)

    def dispatch(self) -> None:
        from emotions.services import jobs

        sent = jobs.dispatch_unsent()
        if sent:
            logger.info("sent %d queued job(s) the broker had missed", sent)

    def announce(self) -> None:
        from workers import registry

        registry.refresh()
