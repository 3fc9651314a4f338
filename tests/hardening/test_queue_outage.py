"""An upload while the job queue is unreachable: the lecture is stored, its analysis waits
`queued` with a message saying why, and is sent once the queue is back (by the workers'
supervisor), exactly once. The live version, with a real Redis stopped and started again,
is tests/hardening/test_faults.py::test_redis_restart_mid_job."""

import io

import pytest
from django.core.files.base import ContentFile
from kombu.exceptions import OperationalError
from rest_framework.test import APIClient

from emotions.models import Job, Lecture
from emotions.services import jobs
from sersite.celery import app
from tests.hardening import inputs as make

pytestmark = pytest.mark.django_db(transaction=True)


def test_upload_while_queue_down_is_sent_when_it_returns(
    make_user, emotion_model, settings, tmp_path, monkeypatch
):
    settings.MEDIA_ROOT = tmp_path
    sent: list[dict] = []

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app, "send_task", broker_down)
    client = APIClient()
    client.force_authenticate(make_user("teacher"))
    upload = io.BytesIO(make.valid_wav(1.0))
    upload.name = "talk.wav"
    answer = client.post("/api/lectures/", {"file": upload}, format="multipart")
    assert answer.status_code == 201, answer.content
    job = Job.objects.get()
    assert (job.state, job.celery_task_id) == ("queued", jobs.UNSENT)
    assert job.message == jobs.WAITING_FOR_QUEUE
    assert Lecture.objects.count() == 1 and any(p.is_file() for p in tmp_path.rglob("*"))
    read = client.get(f"/api/jobs/{job.pk}/").json()
    assert read["state"] == "queued" and "Waiting for the job queue" in read["message"]

    assert jobs.dispatch_unsent() == 0  # still down: nothing sent, nothing lost
    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: sent.append(kwargs))
    assert jobs.dispatch_unsent() == 1
    assert jobs.dispatch_unsent() == 0  # sent once, never twice
    job.refresh_from_db()
    assert job.state == "queued" and job.celery_task_id == sent[0]["task_id"]
    assert job.message == ""
    assert sent[0]["queue"] == "gpu" and sent[0]["soft_time_limit"] > 0
    assert sent[0]["time_limit"] == sent[0]["soft_time_limit"] + settings.JOB_TIME_LIMIT_GRACE


def test_jobs_a_command_runs_itself_are_never_sent(make_user, monkeypatch):
    sent: list = []
    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: sent.append(kwargs))
    job = jobs.create_job(make_user("ada"), Job.Kind.DIAGNOSTIC, {"steps": 1}, dispatch=False)
    assert jobs.dispatch_unsent() == 0 and sent == []
    assert Job.objects.get(pk=job.pk).celery_task_id == ""


def test_time_limit_grows_with_the_recording(make_user, emotion_model, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.JOB_TIME_LIMIT_ANALYSIS = 600
    settings.JOB_TIME_LIMIT_ANALYSIS_PER_AUDIO_SECOND = 0.5
    owner = make_user("teacher")
    lecture = Lecture.objects.create(owner=owner, model=emotion_model, duration_s=3600)
    job = Job.objects.create(owner=owner, kind=Job.Kind.ANALYSIS, params={"lecture": lecture.pk})
    assert jobs.time_limit_for(job) == 600 + 1800
    lecture.duration_s = None  # not analysed yet: the file's header says 2 s
    lecture.audio.save("talk.wav", ContentFile(make.valid_wav(2.0)))
    assert jobs.time_limit_for(job) == 600 + 1
    lecture.audio.save("noise.wav", ContentFile(b"not audio"))  # unknown: the longest allowed
    assert jobs.time_limit_for(job) == 600 + settings.LECTURE_MAX_SECONDS // 2
