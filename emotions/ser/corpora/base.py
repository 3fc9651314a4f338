"""What every corpus layout shares: the item record, errors, safe file walking, label maps.

A corpus is a folder the user brings. Every layout module turns that folder into a
sorted list of `CorpusItem`s; nothing here decodes audio. Files the scan cannot use
(an unparseable name, a symlink leaving the corpus, an empty file) are reported
through an optional `skipped` list instead of failing the whole import, because real
corpora always carry a few stray files.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import re2

logger = logging.getLogger(__name__)

# A compiled user pattern (google-re2); RE2 logs parse errors to stderr unless told not to.
UserPattern = re2._Regexp
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False

# Canonical label words shared by all layouts, so that corpora can be mixed and a
# model trained on one can be evaluated on another without a label map.
ANGER = "anger"
BOREDOM = "boredom"
CALM = "calm"
DISGUST = "disgust"
EXCITED = "excited"
FEAR = "fear"
FRUSTRATION = "frustration"
HAPPY = "happy"
NEUTRAL = "neutral"
OTHER = "other"
SAD = "sad"
SURPRISE = "surprise"

FEMALE = "female"
MALE = "male"

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".wav",
        ".flac",
        ".mp3",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".aac",
        ".mp4",
        ".webm",
        ".mka",
        ".wma",
        ".aif",
        ".aiff",
    }
)

# A WAV header alone is 44 bytes; anything this small holds no audio (CREMA-D ships
# one such file) and would only fail later, inside a training job.
MIN_AUDIO_BYTES = 45


class CorpusError(ValueError):
    """A corpus cannot be read as asked; the message says what to fix.

    `problems` lists every individual problem (e.g. one per manifest line) when
    there are several, so a page can show them all at once.
    """

    def __init__(self, message: str, *, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.problems: list[str] = list(problems)


@dataclass(frozen=True)
class CorpusItem:
    """One labelled recording.

    `group` is the unit of leave-one-group-out evaluation: the session for IEMOCAP,
    the speaker for corpora without a coarser unit.
    """

    path: Path
    label: str
    speaker: str
    group: str
    gender: str | None = None
    # Excluded from hashing so items stay hashable; still compared for equality.
    meta: dict = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class SkippedFile:
    """A file a scan left out, and why (shown to the user after an import)."""

    path: Path
    reason: str


SkipSink = list[SkippedFile] | None


def record_skip(skipped: SkipSink, path: Path, reason: str) -> None:
    logger.info("corpus scan skipped %s: %s", path, reason)
    if skipped is not None:
        skipped.append(SkippedFile(path, reason))


def resolve_root(root: Path) -> Path:
    """The corpus folder, resolved; a CorpusError when it is not a folder."""
    root = Path(root)
    if not root.is_dir():
        # The name only: the full path is the server's business, not the user's.
        raise CorpusError(f"corpus folder not found: {root.name}")
    return root.resolve()


def is_inside(root: Path, path: Path) -> bool:
    """Whether `path`, with every symlink resolved, stays inside the resolved `root`."""
    return path.resolve().is_relative_to(root)


def walk_files(
    root: Path,
    skipped: SkipSink = None,
    *,
    extensions: Iterable[str] | None = AUDIO_EXTENSIONS,
) -> list[Path]:
    """Every audio file under `root` (already resolved), sorted by relative path.

    Symlinked folders are never followed (they could loop, duplicate items or lead
    out of the corpus); symlinked files are kept only when they resolve inside the
    corpus. Hidden files and folders (macOS "._x.wav" forks, ".git") are ignored.
    """
    wanted = None if extensions is None else {e.lower() for e in extensions}
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in dirnames:
            if (here / name).is_symlink():
                reason = (
                    "symlinked folder not followed"
                    if is_inside(root, here / name)
                    else "symlink points outside the corpus folder"
                )
                record_skip(skipped, here / name, reason)
        for name in filenames:
            if name.startswith("."):
                continue
            path = here / name
            if wanted is not None and path.suffix.lower() not in wanted:
                continue
            reason = unusable_file_reason(root, path)
            if reason:
                record_skip(skipped, path, reason)
            else:
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def unusable_file_reason(root: Path, path: Path) -> str | None:
    """Why a file inside the corpus cannot be used, or None when it can."""
    if not path.exists():
        return "broken symlink" if path.is_symlink() else "file not found"
    # Resolving catches a link anywhere on the way, not only the file itself.
    if not is_inside(root, path):
        return "symlink points outside the corpus folder"
    if not path.is_file():
        return "not a regular file"
    if path.stat().st_size < MIN_AUDIO_BYTES:
        return "file too small to hold audio"
    return None


def sample_files(root: Path, limit: int = 200) -> list[Path]:
    """Up to `limit` audio files under `root`, cheaply, for layout detection."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                found.append(Path(dirpath) / name)
                if len(found) >= limit:
                    return found
    return found


