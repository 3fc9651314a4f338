"""Files through Django's storage API, so a worker on another host reads what the web
process wrote; tasks get a local temporary copy when the storage is remote."""

import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.files.uploadedfile import UploadedFile
from django.db.models.fields.files import FieldFile

from emotions.services.errors import ServiceError, TooLarge

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


def check_upload(upload: UploadedFile, max_bytes: int) -> None:
    if upload is None:
        raise ServiceError("Choose a file to upload.")
    if upload.size == 0:
        raise ServiceError(f"“{upload.name}” is empty.")
    if upload.size > max_bytes:
        raise TooLarge(
            f"“{upload.name}” is {upload.size / 1e6:.0f} MB; the limit is {max_bytes / 1e6:.0f} MB."
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
