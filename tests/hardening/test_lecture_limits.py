"""Lecture uploads whose header declares a recording the site will not analyse: refused
at upload with a message, nothing stored, no job queued (issue 11, defect 4)."""

import io
import struct

import pytest
from rest_framework.test import APIClient

from emotions.models import Job, Lecture
from tests.hardening import inputs as make

pytestmark = pytest.mark.django_db


def with_header_rate(data: bytes, rate: int) -> bytes:
    """The WAV with its fmt chunk claiming `rate` Hz (the samples stay as they are)."""
    data = bytearray(data)
    assert data[12:16] == b"fmt "
    block_align = struct.unpack("<H", data[32:34])[0]
    data[24:28] = struct.pack("<I", rate)
    data[28:32] = struct.pack("<I", rate * block_align)
    return bytes(data)


def flac_of(seconds: float, rate: int = 8000) -> bytes:
    return make.silence_flac(seconds, sr=rate)


@pytest.fixture
def teacher(request, make_user, settings, tmp_path, monkeypatch):
    monkeypatch.setattr("emotions.services.jobs._dispatch", lambda *args: None)
    settings.MEDIA_ROOT = tmp_path
    request.getfixturevalue("emotion_model")  # its weights stored under this MEDIA_ROOT
    client = APIClient()
    client.force_authenticate(make_user("teacher"))
    return client


def upload(client: APIClient, name: str, content: bytes):
    file = io.BytesIO(content)
    file.name = name
    return client.post("/api/lectures/", {"file": file}, format="multipart")


def nothing_stored(media) -> bool:
    files = [p for p in media.rglob("*") if p.is_file() and "lectures" in p.parts]
    return not files and not Lecture.objects.exists() and not Job.objects.exists()


def test_a_96_kb_wav_claiming_1_hz_is_refused(teacher, settings):
    content = with_header_rate(make.valid_wav(3.0), 1)  # 48,000 samples: "13 h 20 min"
    assert len(content) < 100_000
    answer = upload(teacher, "one-hertz.wav", content)
    assert answer.status_code == 400, answer.content
    detail = answer.json()["detail"]
    assert "1 Hz" in detail and "4000 Hz" in detail, detail
    assert nothing_stored(settings.MEDIA_ROOT)


@pytest.mark.parametrize("rate", [2000, 3999])
def test_header_rates_under_4_khz_are_refused(teacher, settings, rate):
    answer = upload(teacher, "low.wav", with_header_rate(make.valid_wav(2.0), rate))
    assert answer.status_code == 400, answer.content
    assert f"{rate} Hz" in answer.json()["detail"]
    assert nothing_stored(settings.MEDIA_ROOT)


def test_a_declared_duration_over_the_limit_is_refused(teacher, settings):
    """Seven hours of 8 kHz FLAC silence (about 200 kB) against the default 6 h limit."""
    assert settings.LECTURE_MAX_SECONDS == 6 * 3600
    answer = upload(teacher, "marathon.flac", flac_of(7 * 3600))
    assert answer.status_code == 400, answer.content
    detail = answer.json()["detail"]
    assert "7 h 00 min" in detail and "6 h 00 min" in detail, detail
    assert nothing_stored(settings.MEDIA_ROOT)


def test_the_limit_is_a_setting_and_large_uploads_are_checked_too(teacher, settings):
    """A file over FILE_UPLOAD_MAX_MEMORY_SIZE arrives as a temporary file: checked alike."""
    settings.LECTURE_MAX_SECONDS = 60
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10_000
    answer = upload(teacher, "long.wav", make.valid_wav(61.0))
    assert answer.status_code == 400, answer.content
    assert "0 h 01 min" in answer.json()["detail"]
    assert nothing_stored(settings.MEDIA_ROOT)


def test_recordings_within_the_limits_are_accepted(teacher, settings):
    settings.LECTURE_MAX_SECONDS = 60
    settings.JOBS_PER_USER_MAX = 0  # four uploads at once: not what this test is about
    for name, content in [
        ("talk.wav", make.valid_wav(2.0)),
        ("phone.wav", make.wav(make.voiced(2.0, sr=8000), sr=8000)),
        ("hour.flac", flac_of(59.0)),
        # The decoder cannot read these: refused later by the analysis, as before.
        ("noise.wav", make.random_bytes()),
    ]:
        assert upload(teacher, name, content).status_code == 201, name
    assert Lecture.objects.count() == 4


def test_the_analysis_stops_at_the_limit_it_decodes(teacher, settings):
    """The analysis counts decoded seconds too (a header can under-state its length, or
    the limit changed since the upload): past the limit it stops with a message."""
    from emotions.services import jobs, lectures

    answer = upload(teacher, "five-seconds.wav", make.valid_wav(5.0))
    assert answer.status_code == 201, answer.content
    settings.LECTURE_MAX_SECONDS = 2
    job_id = answer.json()["job"]["id"]
    jobs.run(job_id, lectures.analyse, worker="test", device="cpu")
    job = Job.objects.get(pk=job_id)
    assert job.state == Job.State.FAILED, job.message
    assert "more than 0 h 00 min" in job.message and "Split the recording" in job.message
