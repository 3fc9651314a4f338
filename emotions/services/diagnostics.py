"""The self-test job: walks through N steps, reporting progress, optionally failing.

It exercises the whole path (API → queue → worker → progress service → channel
layer → page) without any model, so `/healthz`, the doctor command and the tests
can prove the plumbing works.
"""

import signal
import time

from django.conf import settings

from emotions.models import Job
from emotions.services.jobs import Reporter

MAX_STEPS = 1000
MAX_DELAY_S = 5.0


def validate_params(params: dict) -> dict:
    from emotions.services.errors import ServiceError

    try:
        steps = int(params.get("steps", 5))
        delay = float(params.get("delay", 0.2))
        fail_at = params.get("fail_at")
        fail_at = None if fail_at in (None, "") else int(fail_at)
    except (TypeError, ValueError) as exc:
        raise ServiceError(f"Invalid self-test parameters: {exc}") from exc
    if not 1 <= steps <= MAX_STEPS:
        raise ServiceError(f"steps must be between 1 and {MAX_STEPS}.")
    if not 0 <= delay <= MAX_DELAY_S:
        raise ServiceError(f"delay must be between 0 and {MAX_DELAY_S} seconds.")
    return {"steps": steps, "delay": delay, "fail_at": fail_at}


def run_diagnostic(job: Job, reporter: Reporter) -> dict:
    spin = job.params.get("spin")
    if spin and settings.SERSITE_TESTING:
        _spin(blocking_signals=spin == "uninterruptible")
    params = validate_params(job.params)
    for step in range(1, params["steps"] + 1):
        time.sleep(params["delay"])
        if params["fail_at"] == step:
            raise RuntimeError(f"self-test failure requested at step {step}")
        # Every step is reported (no throttling) so tests and users see each one.
        reporter.min_interval = 0.0
        reporter.progress(step / params["steps"], "testing", f"step {step} of {params['steps']}")
    return {"steps": params["steps"], "device": job.device, "worker": job.worker}


def _spin(blocking_signals: bool) -> None:
    """Tests only: a job stuck without reporting progress, for the time-limit and cancel
    tests. `blocking_signals` also ignores the soft-limit signal, as code stuck inside a
    C extension would, so only killing its process ends it."""
    if blocking_signals:  # for the whole process (the heartbeat thread would take them)
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        sum(range(10_000))
