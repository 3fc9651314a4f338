"""Datasets: start an import (archive or server folder), run it as a job, curate, delete.

An import job unpacks the corpus into a temporary folder (never onto storage), scans
it with the corpus layouts of the ML core, decodes every recording once to measure it
(duration, 1 s blocks under the audio core's tail policy) and stores it through
Django's storage. Files that cannot be used are skipped and counted with their reason.
A retried job skips what an earlier attempt already stored (keyed on the path inside
the corpus), so it never duplicates utterances.

An import is all or nothing: the dataset is `importing` until its job has stored every
recording, then `ready` (only ready datasets train). A job that fails or is cancelled
removes what it stored and leaves the dataset `failed`; one whose worker was killed is
failed by the reaper, and settle_abandoned_imports() then does the same cleaning.
"""

import hashlib
import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import FileField, ProtectedError, Q
from django.db.models.fields.files import FieldFile

from emotions import selectors
from emotions.models import Dataset, DerivedBlocks, Job, Utterance, Visibility
from emotions.services import archives, jobs
from emotions.services.errors import Conflict, ServiceError, StorageUnavailable
from emotions.services.files import check_upload, local_copy, safe_filename, store, store_in

logger = logging.getLogger(__name__)

# What the import form offers; "auto" asks the corpus layouts to recognise the tree.
LAYOUT_CHOICES = [
    ("auto", "Recognise automatically"),
    ("iemocap", "IEMOCAP"),
    ("ravdess", "RAVDESS"),
    ("cremad", "CREMA-D"),
    ("emodb", "EmoDB (Berlin)"),
    ("tess", "TESS (Toronto)"),
    ("savee", "SAVEE (Surrey)"),
    ("folder", "One folder per emotion"),
    ("manifest", "CSV list (manifest.csv: path,label[,speaker,group,gender])"),
]
LAYOUT_NAMES = dict(LAYOUT_CHOICES)
IEMOCAP_SUBSETS = [
    ("all", "Improvised and scripted"),
    ("improvised", "Improvised only"),
    ("scripted", "Scripted only"),
]
IEMOCAP_PRESETS = [
    ("", "Every category"),
    ("ang-hap-sad-neu", "4 classes: anger, happy, sad, neutral"),
    ("ang-exc-sad-neu", "4 classes: anger, excited, sad, neutral"),
    ("ang-hap+exc-sad-neu", "4 classes: anger, happy (with excited), sad, neutral"),
]
RAVDESS_CHANNELS = [("speech", "Speech"), ("song", "Song"), ("all", "Speech and song")]
MAX_LABEL_LENGTH = 60
# A job result keeps this many skipped files by name; every one is counted.
SKIPPED_SHOWN = 100
SOURCE_ARCHIVE, SOURCE_DIRECTORY, SOURCE_NOISE_PACK = "archive", "directory", "noise_pack"


class NotAllowed(ServiceError):
    status_code = 403


def require_editor(user, obj, what: str) -> None:
    """Refuse unless the user may change or delete `obj` (see selectors.can_edit)."""
    if not selectors.can_edit(user, obj):
        raise NotAllowed(f"Only its owner or an administrator can {what}.")


# ---------------------------------------------------------------- starting an import


