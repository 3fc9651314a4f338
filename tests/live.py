"""Helpers for tests that talk to the live site over HTTP and WebSocket."""

import json
import time

import requests
from websockets.sync.client import ClientConnection, connect

TERMINAL = {"succeeded", "failed", "cancelled"}


def ws_connect(live_url: str, session: requests.Session | None, path: str) -> ClientConnection:
    headers = {"Origin": live_url}
    if session is not None:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    return connect("ws" + live_url.removeprefix("http") + path, additional_headers=headers)


def receive(ws: ClientConnection, timeout: float = 30) -> dict:
    return json.loads(ws.recv(timeout=timeout))


def events_until_terminal(ws: ClientConnection, job_id: int, timeout: float = 60) -> list[dict]:
    """Every message about `job_id` until it reaches a terminal state."""
    deadline = time.monotonic() + timeout
    events = []
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"job {job_id} did not finish; got {events[-3:]}"
        msg = receive(ws, remaining)
        if msg.get("job", {}).get("id") != job_id:
            continue
        events.append(msg)
        if msg["job"]["state"] in TERMINAL and msg["type"] in {"state", "snapshot"}:
            return events


def wait_for_state(session: requests.Session, url: str, job_id: int, states: set[str], timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = session.get(f"{url}/api/jobs/{job_id}/", timeout=10).json()
        if job["state"] in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


def wait_for_job(job_id: int, predicate, timeout: float = 60):
    """The job, read from the database, once ``predicate(job)`` holds (polling every 0.1 s)."""
    from emotions.models import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if predicate(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} stuck: {job.state} {job.message} {job.error}")


def run_in_own_loop(coroutine_function, timeout: float = 120):
    """asyncio.run(coroutine_function()) in a thread of its own, returning its result.

    The browser tests keep Playwright's event loop running in the main thread for the
    whole session, where asyncio.run() is refused.
    """
    import asyncio
    import threading

    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = asyncio.run(coroutine_function())
        except BaseException as exc:  # handed to the test's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still running after {timeout} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