def mostly_matching(root: Path, matches: Callable[[Path], bool], share: float = 0.8) -> bool:
    """Whether most sampled audio files under `root` satisfy `matches`.

    A share rather than "all" because real corpus copies carry stray extras.
    """
    try:
        sample = sample_files(Path(root))
    except OSError:
        return False
    if not sample:
        return False
    return sum(1 for p in sample if matches(p)) >= share * len(sample)


def sort_items(items: Iterable[CorpusItem], root: Path) -> list[CorpusItem]:
    """Items in a stable order: by path relative to the corpus, then label."""
    return sorted(items, key=lambda it: (it.path.relative_to(root).as_posix(), it.label))


def apply_label_map(
    items: Iterable[CorpusItem], mapping: Mapping[str, str | None]
) -> list[CorpusItem]:
    """Rename, merge (several keys to one value) or drop (value None) labels.

    Labels absent from `mapping` are kept unchanged; the label before the map is
    kept in `meta["label_before_map"]` so a report can say what was merged.
    """
    result: list[CorpusItem] = []
    for item in items:
        if item.label not in mapping:
            result.append(item)
            continue
        new_label = mapping[item.label]
        if new_label is None:
            continue
        meta = {**item.meta, "label_before_map": item.meta.get("label_before_map", item.label)}
        result.append(dataclasses.replace(item, label=new_label, meta=meta))
    return result


def only_labels(items: Iterable[CorpusItem], labels: Iterable[str]) -> list[CorpusItem]:
    """Keep the items whose label is one of `labels`."""
    keep = set(labels)
    return [item for item in items if item.label in keep]


def compile_pattern(pattern: str | UserPattern | None) -> UserPattern | None:
    """A user's regular expression, compiled by RE2: matching takes time linear in the
    input, so no pattern (`(a+)+$` on a long name) can spin a worker. RE2 has no
    back-references or lookarounds; such a pattern is refused with RE2's reason."""
    if pattern is None or isinstance(pattern, re2._Regexp):
        return pattern
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise CorpusError(f"{reason} (back-references and lookarounds are not supported)") from None


def normalise_gender(value: str | None) -> str | None:
    """'F', 'female', 'Female' -> 'female'; blank -> None; anything else lower-cased."""
    if value is None:
        return None
    text = value.strip().lower()
    if not text:
        return None
    if text in {"f", "female", "w", "woman"}:
        return FEMALE
    if text in {"m", "male", "man"}:
        return MALE
    return text


# What a layout's per-file parser returns: an item, None for a file its options
# leave out on purpose, or a string saying why the file is unusable.
ParseResult = CorpusItem | str | None


def scan_files(
    root: Path,
    parse: Callable[[Path], ParseResult],
    *,
    layout: str,
    expected: str,
    skipped: SkipSink = None,
) -> list[CorpusItem]:
    """Walk `root` (resolved), parse every audio file, collect items in a stable order.

    Raises CorpusError when not one file is recognised: that is a wrong layout or
    wrong folder, which the user should hear about instead of getting an empty set.
    """
    items: list[CorpusItem] = []
    recognised = 0
    for path in walk_files(root, skipped):
        result = parse(path)
        if isinstance(result, str):
            record_skip(skipped, path, result)
            continue
        recognised += 1
        if result is not None:
            items.append(result)
    if not recognised:
        raise CorpusError(f"no {layout} files found under {root.name or root}: expected {expected}")
    return sort_items(items, root)
