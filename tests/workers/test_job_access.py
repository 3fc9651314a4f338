"""Another user (or nobody) cannot read, cancel, delete or subscribe to a user's job."""

import json

import pytest
from websockets.exceptions import ConnectionClosed

from tests.live import receive, wait_for_state, ws_connect

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_other_user_is_refused_everywhere(make_user, login_as, live_url, celery_worker):
    make_user("owner")
    make_user("intruder")
    owner, intruder = login_as("owner"), login_as("intruder")
    job_id = owner.post(f"{live_url}/api/jobs/", json={"steps": 30, "delay": 0.1}).json()["id"]

    assert intruder.get(f"{live_url}/api/jobs/{job_id}/").status_code == 404
    assert intruder.post(f"{live_url}/api/jobs/{job_id}/cancel/").status_code == 404
    assert intruder.delete(f"{live_url}/api/jobs/{job_id}/").status_code == 404
    assert intruder.get(f"{live_url}/api/jobs/").json()["count"] == 0
    assert intruder.get(f"{live_url}/jobs/{job_id}/").status_code == 404

    with (
        pytest.raises(ConnectionClosed) as closed,
        ws_connect(live_url, intruder, f"/ws/jobs/{job_id}/") as ws,
    ):
        receive(ws, timeout=10)
    assert closed.value.rcvd.code == 4403

    with ws_connect(live_url, intruder, "/ws/jobs/") as ws:
        ws.send(json.dumps({"action": "subscribe", "job": job_id}))
        answer = receive(ws)
        assert answer["type"] == "error" and answer["error"] == "Job not found."
        with pytest.raises(TimeoutError):  # and no event of that job ever arrives
            receive(ws, timeout=1.5)

    job = owner.get(f"{live_url}/api/jobs/{job_id}/").json()
    assert job["state"] in {"queued", "running"} and not job["cancel_requested"]
    owner.post(f"{live_url}/api/jobs/{job_id}/cancel/")
    wait_for_state(owner, live_url, job_id, {"cancelled"})
    assert owner.delete(f"{live_url}/api/jobs/{job_id}/").status_code == 204


def test_anonymous_is_refused(live_url):
    import requests

    assert requests.get(f"{live_url}/api/jobs/", timeout=10).status_code == 403
    with pytest.raises(ConnectionClosed) as closed, ws_connect(live_url, None, "/ws/jobs/") as ws:
        receive(ws, timeout=10)
    assert closed.value.rcvd.code == 4401
    page = requests.get(f"{live_url}/jobs/", timeout=10, allow_redirects=False)
    assert page.status_code == 302 and "/accounts/login/" in page.headers["Location"]
