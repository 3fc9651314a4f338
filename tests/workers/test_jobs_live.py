"""A job queued through the web API runs on a real Celery worker over real Redis, and a
real WebSocket client connected through the ASGI server sees its progress in order."""

import pytest

from tests.live import events_until_terminal, receive, wait_for_state, ws_connect

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("queue", ["cpu", "gpu"])
def test_progress_reaches_websocket_in_order(queue, make_user, login_as, live_url, celery_worker):
    make_user("ada")
    http = login_as("ada")
    with ws_connect(live_url, http, "/ws/jobs/") as ws:
        created = http.post(
            f"{live_url}/api/jobs/", json={"queue": queue, "steps": 5, "delay": 0.05}
        )
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        events = events_until_terminal(ws, job_id)

    progress = [e["job"]["progress"] for e in events if e["type"] == "progress"]
    assert progress == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert events[0]["type"] == "state" and events[0]["job"]["state"] == "running"
    assert events[-1]["job"]["state"] == "succeeded"
    final = http.get(f"{live_url}/api/jobs/{job_id}/").json()
    assert final["state"] == "succeeded"
    assert final["device"].split(" ")[0] in {"cpu", "cuda"}
    assert final["result"]["steps"] == 5


def test_job_socket_sends_snapshot_then_events(make_user, login_as, live_url, celery_worker):
    make_user("ada")
    http = login_as("ada")
    job_id = http.post(f"{live_url}/api/jobs/", json={"steps": 3, "delay": 0.2}).json()["id"]
    with ws_connect(live_url, http, f"/ws/jobs/{job_id}/") as ws:
        first = receive(ws)
        assert first["type"] == "snapshot" and first["job"]["id"] == job_id
        events = events_until_terminal(ws, job_id)
    assert events[-1]["job"]["state"] == "succeeded"


def test_cancel_stops_running_job(make_user, login_as, live_url, celery_worker):
    make_user("ada")
    http = login_as("ada")
    job_id = http.post(f"{live_url}/api/jobs/", json={"steps": 200, "delay": 0.1}).json()["id"]
    with ws_connect(live_url, http, f"/ws/jobs/{job_id}/") as ws:
        while True:  # wait until it is really running
            msg = receive(ws)
            if msg["type"] == "progress":
                break
        answer = http.post(f"{live_url}/api/jobs/{job_id}/cancel/")
        assert answer.status_code == 200, answer.text
        events = events_until_terminal(ws, job_id)
    assert events[-1]["job"]["state"] == "cancelled"
    final = http.get(f"{live_url}/api/jobs/{job_id}/").json()
    assert final["state"] == "cancelled"
    assert final["progress"] < 0.5  # it stopped instead of running to the end
    again = http.post(f"{live_url}/api/jobs/{job_id}/cancel/")
    assert again.status_code == 409 and "already ended" in again.json()["detail"]


def test_failing_task_is_recorded_and_worker_survives(make_user, login_as, live_url, celery_worker):
    make_user("ada")
    http = login_as("ada")
    job_id = http.post(f"{live_url}/api/jobs/", json={"steps": 4, "delay": 0, "fail_at": 2}).json()[
        "id"
    ]
    job = wait_for_state(http, live_url, job_id, {"failed", "succeeded", "cancelled"})
    assert job["state"] == "failed"
    # A crash reads plainly, with a reference to the log (where the traceback is).
    assert job["error"].startswith(f"An internal error stopped this job (reference {job_id})")
    assert "RuntimeError" not in job["error"]
    assert celery_worker.poll() is None  # the worker process lives on
    next_id = http.post(f"{live_url}/api/jobs/", json={"steps": 1, "delay": 0}).json()["id"]
    assert wait_for_state(http, live_url, next_id, {"succeeded", "failed"})["state"] == "succeeded"
