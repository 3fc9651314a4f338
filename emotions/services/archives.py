"""Unpacking a corpus archive (zip or tar) that a user uploaded, refusing anything unsafe.

An archive comes from a user, so every member is checked before a byte is written:
names must stay inside the target folder (no absolute paths, no "..", no drive letters),
only regular files and folders are created (never links, devices or pipes), and both
the number of members and the total uncompressed size are capped, so a small archive
cannot fill the disk (a "zip bomb"). Each refusal is an ArchiveError whose message a
researcher can act on.
"""

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings

from emotions.services.errors import ServiceError

# Enough for the largest public corpora (IEMOCAP: about 10,000 utterances plus labels and
# transcripts; CREMA-D 7,442 files) with room to spare. Overridable in settings.
DEFAULT_MAX_MEMBERS = 200_000
DEFAULT_MAX_BYTES = 20 * 1024**3
# Folders that archivers add and that hold no recordings.
IGNORED_TOP_FOLDERS = {"__MACOSX"}
CHUNK = 1024 * 1024


class ArchiveError(ServiceError):
    """The archive cannot be unpacked safely; the message says which member and why."""


def limits() -> tuple[int, int]:
    """(most members, most uncompressed bytes) allowed in one archive."""
    return (
        int(getattr(settings, "IMPORT_MAX_ARCHIVE_MEMBERS", DEFAULT_MAX_MEMBERS)),
        int(getattr(settings, "IMPORT_MAX_EXTRACTED_BYTES", DEFAULT_MAX_BYTES)),
    )


def is_archive(fileobj: IO[bytes]) -> bool:
    """Whether the (seekable) file looks like a zip or a tar archive, compressed or not."""
    try:
        fileobj.seek(0)
        if zipfile.is_zipfile(fileobj):
            return True
        fileobj.seek(0)
        with tarfile.open(fileobj=fileobj, mode="r:*") as archive:
            archive.next()
        return True
    except (tarfile.TarError, OSError, EOFError):
        return False
    finally:
        fileobj.seek(0)


def extract(path: Path, dest: Path) -> int:
    """Unpack the archive at `path` into the existing folder `dest`; returns files written."""
    max_members, max_bytes = limits()
    if zipfile.is_zipfile(path):
        written = _extract_zip(path, dest, max_members, max_bytes)
    else:
        try:
            archive = tarfile.open(path, mode="r:*")
        except (tarfile.TarError, OSError) as exc:
            raise ArchiveError(
                "The upload is not a zip or tar archive (.zip, .tar, .tar.gz, .tgz, .tar.bz2, "
                ".tar.xz)."
            ) from exc
        with archive:
            written = _extract_tar(archive, dest, max_members, max_bytes)
    if not written:
        raise ArchiveError("The archive is empty: it holds no files.")
    return written


def corpus_root(dest: Path) -> Path:
    """The folder the corpus really starts in: archives often wrap it in one top folder.

    A lone folder holding only files is kept as it is: it is a label folder, not a wrapper.
    """
    root = dest
    while True:
        visible = [c for c in _visible(root) if c.name not in IGNORED_TOP_FOLDERS]
        only = visible[0] if len(visible) == 1 else None
        if only is None or not only.is_dir() or not any(c.is_dir() for c in _visible(only)):
            return root
        root = only


def _visible(folder: Path) -> list[Path]:
    return [c for c in folder.iterdir() if not c.name.startswith(".") and not c.is_symlink()]


