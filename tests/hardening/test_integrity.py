"""What users built stays whole (issue 11, defects 5 and 6).

- Imports are all or nothing: a dataset whose import failed, or whose worker was killed
  mid-import (a real worker, SIGKILLed), keeps no utterances and no files, shows
  `failed`, and training refuses it with a message.
- Models in use are protected: a model that analysed lectures cannot be deleted (409 with
  a message, through the API and the page); those lectures keep their labels and CSV
  columns, and a running analysis never loses its model.
- Every export written for spreadsheets neutralises formula cells.
"""

import csv
import io
import os
import re
import signal
import time
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from emotions.models import Dataset, EmotionModel, Job, Lecture, Segment, TrainingRun, Utterance
from emotions.services import datasets, jobs, training
from emotions.services.errors import Conflict
from tests.conftest import start_worker
from tests.services.test_datasets import upload, wav_bytes, zip_bytes
from tests.services.test_training import BACKBONE, TINY, make_dataset, make_noises

HOSTILE_LABELS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "calm"]


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def train_on(client: APIClient, dataset: Dataset, noises):
    body = {"dataset": dataset.pk, "noises": [n.pk for n in noises], "backbone": BACKBONE,
            "config": TINY}  # fmt: skip
    return client.post("/api/training-runs/", body, format="json")


@pytest.fixture
def no_queue(monkeypatch):
    monkeypatch.setattr("emotions.services.jobs._dispatch", lambda *a: None)


# ---------------------------------------------------------------- imports: training refuses


