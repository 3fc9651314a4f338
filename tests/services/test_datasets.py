"""Dataset imports: archive safety, layouts, skipped files, idempotent retries, delete.

Jobs run in this process (`jobs.run` with the real import body); the live test in
tests/workers/test_import_live.py runs one on a real worker.
"""

import errno
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from emotions.models import Dataset, Job, Utterance, Visibility
from emotions.services import archives, datasets, jobs
from emotions.services.errors import Conflict, ServiceError

pytestmark = pytest.mark.django_db

SR = 16_000


# ---------------------------------------------------------------- material (shared with the
# API and live tests)


def wav_bytes(seconds: float = 1.0, freq: float = 220.0, sr: int = SR, amp: float = 0.3) -> bytes:
    t = np.arange(int(round(seconds * sr))) / sr
    out = io.BytesIO()
    sf.write(out, amp * np.sin(2 * np.pi * freq * t), sr, format="WAV", subtype="PCM_16")
    return out.getvalue()


# Lengths chosen for the audio core's tail policy: 1.0 s -> 1 block, 1.6 s -> 2 (a 0.6 s
# tail is kept), 0.7 s -> 1 (padded), so the per-class block counts are 4.
LENGTHS = (1.0, 1.6, 0.7)


def folder_corpus(labels=("angry", "calm"), prefix: str = "") -> dict[str, bytes]:
    return {
        f"{prefix}{label}/spk{i}_{label}.wav": wav_bytes(seconds, 200 + 40 * i)
        for label in labels
        for i, seconds in enumerate(LENGTHS)
    }


