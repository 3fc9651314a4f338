"""SAVEE (Surrey Audio-Visual Expressed Emotion): AudioData/DC/a01.wav.

Four male speakers (DC, JE, JK, KL); the file name's prefix is the emotion:
a anger, d disgust, f fear, h happiness, n neutral, sa sadness, su surprise.
The flat copy that circulates widely ("DC_a01.wav" in one folder) is read too.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import (
    ANGER,
    DISGUST,
    FEAR,
    HAPPY,
    MALE,
    NEUTRAL,
    SAD,
    SURPRISE,
    CorpusItem,
    ParseResult,
    SkipSink,
    mostly_matching,
    resolve_root,
    scan_files,
)

EMOTIONS = {
    "a": ANGER,
    "d": DISGUST,
    "f": FEAR,
    "h": HAPPY,
    "n": NEUTRAL,
    "sa": SAD,
    "su": SURPRISE,
}
SPEAKERS = ("DC", "JE", "JK", "KL")

_SPEAKER = "|".join(SPEAKERS)
# "sa"/"su" before the one-letter prefixes so the alternation never splits them.
_EMOTION = "sa|su|a|d|f|h|n"
_IN_SPEAKER_FOLDER = re.compile(rf"^(?P<emotion>{_EMOTION})(?P<number>\d\d)\.wav$")
_FLAT = re.compile(rf"^(?P<speaker>{_SPEAKER})_(?P<emotion>{_EMOTION})(?P<number>\d\d)\.wav$")


def matches(root: Path) -> bool:
    return mostly_matching(root, lambda p: _parse_name(p) is not None)


def scan(root: Path, *, skipped: SkipSink = None) -> list[CorpusItem]:
    """SAVEE recordings (all four speakers are male)."""
    root = resolve_root(root)

    def parse(path: Path) -> ParseResult:
        parsed = _parse_name(path)
        if parsed is None:
            return "not a SAVEE file (AudioData/DC/a01.wav or DC_a01.wav)"
        speaker, emotion, number = parsed
        return CorpusItem(
            path=path,
            label=EMOTIONS[emotion],
            speaker=speaker,
            group=speaker,
            gender=MALE,
            meta={"raw_label": emotion, "sentence": number},
        )

    return scan_files(root, parse, layout="SAVEE", expected="AudioData/DC/a01.wav", skipped=skipped)


def _parse_name(path: Path) -> tuple[str, str, str] | None:
    """(speaker, emotion prefix, sentence number) from either SAVEE naming."""
    if path.parent.name in SPEAKERS:
        match = _IN_SPEAKER_FOLDER.match(path.name)
        if match:
            return path.parent.name, match["emotion"], match["number"]
    match = _FLAT.match(path.name)
    if match:
        return match["speaker"], match["emotion"], match["number"]
    return None