def start_import(
    owner,
    *,
    upload: UploadedFile | None = None,
    directory: str = "",
    name: str = "",
    description: str = "",
    layout: str = "auto",
    options: dict | None = None,
    label_map: dict | None = None,
    visibility: str = Visibility.PRIVATE,
    dispatch: bool = True,
) -> Dataset:
    """Create the dataset and queue the job that fills it, from an archive or (staff) a
    folder on the server (`dispatch=False`: the caller runs the job itself)."""
    if upload is None and not directory:
        raise ServiceError("Choose an archive (.zip or .tar.gz) of the corpus to upload.")
    if upload is not None and directory:
        raise ServiceError("Give either an archive to upload or a server folder, not both.")
    if layout not in LAYOUT_NAMES:
        raise ServiceError(f"Unknown corpus layout “{layout}”.")
    if visibility not in Visibility.values:
        raise ServiceError(f"Unknown visibility “{visibility}”.")
    params = {
        "layout": layout,
        "options": clean_options(options or {}),
        "label_map": clean_label_map(label_map or {}),
    }
    if directory:
        params.update(source=SOURCE_DIRECTORY, directory=check_directory(owner, directory))
        default_name = Path(params["directory"]).name
    else:
        check_upload(upload, settings.MAX_UPLOAD_BYTES)
        if not archives.is_archive(upload):
            raise ServiceError(
                f"“{upload.name}” is not a zip or tar archive: pack the corpus folder as .zip "
                "or .tar.gz and upload that."
            )
        default_name = Path(upload.name or "dataset").name.split(".")[0]
        stored = store(
            default_storage,
            f"imports/{owner.pk}/{safe_filename(upload.name, 'corpus.zip')}",
            upload,
        )
        params.update(source=SOURCE_ARCHIVE, archive=stored)
    dataset = Dataset(
        owner=owner,
        name=(name.strip() or default_name or "dataset")[:200],
        description=description,
        layout="" if layout == "auto" else layout,
        label_map=params["label_map"],
        visibility=visibility,
        status=Dataset.Status.IMPORTING,
    )
    try:
        with transaction.atomic():
            dataset.save()
            dataset.import_job = jobs.create_job(
                owner, Job.Kind.IMPORT, {**params, "dataset": dataset.pk}, dispatch=dispatch
            )
            dataset.save(update_fields=["import_job"])
    except Exception:
        if params.get("archive"):
            default_storage.delete(params["archive"])
        raise
    return dataset


def check_directory(user, directory: str) -> str:
    """A server folder staff may import from: absolute, existing, inside the allowed roots."""
    if not user.is_staff:
        raise NotAllowed("Only administrators can import from a folder on the server.")
    path = Path(directory.strip())
    if not path.is_absolute():
        raise ServiceError("Give the server folder as an absolute path (starting with /).")
    if not path.is_dir():
        raise ServiceError(f"There is no folder “{path}” on the server.")
    roots = [Path(r).resolve() for r in getattr(settings, "IMPORT_SERVER_ROOTS", [])]
    if roots and not any(path.resolve().is_relative_to(r) for r in roots):
        raise ServiceError("Imports from this folder are not allowed (see IMPORT_SERVER_ROOTS).")
    return str(path)


def clean_options(options: dict) -> dict:
    """The layout options the import form offers, checked."""
    clean = {}
    subset = options.get("subset") or "all"
    if subset not in dict(IEMOCAP_SUBSETS):
        raise ServiceError("IEMOCAP dialogs: choose improvised, scripted or all.")
    clean["subset"] = subset
    preset = options.get("preset") or ""
    if preset not in dict(IEMOCAP_PRESETS):
        raise ServiceError(f"Unknown IEMOCAP class set “{preset}”.")
    clean["preset"] = preset
    channel = options.get("channel") or "speech"
    if channel not in dict(RAVDESS_CHANNELS):
        raise ServiceError("RAVDESS recordings: choose speech, song or all.")
    clean["channel"] = channel
    pattern = (options.get("speaker_pattern") or "").strip()
    if pattern:
        # RE2, as the import will use: linear time, so no pattern can stall a worker.
        from emotions.ser.corpora.base import CorpusError, compile_pattern

        try:
            compile_pattern(pattern)
        except CorpusError as exc:
            raise ServiceError(
                f"The speaker pattern is not a valid regular expression: {exc}."
            ) from None
    clean["speaker_pattern"] = pattern
    return clean


