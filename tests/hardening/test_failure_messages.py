"""Job failure messages are written for people: never a server path, an exception class
name or a raw database error (issue 11, defect 7). Known troubles get plain words; anything
else is "an internal error … (reference N)", with the traceback in the log under N.

The jobs run in this process through the same wrapper the worker's tasks use."""

import csv
import errno
import logging
import re

import pytest
from django.db import DataError, OperationalError

from emotions.models import Job
from emotions.ser.audio import AudioDecodeError
from emotions.services import datasets, jobs
from emotions.services.errors import ServiceError, failure_message, without_paths
from tests.services.test_datasets import folder_corpus, run_job, upload, wav_bytes, zip_bytes

pytestmark = pytest.mark.django_db

# What must never reach a user: class names, raw driver texts, errno tags, server paths.
LEAKS = re.compile(
    r"\b\w+(Error|Exception|Exceeded)\b|Traceback|NoneType|\[Errno|/var/|/tmp/|/home/|/srv/"
    r"|field limit|0x00"
)


def readable(message: str) -> str:
    assert message and not LEAKS.search(message), message
    return message


CASES = [  # the exception, words the message must contain
    (AttributeError("'NoneType' object has no attribute 'labels'"), "internal error"),
    (KeyError("lecture"), "internal error"),
    (DataError("A string literal cannot contain NUL (0x00) characters."), "NUL character"),
    (OperationalError("database or disk is full"), "database ran out of disk space"),
    (OperationalError("server closed the connection unexpectedly"), "database refused a change"),
    (csv.Error("field larger than field limit (131072)"), "CSV list could not be read"),
    (OSError(errno.ENOSPC, "No space left on device", "/var/lib/sersite/x"), "disk space"),
    (FileNotFoundError(2, "No such file", "/var/lib/sersite/media/a.wav"), "missing"),
    (PermissionError(13, "Permission denied", "/srv/media"), "refused access"),
    (OSError(5, "Input/output error"), "read or write error"),
    (MemoryError(), "out of memory"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "UTF-8"),
    (AudioDecodeError("/tmp/x/talk.wav", "cannot open the file ([Errno 2] at /var/a/b.wav)"),
     "could not be read as audio"),
    (ServiceError("The server folder “/srv/corpora/ravdess” is gone."), "“ravdess” is gone"),
]  # fmt: skip


@pytest.mark.parametrize(("exc", "words"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_every_kind_of_failure_reads_plainly(exc, words, caplog):
    with caplog.at_level(logging.ERROR):
        message = readable(failure_message(exc, 41))
    assert words in message
    if words in ("internal error", "database refused a change"):
        assert "reference 41" in message
    if not isinstance(exc, ServiceError):  # the details are kept, for the administrator
        assert any(r.exc_info and r.exc_info[1] is exc for r in caplog.records)


def test_paths_are_cut_to_their_last_part():
    assert without_paths("no folder “/srv/a/b”") == "no folder “b”"
    assert without_paths("[Errno 2] No such file: '/var/x/y.wav'") == "No such file: 'y.wav'"
    assert without_paths("1/2 of km/h at https://example.org/a/b") == (
        "1/2 of km/h at https://example.org/a/b"
    )


def test_a_manifest_field_past_the_csv_limit_fails_readably(make_user):
    huge = "x" * (csv.field_size_limit() + 10)
    files = {"manifest.csv": f"path,label\na.wav,{huge}\n".encode(), "a.wav": wav_bytes()}
    dataset = datasets.start_import(
        make_user("ada"), upload=upload(zip_bytes(files)), layout="manifest"
    )
    job = run_job(dataset.import_job_id)
    assert job.state == Job.State.FAILED
    assert "CSV list could not be read" in readable(job.error)
    assert readable(job.message)


def test_an_unexpected_error_names_a_reference_found_in_the_log(make_user, monkeypatch, caplog):
    def broken(*args, **kwargs):
        return None.labels  # the kind of slip the issue saw reach users

    monkeypatch.setattr("emotions.services.datasets._import_tree", broken)
    dataset = datasets.start_import(make_user("ada"), upload=upload(zip_bytes(folder_corpus())))
    with caplog.at_level(logging.ERROR):
        job = run_job(dataset.import_job_id)
    assert job.state == Job.State.FAILED
    assert f"reference {job.pk}" in readable(job.error)
    logged = [r for r in caplog.records if r.exc_info and f"reference {job.pk}" in r.getMessage()]
    assert logged and isinstance(logged[0].exc_info[1], AttributeError)


def test_a_recording_that_vanished_before_its_analysis_fails_readably(
    make_user, emotion_model, settings, tmp_path, monkeypatch
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from emotions.services import lectures

    monkeypatch.setattr("emotions.services.jobs._dispatch", lambda *args: None)
    lecture = lectures.create_lecture(
        make_user("teacher"), SimpleUploadedFile("talk.wav", wav_bytes(2.0)), model=emotion_model
    )
    lecture.audio.storage.delete(lecture.audio.name)
    jobs.run(lecture.job_id, lectures.analyse, worker="test", device="cpu")
    job = Job.objects.get(pk=lecture.job_id)
    assert job.state == Job.State.FAILED
    readable(job.error)
