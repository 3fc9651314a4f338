"""CREMA-D: AudioWAV/AAAA_SSS_EEE_LL.wav (actor, sentence, emotion, intensity).

Emotions ANG, DIS, FEA, HAP, NEU, SAD; intensity LO, MD, HI or XX (unspecified).
Actor gender is not in the file name: it comes from VideoDemographics.csv
(columns ActorID, Age, Sex, Race, Ethnicity) when the corpus folder has it.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from .base import (
    ANGER,
    DISGUST,
    FEAR,
    HAPPY,
    NEUTRAL,
    SAD,
    CorpusError,
    CorpusItem,
    ParseResult,
    SkipSink,
    is_inside,
    mostly_matching,
    normalise_gender,
    resolve_root,
    scan_files,
)

EMOTIONS = {
    "ANG": ANGER,
    "DIS": DISGUST,
    "FEA": FEAR,
    "HAP": HAPPY,
    "NEU": NEUTRAL,
    "SAD": SAD,
}
INTENSITIES = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
DEMOGRAPHICS_FILE = "VideoDemographics.csv"

_NAME = re.compile(
    r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>ANG|DIS|FEA|HAP|NEU|SAD)_"
    r"(?P<level>LO|MD|HI|XX)\.wav$"
)


def matches(root: Path) -> bool:
    return mostly_matching(root, lambda p: bool(_NAME.match(p.name)))


def scan(
    root: Path,
    *,
    demographics: Path | None = None,
    skipped: SkipSink = None,
) -> list[CorpusItem]:
    """CREMA-D recordings; gender from `demographics` (default: the corpus's own
    VideoDemographics.csv, when present)."""
    root = resolve_root(root)
    if demographics is None:
        candidate = root / DEMOGRAPHICS_FILE
        # Only a file really inside the corpus is read by default.
        if candidate.is_file() and is_inside(root, candidate):
            demographics = candidate
    genders = read_demographics(demographics) if demographics is not None else {}

    def parse(path: Path) -> ParseResult:
        match = _NAME.match(path.name)
        if not match:
            return "name is not a CREMA-D file name (AAAA_SSS_EEE_LL.wav)"
        actor = match["actor"]
        return CorpusItem(
            path=path,
            label=EMOTIONS[match["emotion"]],
            speaker=actor,
            group=actor,
            gender=genders.get(actor),
            meta={
                "raw_label": match["emotion"],
                "sentence": match["sentence"],
                "intensity": INTENSITIES[match["level"]],
            },
        )

    return scan_files(
        root, parse, layout="CREMA-D", expected="AudioWAV/1001_DFA_ANG_XX.wav", skipped=skipped
    )


def read_demographics(path: Path) -> dict[str, str]:
    """ActorID -> 'female' / 'male' from CREMA-D's VideoDemographics.csv."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = set(reader.fieldnames or ())
            if not {"ActorID", "Sex"} <= fields:
                raise CorpusError(f"{Path(path).name}: needs columns ActorID and Sex")
            genders = {}
            for row in reader:
                gender = normalise_gender(row.get("Sex"))
                actor = (row.get("ActorID") or "").strip()
                if actor and gender:
                    genders[actor] = gender
            return genders
    except OSError as exc:
        raise CorpusError(f"cannot read {Path(path).name}: {exc.strerror}") from exc
