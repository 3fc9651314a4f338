"""Toronto Emotional Speech Set (TESS): OAF_angry/OAF_back_angry.wav, YAF_sad/YAF_bar_sad.wav.

Two female speakers, OAF (older) and YAF (younger), each saying "Say the word _"
with 200 target words in seven emotions. The emotion is the file name's last part
("ps" is pleasant surprise); the folder (e.g. OAF_Pleasant_surprise,
YAF_pleasant_surprised) is the fallback, since the release is not consistent in
case or spelling. Pleasant surprise is labelled "surprise" to share one vocabulary
with the other corpora; the original word stays in meta["raw_label"].
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import (
    ANGER,
    DISGUST,
    FEAR,
    FEMALE,
    HAPPY,
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
    "angry": ANGER,
    "anger": ANGER,
    "disgust": DISGUST,
    "fear": FEAR,
    "happy": HAPPY,
    "neutral": NEUTRAL,
    "sad": SAD,
    "ps": SURPRISE,
    "pleasant_surprise": SURPRISE,
    "pleasant_surprised": SURPRISE,
}
SPEAKERS = {"OAF": "older adult female", "YAF": "younger adult female"}

_FILE = re.compile(r"^(?P<speaker>OAF|YAF)_(?P<word>[a-z]+)_(?P<emotion>[a-z_]+)\.wav$", re.I)
_FOLDER = re.compile(r"^(?P<speaker>OAF|YAF)_(?P<emotion>[a-z_]+)$", re.I)


def matches(root: Path) -> bool:
    return mostly_matching(root, lambda p: bool(_FILE.match(p.name)))


def scan(root: Path, *, skipped: SkipSink = None) -> list[CorpusItem]:
    """TESS recordings; speaker OAF or YAF."""
    root = resolve_root(root)

    def parse(path: Path) -> ParseResult:
        match = _FILE.match(path.name)
        if not match:
            return "name is not a TESS file name (OAF_word_emotion.wav)"
        raw = match["emotion"].lower()
        if raw not in EMOTIONS:
            folder = _FOLDER.match(path.parent.name)
            raw = folder["emotion"].lower() if folder else raw
        if raw not in EMOTIONS:
            return f"unknown TESS emotion {match['emotion']!r}"
        speaker = match["speaker"].upper()
        return CorpusItem(
            path=path,
            label=EMOTIONS[raw],
            speaker=speaker,
            group=speaker,
            gender=FEMALE,
            meta={"raw_label": raw, "word": match["word"].lower()},
        )

    return scan_files(
        root, parse, layout="TESS", expected="OAF_angry/OAF_back_angry.wav", skipped=skipped
    )
