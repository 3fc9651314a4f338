"""Any labelled folder: root/<label>/<files>, for users training on their own data.

The first folder level is the label (kept exactly as named: it is the user's own
vocabulary); files may sit deeper inside it. The speaker comes from an optional
regular expression (RE2 syntax: linear time) searched in the path relative to the
root (named group "speaker", else group 1, else the whole match); without one, or
when it does not match, the speaker is "unknown" -- which makes speaker-independent
splits impossible, and the split module says so.
"""

from __future__ import annotations

from pathlib import Path

from .base import (
    CorpusItem,
    ParseResult,
    SkipSink,
    UserPattern,
    compile_pattern,
    resolve_root,
    sample_files,
    scan_files,
)

UNKNOWN_SPEAKER = "unknown"


def matches(root: Path) -> bool:
    """Whether `root` has audio files inside at least one sub-folder."""
    root = Path(root)
    try:
        return any(p.parent != root for p in sample_files(root))
    except OSError:
        return False


def scan(
    root: Path,
    *,
    speaker_pattern: str | UserPattern | None = None,
    skipped: SkipSink = None,
) -> list[CorpusItem]:
    """Audio files under label folders; see the module doc for the speaker rule."""
    root = resolve_root(root)
    pattern = compile_pattern(speaker_pattern)

    def parse(path: Path) -> ParseResult:
        relative = path.relative_to(root)
        if len(relative.parts) < 2:
            return "not inside a label folder"
        speaker = _speaker(pattern, relative.as_posix())
        return CorpusItem(
            path=path,
            label=relative.parts[0].strip(),
            speaker=speaker,
            group=speaker,
        )

    return scan_files(
        root, parse, layout="labelled", expected="<label>/<file>.wav", skipped=skipped
    )


def _speaker(pattern: UserPattern | None, relative: str) -> str:
    if pattern is None:
        return UNKNOWN_SPEAKER
    match = pattern.search(relative)
    if not match:
        return UNKNOWN_SPEAKER
    if "speaker" in pattern.groupindex:
        value = match["speaker"]
    elif pattern.groups:
        value = match.group(1)
    else:
        value = match.group(0)
    return value or UNKNOWN_SPEAKER
