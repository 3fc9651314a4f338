"""A recording uploaded through the HTTP API is analysed by a real worker; its segments
arrive over the WebSocket, tile the recording, flag silence and match the CSV."""

import csv
import io
import json

import pytest
import soundfile as sf

from tests.conftest import lecture_signal
from tests.live import events_until_terminal, ws_connect

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def _wav_bytes(signal, sr=16_000, subtype="PCM_16") -> bytes:
    out = io.BytesIO()
    sf.write(out, signal, sr, format="WAV", subtype=subtype)
    return out.getvalue()


def test_upload_analyse_stream_and_download(
    make_user, login_as, live_url, celery_worker, emotion_model
):
    make_user("teacher")
    http = login_as("teacher")
    signal = lecture_signal()  # 2 s sound, 2 s digital silence, 2.5 s sound
    with ws_connect(live_url, http, "/ws/jobs/") as ws:
        answer = http.post(
            f"{live_url}/api/lectures/",
            files={"file": ("week 1/../intro lecture.wav", _wav_bytes(signal), "audio/wav")},
            data={"title": "Intro", "course": "Physics 101", "recorded_on": "2026-11-02"},
        )
        assert answer.status_code == 201, answer.text
        lecture = answer.json()
        events = events_until_terminal(ws, lecture["job"]["id"], timeout=120)
    assert events[-1]["job"]["state"] == "succeeded", events[-1]

    streamed = {}
    for e in events:
        if e["type"] == "segments":
            for s in e["data"]["segments"]:
                assert s["index"] not in streamed  # each segment is sent once
                streamed[s["index"]] = s
    stored = http.get(f"{live_url}/api/lectures/{lecture['id']}/segments/?limit=1000").json()
    stored = stored["results"]
    assert [s["index"] for s in stored] == sorted(streamed)
    for s in stored:
        assert streamed[s["index"]] == s

    # The segments tile the recording exactly: 7 segments, the last ends at 6.5 s.
    assert [s["start_s"] for s in stored] == [0, 1, 2, 3, 4, 5, 6]
    assert [s["end_s"] for s in stored] == [1, 2, 3, 4, 5, 6, 6.5]
    assert [s["is_silence"] for s in stored] == [False, False, True, True, False, False, False]
    for s in stored:
        if s["is_silence"]:
            assert s["label"] == "" and s["confidence"] is None
        else:
            assert s["label"] in emotion_model.labels
            assert sum(s["probabilities"].values()) == pytest.approx(1, abs=1e-3)
            assert s["confidence"] == pytest.approx(max(s["probabilities"].values()), abs=1e-4)

    detail = http.get(f"{live_url}/api/lectures/{lecture['id']}/").json()
    assert detail["duration_s"] == pytest.approx(6.5)
    assert detail["summary"]["silence_s"] == pytest.approx(2.0)
    assert detail["model"]["provenance"].startswith("no ImageNet weights")

    rows = list(
        csv.DictReader(io.StringIO(http.get(f"{live_url}/api/lectures/{lecture['id']}/csv/").text))
    )
    assert len(rows) == len(stored)
    for row, s in zip(rows, stored, strict=False):
        assert int(row["index"]) == s["index"] and float(row["end_s"]) == s["end_s"]
        assert row["label"] == s["label"] and bool(int(row["is_silence"])) == s["is_silence"]

    page = http.get(f"{live_url}/lectures/{lecture['id']}/")
    assert page.status_code == 200 and "Intro" in page.text
    assert "trained from scratch" in page.text
    audio = http.get(f"{live_url}/lectures/{lecture['id']}/audio", headers={"Range": "bytes=0-99"})
    assert audio.status_code == 206 and len(audio.content) == 100


def test_other_user_sees_nothing_of_the_lecture(
    make_user, login_as, live_url, celery_worker, emotion_model
):
    make_user("teacher")
    make_user("other")
    owner, other = login_as("teacher"), login_as("other")
    lecture = owner.post(
        f"{live_url}/api/lectures/",
        files={"file": ("a.wav", _wav_bytes(lecture_signal(1, 0, 1)), "audio/wav")},
    ).json()
    base = f"{live_url}/api/lectures/{lecture['id']}"
    for url in (
        f"{base}/",
        f"{base}/segments/",
        f"{base}/csv/",
        f"{live_url}/lectures/{lecture['id']}/",
        f"{live_url}/lectures/{lecture['id']}/audio",
    ):
        assert other.get(url).status_code == 404, url
    assert other.delete(f"{base}/").status_code == 404
    assert other.get(f"{live_url}/api/lectures/").json()["count"] == 0
    assert other.get(f"{live_url}/api/jobs/{lecture['job']['id']}/").status_code == 404
    with ws_connect(live_url, other, "/ws/jobs/") as ws:
        ws.send(json.dumps({"action": "subscribe", "job": lecture["job"]["id"]}))
        assert "not found" in ws.recv(timeout=10)
    assert owner.get(f"{base}/").status_code == 200