def clean_label_map(label_map: dict) -> dict[str, str | None]:
    """{label: new label} to rename or merge, {label: None or ""} to drop."""
    if not isinstance(label_map, dict):
        raise ServiceError("The label map must pair each label with its new label.")
    clean: dict[str, str | None] = {}
    for key, value in label_map.items():
        if not isinstance(key, str) or not key.strip():
            raise ServiceError("The label map has an empty label on its left side.")
        if value is not None and not isinstance(value, str):
            raise ServiceError(f"The label map gives “{key}” a new label that is not text.")
        value = (value or "").strip() or None
        if len(key.strip()) > MAX_LABEL_LENGTH or (value and len(value) > MAX_LABEL_LENGTH):
            raise ServiceError(f"Labels are at most {MAX_LABEL_LENGTH} characters long.")
        clean[key.strip()] = value
    return clean


def parse_label_map(text: str) -> dict[str, str | None]:
    """Lines "from = to" (rename or merge) or "from =" (drop) into a label map."""
    mapping: dict[str, str | None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ServiceError(f"Label map line {number}: write “old = new”, or “old =” to drop.")
        old, new = (part.strip() for part in line.split("=", 1))
        mapping[old] = new or None
    return clean_label_map(mapping)


# ---------------------------------------------------------------- the import job


def run_import(job: Job, reporter: jobs.Reporter) -> dict:
    """The body of every import job (task sersite.cpu.import_dataset)."""
    if job.params.get("source") == SOURCE_NOISE_PACK:
        from emotions.services.noise import run_noise_pack

        return run_noise_pack(job, reporter)
    dataset = Dataset.objects.filter(pk=job.params.get("dataset")).first()
    if dataset is None:
        raise ServiceError("The dataset was deleted before its import could run.")
    try:
        if job.attempts > 1:  # taken over from a worker that died: it may have left a file
            _drop_unreferenced_files(dataset.pk)
        with _corpus_folder(job.params, reporter) as root:
            result = _import_tree(dataset, root, job.params, reporter)
        Dataset.objects.filter(pk=dataset.pk).update(status=Dataset.Status.READY)
        return result
    except Exception as exc:
        # All or nothing: failed or cancelled, nothing of it stays (rows, files, space).
        removed = discard_import(dataset.pk)
        if isinstance(exc, StorageUnavailable):
            raise ServiceError(_storage_failed(exc, removed)) from exc
        raise
    finally:
        # The archive is only a vehicle: once the job has ended one way or the other
        # (failure included: a failed job is never run again), it goes.
        if job.params.get("archive"):
            default_storage.delete(job.params["archive"])


@contextmanager
def _corpus_folder(params: dict, reporter: jobs.Reporter) -> Iterator[Path]:
    if params.get("source") == SOURCE_DIRECTORY:
        path = Path(params["directory"])
        if not path.is_dir():
            raise ServiceError(f"The server folder “{path}” is gone.")
        yield path
        return
    archive = FieldFile(None, FileField(storage=default_storage), params["archive"])
    if not default_storage.exists(archive.name):
        raise ServiceError("The uploaded archive is gone; upload it again.")
    reporter.progress(0.0, "unpacking", "Unpacking the archive…")
    with local_copy(archive) as path, tempfile.TemporaryDirectory(prefix="sersite-import-") as tmp:
        archives.extract(path, Path(tmp))
        yield archives.corpus_root(Path(tmp))


def _scan(root: Path, params: dict) -> tuple[str, list, list]:
    from emotions.ser import corpora

    layout = params.get("layout") or "auto"
    name = corpora.detect(root) if layout == "auto" else layout
    if name is None:
        raise ServiceError(
            "The corpus layout was not recognised: expected IEMOCAP, RAVDESS, CREMA-D, EmoDB, "
            "TESS or SAVEE as published, one folder per emotion, or a manifest.csv. Choose "
            "the layout in the import form."
        )
    options = params.get("options", {})
    kwargs: dict = {}
    if name == "iemocap":
        kwargs = {"subset": options.get("subset", "all"), "preset": options.get("preset") or None}
    elif name == "ravdess":
        kwargs = {"channel": options.get("channel", "speech")}
    elif name == "folder" and options.get("speaker_pattern"):
        kwargs = {"speaker_pattern": options["speaker_pattern"]}
    skipped: list = []
    try:
        items = corpora.scan(root, name, skipped=skipped, **kwargs)
    except corpora.CorpusError as exc:
        raise ServiceError(f"The recordings cannot be read as {LAYOUT_NAMES[name]}: {exc}") from exc
    if params.get("label_map"):
        items = corpora.apply_label_map(items, params["label_map"])
    return name, items, skipped


def _import_tree(dataset: Dataset, root: Path, params: dict, reporter: jobs.Reporter) -> dict:
    from emotions.ser import audio
    from emotions.ser.constants import SAMPLE_RATE

    reporter.progress(0.0, "scanning", "Looking for recordings…")
    root = root.resolve()
    layout, items, scan_skips = _scan(root, params)
    Dataset.objects.filter(pk=dataset.pk).update(layout=layout)
    problems = [(_relative(s.path, root), s.reason) for s in scan_skips]
    done = set(dataset.utterances.values_list("source_path", flat=True))
    imported = already = 0
    for i, item in enumerate(items, start=1):
        reporter.check_cancel()
        relative = _relative(item.path, root)
        if relative in done:
            already += 1
            continue
        try:
            n_samples = audio.decode(item.path).size
        except audio.AudioDecodeError as exc:
            problems.append((relative, exc.reason))
            continue
        n_blocks = audio.count_blocks(n_samples)
        if n_blocks == 0:
            problems.append((relative, "too short for one 1 s block"))
            continue
        utterance = Utterance(
            dataset=dataset,
            label=item.label[:MAX_LABEL_LENGTH],
            speaker=(item.speaker or "")[:100],
            group=(item.group or "")[:100],
            gender=(item.gender or "")[:10],
            duration_s=round(n_samples / SAMPLE_RATE, 4),
            n_blocks=n_blocks,
            source_path=relative[:500],
        )
        with open(item.path, "rb") as fh:
            store_in(utterance.audio, _storage_name(relative), File(fh))
        try:
            utterance.save()
        except Exception:  # the row could not be written: its file must not stay behind
            delete_files([utterance.audio.name])
            raise
        done.add(relative)
        imported += 1
        reporter.progress(
            i / len(items), "importing",
            f"{i} of {len(items)} recordings read, {len(problems)} skipped",
        )  # fmt: skip
    labels = Counter(dataset.utterances.values_list("label", flat=True))
    Dataset.objects.filter(pk=dataset.pk).update(labels=sorted(labels))
    if not labels:
        raise ServiceError(_nothing_imported(len(items), problems))
    reasons = Counter(reason for _, reason in problems)
    return {
        "dataset": dataset.pk,
        "layout": layout,
        "imported": imported,
        "already_present": already,
        "utterances": sum(labels.values()),
        "labels": dict(sorted(labels.items())),
        "skipped": len(problems),
        "skipped_reasons": dict(reasons.most_common()),
        "skipped_files": [{"path": p, "reason": r} for p, r in problems[:SKIPPED_SHOWN]],
    }


def _storage_failed(exc: StorageUnavailable, removed: int) -> str:
    reason = exc.__cause__.strerror if isinstance(exc.__cause__, OSError) else None
    kept = (
        f"The {removed} recording(s) stored before it were removed again, so nothing of "
        "this dataset was kept"
        if removed
        else "Nothing of this dataset was kept"
    )
    return (
        f"The import stopped: the server could not store a recording "
        f"({reason or 'its storage refused it'}). {kept}. Free some space or tell an "
        "administrator, then import the corpus again."
    )


def discard_import(dataset_id: int) -> int:
    """Remove what an unfinished import stored (rows and files, the dataset's whole storage
    folder included: a file stored just before its row was written has no row) and mark
    the dataset failed; returns how many utterances were removed."""
    utterances = Utterance.objects.filter(dataset_id=dataset_id)
    names = list(utterances.values_list("audio", flat=True))
    names += DerivedBlocks.objects.filter(utterance__dataset_id=dataset_id).values_list(
        "data", flat=True
    )
    with transaction.atomic():
        removed = utterances.count()
        utterances.delete()
        Dataset.objects.filter(pk=dataset_id).update(status=Dataset.Status.FAILED, labels=[])
    delete_files(names)
    delete_folder(f"datasets/{dataset_id}")
    return removed


def _drop_unreferenced_files(dataset_id: int) -> None:
    """Remove files in the dataset's folder that no utterance refers to (stored just before
    a killed worker could write their rows); a resumed import stores them again."""
    if not isinstance(default_storage, FileSystemStorage):
        return  # an object store writes a file whole with its name; nothing half-done stays
    folder = Path(default_storage.path(f"datasets/{dataset_id}"))
    if not folder.is_dir():
        return
    known = set(Utterance.objects.filter(dataset_id=dataset_id).values_list("audio", flat=True))
    root = Path(default_storage.path(""))
    for path in folder.rglob("*"):
        if path.is_file() and path.relative_to(root).as_posix() not in known:
            path.unlink(missing_ok=True)


def settle_abandoned_imports() -> int:
    """Discard imports whose job ended without finishing them (the worker was killed, and
    the reaper failed the job): returns how many. Called where datasets are read or used,
    so a dead worker's half-import is never shown as usable nor trained on."""
    if Dataset.objects.filter(status=Dataset.Status.IMPORTING).exists():
        jobs.reap_stale_jobs()  # an import whose worker died ends here, not minutes later
    abandoned = Dataset.objects.filter(status=Dataset.Status.IMPORTING).filter(
        Q(import_job__isnull=True) | Q(import_job__state__in=Job.TERMINAL_STATES)
    )
    settled = 0
    for dataset_id, job_id in abandoned.values_list("pk", "import_job_id"):
        removed = discard_import(dataset_id)
        settled += 1
        job = Job.objects.filter(pk=job_id).exclude(state=Job.State.SUCCEEDED).first()
        if job is not None and job.params.get("archive"):
            delete_files([job.params["archive"]])  # the job that would have removed it died
        if job is not None:
            kept = (
                f"The {removed} recording(s) it had stored were removed: nothing"
                if removed
                else "Nothing"
            )
            why = job.error or "The import did not finish."
            message = f"{why} {kept} of this dataset was kept; import the corpus again."
            Job.objects.filter(pk=job.pk).update(message=message[:500], error=message)
    return settled


def require_ready(dataset: Dataset) -> None:
    """Refuse to train on a dataset whose import has not finished, or failed."""
    settle_abandoned_imports()
    dataset.refresh_from_db(fields=["status"])
    if dataset.status == Dataset.Status.IMPORTING:
        raise Conflict(f"“{dataset}” is still being imported; train once the import is done.")
    if dataset.status == Dataset.Status.FAILED:
        raise ServiceError(
            f"“{dataset}” cannot be used: its import failed, and nothing of it was kept. "
            "Delete it and import the corpus again."
        )


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


# Room in Utterance.audio (500 characters) for "datasets/<id>/" and the storage's suffix.
MAX_STORAGE_NAME = 400


def _storage_name(relative: str) -> str:
    """The corpus's own sub-folders kept (readable in storage), each part made safe."""
    parts = [safe_filename(p, "part") for p in PurePosixPath(relative).parts]
    name = "/".join(parts)
    if len(name) > MAX_STORAGE_NAME:
        # Nested deeper than a stored name may be (the whole import failed on it): the
        # file's own name under a hash of its path, unique still; source_path keeps the path.
        name = f"{hashlib.sha256(relative.encode()).hexdigest()[:16]}/{parts[-1]}"
    return name


def _nothing_imported(found: int, problems: list[tuple[str, str]]) -> str:
    if not found and not problems:
        return "Nothing could be imported: no recordings were found in the corpus."
    reasons = Counter(reason for _, reason in problems).most_common(3)
    why = "; ".join(f"{reason} ({count})" for reason, count in reasons)
    example = f" For example “{problems[0][0]}”." if problems else ""
    return (
        f"Nothing could be imported: none of the {max(found, len(problems))} files was a "
        f"usable recording. Reasons: {why or 'none given'}.{example}"
    )


# ---------------------------------------------------------------- curating


def update_dataset(user, dataset: Dataset, **fields) -> Dataset:
    require_editor(user, dataset, "change this dataset")
    allowed = {"name", "description", "visibility"}
    for key, value in fields.items():
        if key not in allowed:
            raise ServiceError(f"“{key}” cannot be changed here.")
        setattr(dataset, key, value)
    dataset.save(update_fields=list(fields) or None)
    return dataset


def update_utterance(
    user, utterance: Utterance, *, label: str | None = None, excluded: bool | None = None
) -> Utterance:
    require_editor(user, utterance.dataset, "change this dataset")
    if label is not None:
        relabel(Utterance.objects.filter(pk=utterance.pk), label)
    if excluded is not None:
        set_excluded(Utterance.objects.filter(pk=utterance.pk), excluded)
    utterance.refresh_from_db()
    return utterance


def relabel(utterances, label: str) -> int:
    """Give these utterances a new label (the admin's bulk action and the API)."""
    label = (label or "").strip()
    if not label or len(label) > MAX_LABEL_LENGTH:
        raise ServiceError(f"A label is 1 to {MAX_LABEL_LENGTH} characters long.")
    dataset_ids = set(utterances.values_list("dataset_id", flat=True))
    with transaction.atomic():
        count = utterances.update(label=label)
        for dataset_id in dataset_ids:
            refresh_labels(dataset_id)
    return count


def set_excluded(utterances, excluded: bool) -> int:
    """Leave utterances out of (or back into) training, without deleting them."""
    return utterances.update(excluded=bool(excluded))


def refresh_labels(dataset_id: int) -> None:
    labels = Utterance.objects.filter(dataset_id=dataset_id).values_list("label", flat=True)
    Dataset.objects.filter(pk=dataset_id).update(labels=sorted(set(labels)))


def delete_dataset(user, dataset: Dataset) -> None:
    """Delete the dataset, its utterances and derived blocks, and their files in storage."""
    require_editor(user, dataset, "delete this dataset")
    runs = dataset.training_runs.count()
    if runs:
        raise Conflict(
            f"This dataset was used by {runs} training run(s); delete those first, so that "
            "every trained model keeps a record of its data."
        )
    job = dataset.import_job
    if job is not None and not job.is_terminal:
        jobs.request_cancel(job)
        job.refresh_from_db()
    names = list(dataset.utterances.values_list("audio", flat=True))
    names += DerivedBlocks.objects.filter(utterance__dataset=dataset).values_list("data", flat=True)
    if job is not None and job.params.get("archive"):
        names.append(job.params["archive"])
    try:
        with transaction.atomic():
            dataset.delete()
            if job is not None and job.is_terminal:
                job.delete()
            transaction.on_commit(lambda: delete_files(names))
    except ProtectedError as exc:  # a training run appeared meanwhile
        raise Conflict("This dataset is in use by a training run; delete that first.") from exc


def delete_folder(prefix: str) -> None:
    """Remove every file under a storage folder (and, on the file system, the folders)."""
    storage = default_storage
    if isinstance(storage, FileSystemStorage):
        shutil.rmtree(storage.path(prefix), ignore_errors=True)
        return
    try:
        folders, files = storage.listdir(prefix)
    except (FileNotFoundError, NotImplementedError):
        return
    delete_files(f"{prefix}/{name}" for name in files)
    for folder in folders:
        delete_folder(f"{prefix}/{folder}")


def delete_files(names) -> None:
    """Remove stored files, carrying on past any that are already gone."""
    for name in names:
        if not name:
            continue
        try:
            default_storage.delete(name)
        except Exception:  # one stuck file must not keep the others
            logger.warning("could not delete %s from storage", name, exc_info=True)
