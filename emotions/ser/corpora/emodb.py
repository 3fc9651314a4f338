"""Berlin Emotional Speech Database (EmoDB): wav/SSTTTEV.wav, e.g. 03a01Fa.wav.

SS speaker (2 digits), TTT text code, E emotion letter (German initials: W Wut,
L Langeweile, E Ekel, A Angst, F Freude, T Trauer, N neutral), V version letter.
The speakers' genders are published with the corpus and fixed, so they are listed.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import (
    ANGER,
    BOREDOM,
    DISGUST,
    FEAR,
    FEMALE,
    HAPPY,
    MALE,
    NEUTRAL,
    SAD,
    CorpusItem,
    ParseResult,
    SkipSink,
    mostly_matching,
    resolve_root,
    scan_files,
)

EMOTIONS = {
    "W": ANGER,
    "L": BOREDOM,
    "E": DISGUST,
    "A": FEAR,
    "F": HAPPY,
    "T": SAD,
    "N": NEUTRAL,
}
SPEAKER_GENDERS = {
    "03": MALE,
    "08": FEMALE,
    "09": FEMALE,
    "10": MALE,
    "11": MALE,
    "12": MALE,
    "13": FEMALE,
    "14": FEMALE,
    "15": MALE,
    "16": FEMALE,
}

_NAME = re.compile(
    r"^(?P<speaker>\d\d)(?P<text>[a-z]\d\d)(?P<emotion>[WLEAFTN])(?P<version>[a-z])\.wav$"
)


def matches(root: Path) -> bool:
    return mostly_matching(root, lambda p: bool(_NAME.match(p.name)))


def scan(root: Path, *, skipped: SkipSink = None) -> list[CorpusItem]:
    """EmoDB recordings, labels as full words (happiness -> happy, sadness -> sad)."""
    root = resolve_root(root)

    def parse(path: Path) -> ParseResult:
        match = _NAME.match(path.name)
        if not match:
            return "name is not an EmoDB file name (e.g. 03a01Fa.wav)"
        speaker = match["speaker"]
        return CorpusItem(
            path=path,
            label=EMOTIONS[match["emotion"]],
            speaker=speaker,
            group=speaker,
            gender=SPEAKER_GENDERS.get(speaker),
            meta={
                "raw_label": match["emotion"],
                "text": match["text"],
                "version": match["version"],
            },
        )

    return scan_files(root, parse, layout="EmoDB", expected="wav/03a01Fa.wav", skipped=skipped)