def zip_bytes(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def tar_bytes(files: dict[str, bytes], special: list[tarfile.TarInfo] = (), mode="w:gz") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in special:
            archive.addfile(info)
    return out.getvalue()


def upload(data: bytes, name: str = "corpus.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def run_job(job_id: int) -> Job:
    """Run an import job here, exactly as the worker's task does."""
    jobs.run(job_id, datasets.run_import, worker="test", device="cpu")
    return Job.objects.get(pk=job_id)


# ---------------------------------------------------------------- imports


def test_folder_archive_imports_every_recording(make_user):
    owner = make_user("ada")
    dataset = datasets.start_import(owner, upload=upload(zip_bytes(folder_corpus())), name="mine")
    archive_name = dataset.import_job.params["archive"]
    assert default_storage.exists(archive_name)

    job = run_job(dataset.import_job_id)

    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["imported"] == 6 and job.result["skipped"] == 0
    assert job.result["labels"] == {"angry": 3, "calm": 3}
    dataset.refresh_from_db()
    assert dataset.layout == "folder" and dataset.labels == ["angry", "calm"]
    utterances = {u.source_path: u for u in dataset.utterances.all()}
    long = utterances["calm/spk1_calm.wav"]
    assert long.label == "calm" and long.n_blocks == 2 and long.duration_s == pytest.approx(1.6)
    assert utterances["angry/spk2_angry.wav"].n_blocks == 1
    assert default_storage.exists(long.audio.name)
    assert long.audio.name.startswith(f"datasets/{dataset.pk}/calm/")
    assert not default_storage.exists(archive_name)  # the vehicle is gone


def test_a_wrapping_folder_in_a_tar_is_not_taken_for_a_label(make_user):
    files = folder_corpus(prefix="My corpus/")
    files["__MACOSX/My corpus/._x.wav"] = b"resource fork"
    dataset = datasets.start_import(
        make_user("ada"), upload=upload(tar_bytes(files), "corpus.tar.gz")
    )
    job = run_job(dataset.import_job_id)
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["labels"] == {"angry": 3, "calm": 3}


def test_unreadable_files_are_skipped_and_counted(make_user):
    files = folder_corpus()
    files["calm/broken.wav"] = os.urandom(3000)
    files["calm/blip.wav"] = wav_bytes(0.2)
    dataset = datasets.start_import(make_user("ada"), upload=upload(zip_bytes(files)))
    job = run_job(dataset.import_job_id)
    assert job.state == Job.State.SUCCEEDED
    assert job.result["imported"] == 6 and job.result["skipped"] == 2
    reasons = {f["path"]: f["reason"] for f in job.result["skipped_files"]}
    assert reasons["calm/broken.wav"] == "not a recognised audio or video file"
    assert "too short" in reasons["calm/blip.wav"]


def test_a_job_that_imports_nothing_fails_with_the_reason(make_user):
    files = {f"angry/{i}.wav": os.urandom(2000) for i in range(3)}
    dataset = datasets.start_import(make_user("ada"), upload=upload(zip_bytes(files)))
    job = run_job(dataset.import_job_id)
    assert job.state == Job.State.FAILED
    assert "Nothing could be imported" in job.error
    assert "not a recognised audio or video file (3)" in job.error
    assert not Utterance.objects.exists()


def test_manifest_with_a_missing_column_fails_naming_line_one(make_user):
    files = {"manifest.csv": b"file,label\na.wav,happy\n", "a.wav": wav_bytes()}
    dataset = datasets.start_import(
        make_user("ada"), upload=upload(zip_bytes(files)), layout="manifest"
    )
    job = run_job(dataset.import_job_id)
    assert job.state == Job.State.FAILED
    assert "line 1" in job.error and "path" in job.error


def test_manifest_rows_carry_speakers_and_groups(make_user):
    files = {
        "manifest.csv": b"path,label,speaker,group,gender\n"
        b"wav/a.wav,happy,s1,g1,F\nwav/b.wav,sad,s2,g1,m\n",
        "wav/a.wav": wav_bytes(),
        "wav/b.wav": wav_bytes(1.2),
    }
    dataset = datasets.start_import(make_user("ada"), upload=upload(zip_bytes(files)))
    assert run_job(dataset.import_job_id).state == Job.State.SUCCEEDED
    rows = list(dataset.utterances.values_list("label", "speaker", "group", "gender"))
    assert sorted(rows) == [("happy", "s1", "g1", "female"), ("sad", "s2", "g1", "male")]


def test_label_map_merges_and_drops(make_user):
    files = folder_corpus(labels=("angry", "calm", "neutral"))
    dataset = datasets.start_import(
        make_user("ada"),
        upload=upload(zip_bytes(files)),
        label_map=datasets.parse_label_map("calm = neutral\nangry =\n"),
    )
    job = run_job(dataset.import_job_id)
    assert job.result["labels"] == {"neutral": 6}
    assert Dataset.objects.get(pk=dataset.pk).label_map == {"calm": "neutral", "angry": None}


def build_iemocap(root: Path) -> Path:
    dialogs = {
        "Ses01F_impro01": [("Ses01F_impro01_F000", "neu"), ("Ses01F_impro01_M000", "exc")],
        "Ses01F_script01_1": [("Ses01F_script01_1_F000", "ang")],
    }
    session = root / "Session1"
    (session / "dialog" / "EmoEvaluation").mkdir(parents=True)
    for dialog, utterances in dialogs.items():
        lines = []
        for utt, cat in utterances:
            lines.append(f"[6.2901 - 8.2357]\t{utt}\t{cat}\t[2.5000, 3.0000, 3.5000]")
            wav = session / "sentences" / "wav" / dialog / f"{utt}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            wav.write_bytes(wav_bytes(0.6))
        (session / "dialog" / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(lines))
    return root


def test_staff_imports_iemocap_from_a_server_folder_with_filter_and_preset(make_user, tmp_path):
    root = build_iemocap(tmp_path / "IEMOCAP_full_release")
    dataset = datasets.start_import(
        make_user("root", is_staff=True),
        directory=str(root),
        options={"subset": "improvised", "preset": "ang-hap+exc-sad-neu"},
    )
    job = run_job(dataset.import_job_id)
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["labels"] == {"happy": 1, "neutral": 1}  # excited merged, scripted out
    utt = dataset.utterances.get(label="happy")
    assert (utt.speaker, utt.group, utt.gender) == ("Ses01_M", "Ses01", "male")
    assert root.exists()  # a server folder is read, never removed


def test_a_retried_import_does_not_duplicate(make_user, tmp_path):
    root = tmp_path / "corpus"
    for name, data in folder_corpus().items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    dataset = datasets.start_import(make_user("root", is_staff=True), directory=str(root))
    job = dataset.import_job
    first = datasets.run_import(job, jobs.Reporter(job.pk))
    # Redelivered after a crash: the same body runs again on the same job.
    second = datasets.run_import(job, jobs.Reporter(job.pk))
    assert first["imported"] == 6
    assert second["imported"] == 0 and second["already_present"] == 6
    assert dataset.utterances.count() == 6


def test_server_folders_are_for_staff_only(make_user, tmp_path):
    with pytest.raises(datasets.NotAllowed):
        datasets.start_import(make_user("ada"), directory=str(tmp_path))
    staff = make_user("root", is_staff=True)
    with pytest.raises(ServiceError, match="no folder"):
        datasets.start_import(staff, directory=str(tmp_path / "missing"))
    with pytest.raises(ServiceError, match="absolute"):
        datasets.start_import(staff, directory="relative/path")


def test_an_upload_that_is_no_archive_is_refused_at_once(make_user):
    with pytest.raises(ServiceError, match="not a zip or tar archive"):
        datasets.start_import(make_user("ada"), upload=upload(wav_bytes(), "a.wav"))
    assert not Dataset.objects.exists()


def test_delete_removes_rows_and_files(make_user):
    owner = make_user("ada")
    dataset = datasets.start_import(owner, upload=upload(zip_bytes(folder_corpus())))
    run_job(dataset.import_job_id)
    names = list(dataset.utterances.values_list("audio", flat=True))
    assert names and all(default_storage.exists(n) for n in names)
    with pytest.raises(datasets.NotAllowed):
        datasets.delete_dataset(make_user("bob"), dataset)
    datasets.delete_dataset(owner, dataset)
    assert not Dataset.objects.exists() and not Utterance.objects.exists()
    # Files go once the transaction commits; pytest-django's transaction never commits, so
    # run the on-commit hook the service registered by calling the same helper.
    datasets.delete_files(names)
    assert not any(default_storage.exists(n) for n in names)


def test_relabel_and_exclude_keep_the_label_list_current(make_user):
    owner = make_user("ada")
    dataset = Dataset.objects.create(owner=owner, name="d", visibility=Visibility.PRIVATE)
    rows = [Utterance.objects.create(dataset=dataset, label=lab) for lab in ("a", "b", "b")]
    datasets.relabel(Utterance.objects.filter(label="b"), "c")
    dataset.refresh_from_db()
    assert dataset.labels == ["a", "c"]
    datasets.update_utterance(owner, rows[0], excluded=True)
    assert Utterance.objects.get(pk=rows[0].pk).excluded


# ---------------------------------------------------------------- archive safety


def extract(data: bytes, tmp_path: Path, suffix=".zip") -> Path:
    path = tmp_path / f"upload{suffix}"
    path.write_bytes(data)
    dest = tmp_path / "out"
    dest.mkdir()
    archives.extract(path, dest)
    return dest


def test_safe_zip_extracts(tmp_path):
    dest = extract(zip_bytes({"a/b.wav": b"x" * 100}), tmp_path)
    assert (dest / "a" / "b.wav").read_bytes() == b"x" * 100


@pytest.mark.parametrize(
    "name", ["../evil.wav", "a/../../evil.wav", "/tmp/evil.wav", "C:/evil.wav"]
)
def test_names_leaving_the_folder_are_refused(tmp_path, name):
    with pytest.raises(archives.ArchiveError, match="Refused"):
        extract(zip_bytes({"ok.wav": b"x", name: b"y"}), tmp_path)
    assert not (tmp_path / "evil.wav").exists()


def tar_member(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    "member, words",
    [
        (tar_member("angry/link.wav", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
        (tar_member("angry/hard.wav", tarfile.LNKTYPE, "angry/a.wav"), "is a link"),
        (tar_member("angry/dev", tarfile.CHRTYPE), "not a regular file"),
        (tar_member("angry/fifo", tarfile.FIFOTYPE), "not a regular file"),
    ],
)
def test_links_and_devices_in_a_tar_are_refused(tmp_path, member, words):
    with pytest.raises(archives.ArchiveError, match=words):
        extract(tar_bytes({"angry/a.wav": b"x"}, [member]), tmp_path, ".tar.gz")
    assert not any(p.is_symlink() for p in tmp_path.rglob("*"))


def test_a_symlink_in_a_zip_is_refused(tmp_path):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = zipfile.ZipInfo("angry/link.wav")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(archives.ArchiveError, match="is a link"):
        extract(out.getvalue(), tmp_path)


def test_too_many_members_is_refused(tmp_path, settings):
    settings.IMPORT_MAX_ARCHIVE_MEMBERS = 5
    files = {f"angry/{i}.wav": b"x" for i in range(6)}
    with pytest.raises(archives.ArchiveError, match="more than 5 entries"):
        extract(zip_bytes(files), tmp_path)
    work = tmp_path / "tar"
    work.mkdir()
    with pytest.raises(archives.ArchiveError, match="more than 5 entries"):
        extract(tar_bytes(files), work, ".tar.gz")


def test_a_bomb_is_refused_before_it_is_written(tmp_path, settings):
    settings.IMPORT_MAX_EXTRACTED_BYTES = 100_000
    zeros = {"angry/big.wav": bytes(1_000_000)}  # 1 MB that compresses to about 1 kB
    for data, suffix in ((zip_bytes(zeros), ".zip"), (tar_bytes(zeros), ".tar.gz")):
        assert len(data) < 10_000
        work = tmp_path / suffix.strip(".")
        work.mkdir()
        with pytest.raises(archives.ArchiveError, match="unpacks to more than"):
            extract(data, work, suffix)
        assert not (work / "out" / "angry" / "big.wav").exists()


@pytest.mark.parametrize("data", [zip_bytes({}), tar_bytes({}, [tar_member("d", tarfile.DIRTYPE)])])
def test_an_empty_archive_is_refused(tmp_path, data):
    with pytest.raises(archives.ArchiveError, match="empty"):
        extract(data, tmp_path)


# ---------------------------------------------------------------- all or nothing


def stored_under(dataset: Dataset) -> list[str]:
    """Every file in the dataset's storage folder (rows or not)."""
    root = Path(default_storage.path(f"datasets/{dataset.pk}"))
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_an_import_is_importing_until_it_is_done_then_ready(make_user):
    dataset = datasets.start_import(make_user("ada"), upload=upload(zip_bytes(folder_corpus())))
    assert dataset.status == Dataset.Status.IMPORTING
    with pytest.raises(Conflict, match="still being imported"):
        datasets.require_ready(dataset)
    assert run_job(dataset.import_job_id).state == Job.State.SUCCEEDED
    dataset.refresh_from_db()
    assert dataset.status == Dataset.Status.READY
    datasets.require_ready(dataset)  # no error


def test_a_full_disk_mid_import_keeps_nothing_and_says_so(make_user, monkeypatch):
    """The storage refuses the fourth recording (ENOSPC): the three stored before are
    removed again (rows and files: the space comes back), the dataset is failed and
    refused for training, and the message says what really happened."""
    from django.core.files.storage import FileSystemStorage

    dataset = datasets.start_import(make_user("ada"), upload=upload(zip_bytes(folder_corpus())))
    real_save, saved = FileSystemStorage._save, []

    def save_until_full(storage, name, content):
        if name.startswith("datasets/") and len(saved) >= 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        stored = real_save(storage, name, content)
        saved.append(stored)
        return stored

    monkeypatch.setattr(FileSystemStorage, "_save", save_until_full)
    job = run_job(dataset.import_job_id)

    assert job.state == Job.State.FAILED
    assert "No space left on device" in job.error
    assert "3 recording(s) stored before it were removed" in job.error
    assert "nothing of this dataset was kept" in job.error
    assert "Nothing was saved" not in job.error  # said only when true of the whole job
    assert len(saved) >= 3 and not Utterance.objects.exists()
    assert stored_under(dataset) == []
    dataset.refresh_from_db()
    assert dataset.status == Dataset.Status.FAILED and dataset.labels == []
    with pytest.raises(ServiceError, match="its import failed"):
        datasets.require_ready(dataset)


def test_a_cancelled_import_keeps_nothing(make_user, monkeypatch):
    dataset = datasets.start_import(make_user("ada"), upload=upload(zip_bytes(folder_corpus())))
    real_save, calls = Utterance.save, []

    def save_then_cancel(utterance, *args, **kwargs):
        real_save(utterance, *args, **kwargs)
        calls.append(utterance.pk)
        if len(calls) == 2:  # the user presses Cancel while the third file is read
            Job.objects.filter(pk=dataset.import_job_id).update(cancel_requested=True)

    monkeypatch.setattr(Utterance, "save", save_then_cancel)
    job = run_job(dataset.import_job_id)
    assert job.state == Job.State.CANCELLED
    assert len(calls) == 2 and not Utterance.objects.exists()
    assert stored_under(dataset) == []
    assert Dataset.objects.get(pk=dataset.pk).status == Dataset.Status.FAILED


def test_a_row_that_cannot_be_written_leaves_no_file(make_user, monkeypatch):
    from django.db import DataError

    dataset = datasets.start_import(make_user("ada"), upload=upload(zip_bytes(folder_corpus())))

    def refuse(utterance, *args, **kwargs):
        raise DataError("value too long for type character varying(500)")

    monkeypatch.setattr(Utterance, "save", refuse)
    job = run_job(dataset.import_job_id)
    assert job.state == Job.State.FAILED
    assert stored_under(dataset) == []


def test_an_import_whose_worker_died_is_discarded_when_settled(make_user):
    """A killed worker runs no cleanup: its job is failed by the reaper, and the next
    read of the datasets (or a training request) removes what the job had stored."""
    dataset = datasets.start_import(make_user("ada"), upload=upload(zip_bytes(folder_corpus())))
    job = dataset.import_job
    jobs.start(job.pk, "doomed", "cpu")
    # Half the corpus stored, then the process is gone (no except, no finally ran).
    for name, data in list(folder_corpus().items())[:3]:
        utterance = Utterance(dataset=dataset, label=name.split("/")[0], source_path=name)
        utterance.audio.save(name.replace("/", "_"), SimpleUploadedFile(name, data), save=True)
    orphan = default_storage.save(f"datasets/{dataset.pk}/orphan.wav", io.BytesIO(b"x"))
    assert datasets.settle_abandoned_imports() == 0  # still running: not touched
    jobs.fail(job.pk, "The worker running this job stopped responding; the job was stopped.")

    assert datasets.settle_abandoned_imports() == 1
    assert not Utterance.objects.exists() and not default_storage.exists(orphan)
    assert stored_under(dataset) == []
    dataset.refresh_from_db()
    assert dataset.status == Dataset.Status.FAILED
    error = Job.objects.get(pk=job.pk).error
    assert "stopped responding" in error and "3 recording(s) it had stored were removed" in error
    with pytest.raises(ServiceError, match="its import failed"):
        datasets.require_ready(dataset)
    assert datasets.settle_abandoned_imports() == 0  # once


def test_an_import_taken_over_from_a_dead_worker_resumes_without_orphans(make_user):
    """A worker died after storing a file but before writing its row; the job is taken over
    (a redelivered task): the stray file goes, the import finishes once, whole."""
    from datetime import timedelta

    from django.utils import timezone

    dataset = datasets.start_import(make_user("ada"), upload=upload(zip_bytes(folder_corpus())))
    job_id = dataset.import_job_id
    jobs.start(job_id, "doomed", "cpu")
    stray = default_storage.save(f"datasets/{dataset.pk}/angry/half-done.wav", io.BytesIO(b"x"))
    Job.objects.filter(pk=job_id).update(heartbeat_at=timezone.now() - timedelta(hours=1))

    job = run_job(job_id)
    assert job.state == Job.State.SUCCEEDED and job.attempts == 2, job.error
    assert not default_storage.exists(stray)
    names = set(dataset.utterances.values_list("audio", flat=True))
    assert len(names) == 6 and sorted(stored_under(dataset)) == sorted(
        default_storage.path(n) for n in names
    )
    assert Dataset.objects.get(pk=dataset.pk).status == Dataset.Status.READY


def test_an_import_cancelled_before_it_ran_leaves_no_archive(make_user):
    dataset = datasets.start_import(make_user("ada"), upload=upload(zip_bytes(folder_corpus())))
    archive = dataset.import_job.params["archive"]
    jobs.request_cancel(dataset.import_job)  # still queued: cancelled at once, never runs
    assert default_storage.exists(archive)
    assert datasets.settle_abandoned_imports() == 1
    assert not default_storage.exists(archive)
    assert Dataset.objects.get(pk=dataset.pk).status == Dataset.Status.FAILED