@pytest.mark.django_db
def test_training_refuses_unfinished_and_failed_imports(make_user, no_queue, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    owner = make_user("ada")
    client = api_for(owner)
    noises = make_noises(owner)
    dataset = make_dataset(owner)  # 16 usable utterances, as a half-done import may hold
    job = jobs.create_job(owner, Job.Kind.IMPORT, {"dataset": dataset.pk}, dispatch=False)
    Dataset.objects.filter(pk=dataset.pk).update(status="importing", import_job=job)

    answer = train_on(client, dataset, noises)
    assert answer.status_code == 409 and "still being imported" in answer.json()["detail"]

    jobs.start(job.pk, "w", "cpu")
    jobs.fail(job.pk, jobs.STALE_MESSAGE)  # the reaper, after the worker died
    answer = train_on(client, dataset, noises)
    assert answer.status_code == 400, answer.content
    assert "its import failed" in answer.json()["detail"]
    assert not TrainingRun.objects.exists()
    assert not Utterance.objects.filter(dataset=dataset).exists()
    shown = client.get(f"/api/datasets/{dataset.pk}/").json()
    assert shown["status"] == "failed" and shown["n_utterances"] == 0
    assert "nothing of this dataset was kept" in shown["import_job"]["error"]

    # The Train page offers ready datasets only.
    page = Client()
    page.force_login(owner)
    ready = make_dataset(owner)
    html = page.get("/train/").content.decode()
    offered = re.search(r'<select[^>]*name="dataset".*?</select>', html, re.S).group(0)
    assert f'value="{ready.pk}"' in offered and f'value="{dataset.pk}"' not in offered


# ---------------------------------------------------------------- imports: a killed worker

HEARTBEAT_S = 2


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_import_leaves_nothing(live_env, logs_dir, make_user, settings):
    """The worker and its pool are SIGKILLed while an import of 60 recordings runs. With no
    worker left, the owner's next look fails the job (the reaper on read) and discards
    what it had stored: no utterances, no files, `failed`, and training refuses it."""
    settings.JOB_HEARTBEAT_TIMEOUT = HEARTBEAT_S
    media = Path(live_env["MEDIA_ROOT"])
    settings.MEDIA_ROOT = media
    queue = f"imports-{os.getpid()}"
    env = {**live_env, "JOB_HEARTBEAT_TIMEOUT": str(HEARTBEAT_S)}
    owner = make_user("ada")
    corpus = {
        f"{label}/spk{i % 4}_{i}.wav": wav_bytes(1.2, 180 + 7 * i)
        for label in ("angry", "calm")
        for i in range(30)
    }
    worker = start_worker(env, logs_dir, name="import-doomed", queues=queue)
    try:
        dataset = datasets.start_import(owner, upload=upload(zip_bytes(corpus)), dispatch=False)
        archive = dataset.import_job.params["archive"]
        assert (media / archive).is_file()
        assert jobs.send(dataset.import_job_id, "sersite.cpu.import_dataset", queue)
        deadline = time.monotonic() + 120
        while Utterance.objects.filter(dataset=dataset).count() < 5:
            assert time.monotonic() < deadline, "the import did not get going"
            assert Job.objects.get(pk=dataset.import_job_id).state in ("queued", "running")
            time.sleep(0.05)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    stored = Utterance.objects.filter(dataset=dataset).count()
    assert 5 <= stored < 60, stored
    folder = media / "datasets" / str(dataset.pk)
    assert any(p.is_file() for p in folder.rglob("*"))
    assert Job.objects.get(pk=dataset.import_job_id).state == "running"

    time.sleep(HEARTBEAT_S + 1)
    client = api_for(owner)
    shown = client.get(f"/api/datasets/{dataset.pk}/").json()  # the first look settles it
    assert Job.objects.get(pk=dataset.import_job_id).state == "failed"
    assert shown["status"] == "failed", shown
    assert shown["n_utterances"] == 0 and not Utterance.objects.filter(dataset=dataset).exists()
    assert not folder.exists() or not any(p.is_file() for p in folder.rglob("*"))
    assert not (media / archive).exists()  # the uploaded archive went too
    error = shown["import_job"]["error"]
    assert "stopped responding" in error and f"{stored} recording(s)" in error, error
    answer = train_on(client, Dataset.objects.get(pk=dataset.pk), make_noises(owner))
    assert answer.status_code == 400 and "its import failed" in answer.json()["detail"]


# ---------------------------------------------------------------- models in use


@pytest.fixture
def shared_model_in_use(make_user, emotion_model, no_queue, settings, tmp_path):
    """A teacher's finished lecture, analysed by the trainer's shared model."""
    teacher = make_user("teacher")
    EmotionModel.objects.filter(pk=emotion_model.pk).update(labels=HOSTILE_LABELS)
    job = Job.objects.create(owner=teacher, kind=Job.Kind.ANALYSIS, state=Job.State.SUCCEEDED)
    lecture = Lecture.objects.create(
        owner=teacher, title="Optics", model=emotion_model, job=job, duration_s=2.0
    )
    for i, label in enumerate(HOSTILE_LABELS[:2]):
        Segment.objects.create(
            lecture=lecture, index=i, start_s=i, end_s=i + 1, label=label, confidence=0.9,
            probabilities={lab: (0.9 if lab == label else 0.05) for lab in HOSTILE_LABELS},
        )  # fmt: skip
    return emotion_model, lecture


@pytest.mark.django_db
def test_a_model_that_analysed_lectures_cannot_be_deleted(shared_model_in_use):
    model, lecture = shared_model_in_use
    trainer = api_for(model.owner)
    answer = trainer.delete(f"/api/models/{model.pk}/")
    assert answer.status_code == 409, answer.content
    detail = answer.json()["detail"]
    assert "analysed 1 lecture(s)" in detail and "Delete those lectures first" in detail

    # The page says the same, as a message on the models list.
    page = Client()
    page.force_login(model.owner)
    shown = page.post(f"/models/{model.pk}/delete", follow=True).content.decode()
    assert "cannot be deleted" in shown

    # The teacher's report is untouched: model, labels, CSV columns and cells.
    lecture.refresh_from_db()
    assert lecture.model_id == model.pk
    teacher = api_for(lecture.owner)
    shown = teacher.get(f"/api/lectures/{lecture.pk}/").json()
    assert shown["model"]["labels"] == HOSTILE_LABELS
    rows = list(csv.reader(io.StringIO(teacher.get(f"/api/lectures/{lecture.pk}/csv/")
                                       .content.decode())))  # fmt: skip
    assert rows[0][-3:] == [f"p_{label}" for label in HOSTILE_LABELS]
    # Formula labels are text in the export, not formulas.
    assert [row[4] for row in rows[1:]] == ["'" + label for label in HOSTILE_LABELS[:2]]

    # Once the lecture is gone, the model can go.
    assert teacher.delete(f"/api/lectures/{lecture.pk}/").status_code == 204
    assert trainer.delete(f"/api/models/{model.pk}/").status_code == 204
    assert not EmotionModel.objects.exists()


@pytest.mark.django_db
def test_a_running_analysis_keeps_its_model(shared_model_in_use):
    model, lecture = shared_model_in_use
    Job.objects.filter(pk=lecture.job_id).update(state=Job.State.RUNNING)
    with pytest.raises(Conflict, match="analysed 1 lecture"):
        training.delete_model(model.owner, model)
    lecture.refresh_from_db()
    assert lecture.model is not None and EmotionModel.objects.filter(pk=model.pk).exists()


# ---------------------------------------------------------------- training exports


@pytest.mark.django_db
def test_training_exports_neutralise_formula_cells(make_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    owner = make_user("ada")
    dataset = Dataset.objects.create(owner=owner, name="d")
    run = TrainingRun.objects.create(
        owner=owner, dataset=dataset,
        predictions={
            "columns": ["test_set", "item", "speaker", "true", "predicted"],
            "labels": HOSTILE_LABELS,
            "rows": [["clean", "=1+1.wav", "@spk", HOSTILE_LABELS[0], HOSTILE_LABELS[1],
                      0.5, 0.25, -0.25]],
        },
    )  # fmt: skip
    rows = list(csv.reader(io.StringIO(training.predictions_csv(run))))
    assert rows[1][:5] == ["clean", "'=1+1.wav", "'@spk", "'" + HOSTILE_LABELS[0],
                           "'" + HOSTILE_LABELS[1]]  # fmt: skip
    assert rows[1][5:] == ["0.5", "0.25", "-0.25"]  # figures stay figures


# ---------------------------------------------------------------- imports: a really full disk


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MB tmpfs as the media folder (root only: skipped where mounting is not allowed;
    tests/services/test_datasets.py fakes ENOSPC everywhere)."""
    import shutil
    import subprocess

    mount = tmp_path / "media"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount, lambda: shutil.disk_usage(mount).used
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.django_db
def test_a_full_disk_mid_import_gives_the_space_back(make_user, settings, tiny_disk, no_queue):
    """60 recordings of 38 kB (2.3 MB) into 1 MB: the disk fills part-way. The job fails
    saying so, what it stored is removed, and the space is free again."""
    import numpy as np
    import soundfile as sf

    mount, used = tiny_disk
    settings.MEDIA_ROOT = mount
    silence = io.BytesIO()
    sf.write(silence, np.zeros(19_200, dtype="float32"), 16_000, format="WAV", subtype="PCM_16")
    corpus = {f"{label}/{i}.wav": silence.getvalue() for label in ("angry", "calm")
              for i in range(30)}  # fmt: skip
    empty = used()
    dataset = datasets.start_import(make_user("ada"), upload=upload(zip_bytes(corpus)))
    jobs.run(dataset.import_job_id, datasets.run_import, worker="test", device="cpu")

    job = Job.objects.get(pk=dataset.import_job_id)
    assert job.state == Job.State.FAILED
    assert "No space left on device" in job.error, job.error
    assert "were removed again, so nothing of this dataset was kept" in job.error, job.error
    assert not Utterance.objects.exists()
    assert Dataset.objects.get(pk=dataset.pk).status == Dataset.Status.FAILED
    assert [p for p in mount.rglob("*") if p.is_file()] == []  # archive and recordings gone
    assert used() <= empty