def member_path(raw: str) -> PurePosixPath | None:
    """The member's relative path; None for the archive's own root ("./").

    Raises ArchiveError for a name that would land outside the target folder.
    """
    name = raw.replace("\\", "/")
    if "\x00" in name:
        raise ArchiveError(f"Refused: the archive member {raw!r} has a NUL byte in its name.")
    path = PurePosixPath(name)
    first = path.parts[0] if path.parts else ""
    if path.is_absolute() or (len(first) >= 2 and first[1] == ":"):
        raise ArchiveError(f"Refused: the archive member “{raw}” has an absolute path.")
    if ".." in path.parts:
        raise ArchiveError(
            f"Refused: the archive member “{raw}” climbs out of its folder with “..”."
        )
    parts = [p for p in path.parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else None


def _skipped(path: PurePosixPath) -> bool:
    return path.parts[0] in IGNORED_TOP_FOLDERS


def _check_count(count: int, max_members: int) -> None:
    if count > max_members:
        raise ArchiveError(
            f"Refused: the archive holds more than {max_members:,} entries. Split the corpus "
            "into several archives, or ask an administrator to import it from a server folder."
        )


def _check_total(total: int, max_bytes: int) -> None:
    if total > max_bytes:
        raise ArchiveError(
            f"Refused: the archive unpacks to more than {_size(max_bytes)}. Split the corpus, "
            "or ask an administrator to import it from a server folder."
        )


def _size(n: int) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 else f"{n / 1024**2:.1f} MB"


def _target(dest: Path, relative: PurePosixPath) -> Path:
    target = dest.joinpath(*relative.parts)
    # Belt and braces: the name checks above already keep it inside.
    if not target.resolve().is_relative_to(dest.resolve()):
        raise ArchiveError(f"Refused: the archive member “{relative}” would land outside.")
    return target


def _copy(source: IO[bytes], target: Path, budget: int, member: PurePosixPath) -> int:
    """Copy at most `budget` bytes; the real size counts, not the size a header declares."""
    copied = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            while chunk := source.read(CHUNK):
                copied += len(chunk)
                if copied > budget:
                    raise ArchiveError("Refused: the archive unpacks to more than it declares.")
                out.write(chunk)
    except OSError as exc:
        if exc.errno is None:  # the archive's own data (gzip, zip): the callers say damaged
            raise
        # The file system refused (a name too long, a full disk): not damage in the archive,
        # and the message must not show the server's folders.
        raise ArchiveError(
            f"Refused: the archive member “{member}” cannot be unpacked here: {exc.strerror}."
        ) from exc
    return copied


def _extract_zip(path: Path, dest: Path, max_members: int, max_bytes: int) -> int:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"The zip archive is damaged: {exc}") from exc
    with archive:
        infos = archive.infolist()
        _check_count(len(infos), max_members)
        _check_total(sum(info.file_size for info in infos), max_bytes)
        files = []
        for info in infos:
            relative = member_path(info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind == stat.S_IFLNK:
                raise ArchiveError(f"Refused: the archive member “{info.filename}” is a link.")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise ArchiveError(
                    f"Refused: the archive member “{info.filename}” is not a regular file."
                )
            if info.flag_bits & 0x1:
                raise ArchiveError(
                    f"The archive member “{info.filename}” is password-protected; "
                    "pack the corpus without a password."
                )
            if relative is not None and not _skipped(relative) and not info.is_dir():
                files.append((info, relative))
        total = 0
        for info, relative in files:
            try:
                with archive.open(info) as source:
                    total += _copy(source, _target(dest, relative), max_bytes - total, relative)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ArchiveError(
                    f"The zip archive is damaged at “{info.filename}”: {exc}"
                ) from exc
        return len(files)


def _extract_tar(archive: tarfile.TarFile, dest: Path, max_members: int, max_bytes: int) -> int:
    # Streamed member by member: a tar has no index, and every check is made on a
    # member's header before its content is read.
    count = written = total = 0
    try:
        for member in archive:
            count += 1
            _check_count(count, max_members)
            relative = member_path(member.name)
            if member.issym() or member.islnk():
                raise ArchiveError(f"Refused: the archive member “{member.name}” is a link.")
            if not (member.isreg() or member.isdir()):
                raise ArchiveError(
                    f"Refused: the archive member “{member.name}” is not a regular file "
                    "(a device, pipe or other special entry)."
                )
            if relative is None or _skipped(relative) or member.isdir():
                continue
            total += member.size
            _check_total(total, max_bytes)
            source = archive.extractfile(member)
            assert source is not None  # isreg() guarantees content
            _copy(source, _target(dest, relative), member.size, relative)
            written += 1
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"The tar archive is damaged: {exc}") from exc
    return written
