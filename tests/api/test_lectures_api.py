"""Lecture upload checks that need no worker: refusals, file names, delete, search."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from emotions.models import Job, Lecture, Segment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def teacher(make_user):
    user = make_user("teacher")
    client = APIClient()
    client.force_authenticate(user)
    client.user = user
    return client


def _upload(client, name="talk.wav", content=b"RIFF....WAVEfmt ", **extra):
    return client.post(
        "/api/lectures/", {"file": SimpleUploadedFile(name, content), **extra}, format="multipart"
    )


def test_without_any_model_upload_is_refused_with_guidance(teacher):
    answer = _upload(teacher)
    assert answer.status_code == 409
    assert "No trained model" in answer.json()["detail"]
    assert not Lecture.objects.exists()


def test_empty_file_is_refused(teacher, emotion_model):
    answer = _upload(teacher, content=b"")
    assert answer.status_code == 400
    assert not Lecture.objects.exists()


def test_oversized_file_is_refused(teacher, emotion_model, settings):
    settings.MAX_UPLOAD_BYTES = 10
    answer = _upload(teacher, content=b"x" * 11)
    assert answer.status_code == 413 and "limit" in answer.json()["detail"]


def test_file_name_cannot_escape_media(teacher, emotion_model, settings, monkeypatch):
    monkeypatch.setattr("emotions.services.jobs._dispatch", lambda *a: None)
    answer = _upload(teacher, name="../../etc/pass\x00wd é.wav")
    assert answer.status_code == 201, answer.content
    lecture = Lecture.objects.get()
    assert ".." not in lecture.audio.name and "\x00" not in lecture.audio.name
    assert lecture.audio.name.startswith(f"lectures/{teacher.user.pk}/")
    assert lecture.original_name.endswith("é.wav")


def test_delete_removes_rows_and_file(teacher, emotion_model, monkeypatch):
    monkeypatch.setattr("emotions.services.jobs._dispatch", lambda *a: None)
    lecture_id = _upload(teacher).json()["id"]
    lecture = Lecture.objects.get(pk=lecture_id)
    storage, name = lecture.audio.storage, lecture.audio.name
    assert storage.exists(name)
    assert teacher.delete(f"/api/lectures/{lecture_id}/").status_code == 204
    assert not Lecture.objects.filter(pk=lecture_id).exists()
    assert not storage.exists(name)
    # The queued analysis was cancelled, not left hanging.
    assert not Job.objects.exclude(state__in=Job.TERMINAL_STATES).exists()


def test_delete_of_an_analysed_lecture_takes_segments_and_job(teacher, emotion_model, monkeypatch):
    monkeypatch.setattr("emotions.services.jobs._dispatch", lambda *a: None)
    lecture = Lecture.objects.get(pk=_upload(teacher).json()["id"])
    Job.objects.filter(pk=lecture.job_id).update(state=Job.State.SUCCEEDED)
    Segment.objects.bulk_create(
        Segment(lecture=lecture, index=i, start_s=i, end_s=i + 1, is_silence=True) for i in range(3)
    )
    assert teacher.delete(f"/api/lectures/{lecture.pk}/").status_code == 204
    assert not Segment.objects.exists() and not Job.objects.exists()
    assert not lecture.audio.storage.exists(lecture.audio.name)


def test_search_by_title_and_course(teacher, emotion_model, monkeypatch):
    monkeypatch.setattr("emotions.services.jobs._dispatch", lambda *a: None)
    _upload(teacher, title="Waves", course="Physics")
    _upload(teacher, title="Sonnets", course="Poetry")
    titles = lambda q: [x["title"] for x in teacher.get(f"/api/lectures/?q={q}").json()["results"]]  # noqa: E731
    assert titles("phys") == ["Waves"]
    assert titles("sonn") == ["Sonnets"]
    assert len(titles("")) == 2


def test_model_of_another_user_cannot_be_chosen(teacher, emotion_model, make_user):
    emotion_model.visibility = "private"
    emotion_model.save()
    answer = _upload(teacher, model=emotion_model.pk)
    assert answer.status_code == 400 and "model" in answer.json()


def test_declared_oversized_body_is_refused_before_reading(teacher, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    answer = teacher.generic(
        "POST", "/api/lectures/", b"x" * 10, content_type="application/octet-stream",
        CONTENT_LENGTH=str(50 * 1024 * 1024),
    )  # fmt: skip
    assert answer.status_code == 413 and "limit" in answer.json()["detail"]
