"""IEMOCAP: Session1..5/sentences/wav/<dialog>/<utterance>.wav, labels in EmoEvaluation.

Label lines in Session*/dialog/EmoEvaluation/<dialog>.txt look like
"[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]"
(start - end, utterance id, majority category, valence/activation/dominance).
The utterance id's last part starts with the gender of the speaking actor, so
"Ses01F_impro01_F000" is spoken by the female actor of session 1: speaker
"Ses01_F", group "Ses01" (the unit of leave-one-session-out).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from .base import (
    ANGER,
    DISGUST,
    EXCITED,
    FEAR,
    FEMALE,
    FRUSTRATION,
    HAPPY,
    MALE,
    NEUTRAL,
    OTHER,
    SAD,
    SURPRISE,
    CorpusError,
    CorpusItem,
    SkipSink,
    apply_label_map,
    record_skip,
    resolve_root,
    sort_items,
    unusable_file_reason,
)

LABELS = {
    "ang": ANGER,
    "hap": HAPPY,
    "exc": EXCITED,
    "sad": SAD,
    "neu": NEUTRAL,
    "fru": FRUSTRATION,
    "sur": SURPRISE,
    "fea": FEAR,
    "dis": DISGUST,
    "oth": OTHER,
}
# "xxx": the annotators reached no majority; such utterances carry no usable label.
NO_AGREEMENT = "xxx"

# The method's two 4-class sets, plus the common merge of excited into happy.
PRESETS: dict[str, dict[str, str]] = {
    "ang-hap-sad-neu": {ANGER: ANGER, HAPPY: HAPPY, SAD: SAD, NEUTRAL: NEUTRAL},
    "ang-exc-sad-neu": {ANGER: ANGER, EXCITED: EXCITED, SAD: SAD, NEUTRAL: NEUTRAL},
    "ang-hap+exc-sad-neu": {
        ANGER: ANGER,
        HAPPY: HAPPY,
        EXCITED: HAPPY,
        SAD: SAD,
        NEUTRAL: NEUTRAL,
    },
}

Subset = Literal["improvised", "scripted", "all"]

_SESSION_DIR = re.compile(r"^Session([1-5])$")
_LABEL_LINE = re.compile(
    r"^\[(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\]\t(?P<utt>Ses\d\d[FM]_\S+)\t(?P<cat>\w+)\t"
    r"\[(?P<v>[\d.]+),\s*(?P<a>[\d.]+),\s*(?P<d>[\d.]+)\]"
)


def matches(root: Path) -> bool:
    """Whether `root` holds at least one IEMOCAP session folder with labels and audio."""
    return bool(_session_dirs(Path(root)))


def scan(
    root: Path,
    *,
    subset: Subset = "all",
    preset: str | None = None,
    sessions: tuple[int, ...] | None = None,
    skipped: SkipSink = None,
) -> list[CorpusItem]:
    """All labelled utterances of an IEMOCAP release.

    subset: "improvised", "scripted" or "all" dialogs.
    preset: one of PRESETS (e.g. "ang-hap-sad-neu") to keep the 4-class set only;
        None keeps every category (labels as full words).
    sessions: restrict to these session numbers (1..5).
    """
    root = resolve_root(root)
    if subset not in ("improvised", "scripted", "all"):
        raise CorpusError(f"subset must be improvised, scripted or all, not {subset!r}")
    if preset is not None and preset not in PRESETS:
        raise CorpusError(f"unknown IEMOCAP preset {preset!r}; choose one of {sorted(PRESETS)}")
    session_dirs = _session_dirs(root)
    if not session_dirs:
        raise CorpusError(
            "no IEMOCAP session found: expected Session1..Session5 folders with "
            "sentences/wav and dialog/EmoEvaluation inside"
        )
    items: list[CorpusItem] = []
    for number, session_dir in session_dirs:
        if sessions is None or number in sessions:
            items.extend(_scan_session(root, session_dir, subset, skipped))
    if preset is not None:
        mapping = PRESETS[preset]
        items = apply_label_map(items, {label: mapping.get(label) for label in LABELS.values()})
    return sort_items(items, root)


def _session_dirs(root: Path) -> list[tuple[int, Path]]:
    found = []
    for child in sorted(root.iterdir()) if root.is_dir() else []:
        match = _SESSION_DIR.match(child.name)
        has_audio = (child / "sentences" / "wav").is_dir()
        if match and has_audio and (child / "dialog" / "EmoEvaluation").is_dir():
            found.append((int(match.group(1)), child))
    return found


def _scan_session(
    root: Path, session_dir: Path, subset: Subset, skipped: SkipSink
) -> list[CorpusItem]:
    items = []
    for label_file in sorted((session_dir / "dialog" / "EmoEvaluation").glob("*.txt")):
        if label_file.name.startswith("."):
            continue
        dialog = label_file.stem
        if subset != "all" and _dialog_subset(dialog) != subset:
            continue
        for line in label_file.read_text(encoding="utf-8", errors="replace").splitlines():
            item = _item_from_line(root, session_dir, line, label_file, skipped)
            if item is not None:
                items.append(item)
    return items


def _dialog_subset(dialog: str) -> str:
    return "improvised" if "_impro" in dialog else "scripted"


def _item_from_line(
    root: Path, session_dir: Path, line: str, label_file: Path, skipped: SkipSink
) -> CorpusItem | None:
    match = _LABEL_LINE.match(line)
    if not match:
        return None  # headers, blank lines and per-annotator lines are not utterance labels
    utt, category = match.group("utt"), match.group("cat").lower()
    dialog = utt.rsplit("_", 1)[0]
    wav = session_dir / "sentences" / "wav" / dialog / f"{utt}.wav"
    if category == NO_AGREEMENT:
        record_skip(skipped, wav, "annotators reached no majority label (xxx)")
        return None
    if category not in LABELS:
        record_skip(skipped, wav, f"unknown IEMOCAP category {category!r} in {label_file.name}")
        return None
    reason = unusable_file_reason(root, wav)
    if reason == "file not found":
        reason = f"labelled in {label_file.name} but the audio file is missing"
    if reason:
        record_skip(skipped, wav, reason)
        return None
    session = utt[:5]
    gender_letter = utt.rsplit("_", 1)[1][:1].upper()
    return CorpusItem(
        path=wav,
        label=LABELS[category],
        speaker=f"{session}_{gender_letter}",
        group=session,
        gender={"F": FEMALE, "M": MALE}.get(gender_letter),
        meta={
            "utterance": utt,
            "dialog": dialog,
            "subset": _dialog_subset(dialog),
            "start": float(match.group("start")),
            "end": float(match.group("end")),
            "valence": float(match.group("v")),
            "activation": float(match.group("a")),
            "dominance": float(match.group("d")),
            "raw_label": category,
        },
    )
