"""Bad WebSocket frames against the live server: each one is answered with an error
message, the socket stays open and still works, and the server logs no traceback."""

import json

import pytest

from emotions.models import Job
from tests.live import receive, ws_connect

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

BAD_FRAMES = [
    ("not JSON", "hello", "must be JSON"),
    ("truncated JSON", '{"action": "subscribe", "job": ', "must be JSON"),
    ("binary", b"\x00\xff\x10binary", "Binary frames"),
    ("JSON list", "[1, 2, 3]", "JSON objects"),
    ("JSON null", "null", "JSON objects"),
    ("JSON string", '"subscribe"', "JSON objects"),
    ("id as string", '{"action": "subscribe", "job": "1"}', "Send {"),
    ("id as bool", '{"action": "subscribe", "job": true}', "Send {"),
    ("id as float", '{"action": "subscribe", "job": 1.5}', "Send {"),
    ("id negative", '{"action": "subscribe", "job": -4}', "Send {"),
    ("id past 64 bits", '{"action": "subscribe", "job": 99999999999999999999999}', "Send {"),
    ("id overflowing float", '{"action": "subscribe", "job": 1e400}', "Send {"),
    ("unknown action", '{"action": "delete", "job": 1}', "Send {"),
    ("deep nesting", "[" * 2000 + "]" * 2000, "nested"),
    ("huge frame", json.dumps({"action": "subscribe", "job": 1, "pad": "x" * 60_000}), "too long"),
]


def test_bad_frames_get_an_error_and_the_socket_stays(make_user, login_as, live_url, logs_dir):
    owner = make_user("ada")
    job = Job.objects.create(owner=owner, kind=Job.Kind.DIAGNOSTIC, state=Job.State.SUCCEEDED)
    http = login_as("ada")
    log = logs_dir / "web.log"
    log_before = log.read_text(errors="replace") if log.exists() else ""
    with ws_connect(live_url, http, "/ws/jobs/") as ws:
        for what, frame, words in BAD_FRAMES:
            ws.send(frame)
            answer = receive(ws, timeout=30)
            assert answer["type"] == "error", (what, answer)
            assert words in answer["error"], (what, answer)
        # Still open, and still doing its job.
        ws.send(json.dumps({"action": "subscribe", "job": job.pk}))
        snapshot = receive(ws, timeout=30)
        assert snapshot["type"] == "snapshot" and snapshot["job"]["id"] == job.pk
    logged = (log.read_text(errors="replace") if log.exists() else "")[len(log_before) :]
    assert "Traceback" not in logged, logged[-3000:]
