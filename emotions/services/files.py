"""Files through Django's storage API, so a worker on another host reads what the web
process wrote; tasks get a local temporary copy when the storage is remote."""

import logging
import os
import posixpath
import re
import shutil
import tempfile
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.files import File
from django.core.files.move import file_move_safe
from django.core.files.storage import FileSystemStorage, Storage
from django.core.files.uploadedfile import UploadedFile
from django.db.models.fields.files import FieldFile

from emotions.services.errors import ServiceError, StorageUnavailable, TooLarge

logger = logging.getLogger(__name__)

MAX_NAME_LENGTH = 100


def safe_filename(name: str, default: str = "recording") -> str:
    """A storage-safe base name: no directories, NUL, control characters or odd bytes.

    Keeps the extension (the decoder does not trust it, but users recognise it).
    """
    name = unicodedata.normalize("NFKD", name or "").replace("\x00", "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = name.encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    ext = ext[:10].lower()
    stem = (stem or default)[: MAX_NAME_LENGTH - len(ext) - 1]
    return f"{stem}.{ext}" if ext else stem


def human_size(n: int) -> str:
    """800 kB, 12.5 MB, 2.1 GB: a limit of a few kB must not read as "0 MB"."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"


def check_upload(upload: UploadedFile, max_bytes: int) -> None:
    if upload is None:
        raise ServiceError("Choose a file to upload.")
    if upload.size == 0:
        raise ServiceError(f"“{upload.name}” is empty.")
    if upload.size > max_bytes:
        raise TooLarge(
            f"“{upload.name}” is {human_size(upload.size)}; the limit is {human_size(max_bytes)}."
        )


@contextmanager
def local_copy(field: FieldFile, suffix: str = "") -> Iterator[Path]:
    """A path on this machine holding the file's bytes, for decoders that need one."""
    try:
        path = Path(field.path)
    except NotImplementedError:  # remote storage (S3): download to a temporary file
        path = None
    if path is not None and path.exists():
        yield path
        return
    if path is not None:
        raise ServiceError(f"The stored file {field.name} is missing.")
    fd, tmp = tempfile.mkstemp(suffix=suffix or Path(field.name).suffix)
    try:
        with os.fdopen(fd, "wb") as out, field.storage.open(field.name, "rb") as src:
            shutil.copyfileobj(src, out, 1024 * 1024)
        yield Path(tmp)
    finally:
        os.unlink(tmp)


def store(storage: Storage, name: str, content: File, max_length: int | None = None) -> str:
    """Save `content` under `name` (or a free variant of it), all or nothing; returns the name.

    FileSystemStorage writes a small (in-memory) upload straight into its final name, so a
    write that fails half-way (a full disk) leaves a partial file that no row knows about.
    On the file system the bytes therefore go to a hidden name beside the target first and
    are renamed into place once complete (the rename Django itself uses for large uploads);
    other storages (S3) store an object whole or not at all. A storage that refuses (read
    only, full, not permitted) becomes StorageUnavailable with a message, not a crash.
    """
    try:
        if not isinstance(storage, FileSystemStorage):
            return storage.save(name, content, max_length=max_length)
        partial = posixpath.join(posixpath.dirname(name), f".partial-{uuid.uuid4().hex}")
        try:
            partial = storage.save(partial, content)
            while True:
                final = storage.get_available_name(name, max_length=max_length)
                try:
                    file_move_safe(storage.path(partial), storage.path(final))
                    return final
                except FileExistsError:  # taken since get_available_name: pick another
                    continue
        finally:
            _discard(storage, partial)
    except OSError as exc:
        logger.exception("could not store %s", name)
        reason = exc.strerror or "the server's storage refused it"
        raise StorageUnavailable(
            f"The file could not be stored ({reason}). Nothing was saved: try again "
            "later, or tell an administrator."
        ) from exc


def store_in(field: FieldFile, name: str, content: File) -> None:
    """store() into a model's file field (its upload_to applies); the row is not saved."""
    target = field.field.generate_filename(field.instance, name)
    stored = store(field.storage, target, content, field.field.max_length)
    setattr(field.instance, field.field.attname, stored)


def _discard(storage: Storage, name: str) -> None:
    try:
        if storage.exists(name):
            storage.delete(name)
    except OSError:  # the storage is failing already; the error that matters is raised
        logger.warning("could not remove %s", name, exc_info=True)
