"""RAVDESS: Actor_XX/MM-VV-EE-II-SS-RR-AA.wav.

The seven two-digit fields are modality (01 audio-video, 02 video-only,
03 audio-only), vocal channel (01 speech, 02 song), emotion, intensity (01 normal,
02 strong), statement, repetition and actor (01..24; odd actors are male, even
actors female). By default only audio-only speech is kept: songs are sung, and
the audio of the video files is the same performance twice.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from .base import (
    ANGER,
    CALM,
    DISGUST,
    FEAR,
    FEMALE,
    HAPPY,
    MALE,
    NEUTRAL,
    SAD,
    SURPRISE,
    CorpusError,
    CorpusItem,
    ParseResult,
    SkipSink,
    mostly_matching,
    resolve_root,
    scan_files,
)

EMOTIONS = {
    "01": NEUTRAL,
    "02": CALM,
    "03": HAPPY,
    "04": SAD,
    "05": ANGER,
    "06": FEAR,
    "07": DISGUST,
    "08": SURPRISE,
}
CHANNELS = {"speech": ("01",), "song": ("02",), "all": ("01", "02")}

Channel = Literal["speech", "song", "all"]

_NAME = re.compile(
    r"^(?P<modality>0[123])-(?P<channel>0[12])-(?P<emotion>0[1-8])-(?P<intensity>0[12])-"
    r"(?P<statement>0[12])-(?P<repetition>0[12])-(?P<actor>\d\d)\.wav$",
    re.IGNORECASE,
)


def matches(root: Path) -> bool:
    return mostly_matching(root, lambda p: bool(_NAME.match(p.name)))


def scan(
    root: Path,
    *,
    channel: Channel = "speech",
    modalities: tuple[str, ...] = ("03",),
    skipped: SkipSink = None,
) -> list[CorpusItem]:
    """RAVDESS recordings; `channel` and `modalities` select which ones (default:
    audio-only speech)."""
    root = resolve_root(root)
    if channel not in CHANNELS:
        raise CorpusError(f"channel must be one of {sorted(CHANNELS)}, not {channel!r}")
    wanted_channels = CHANNELS[channel]

    def parse(path: Path) -> ParseResult:
        match = _NAME.match(path.name)
        if not match:
            return "name is not a RAVDESS file name (MM-VV-EE-II-SS-RR-AA.wav)"
        if match["modality"] not in modalities or match["channel"] not in wanted_channels:
            return None
        actor = match["actor"]
        return CorpusItem(
            path=path,
            label=EMOTIONS[match["emotion"]],
            speaker=f"Actor_{actor}",
            group=f"Actor_{actor}",
            gender=MALE if int(actor) % 2 else FEMALE,
            meta={
                "raw_label": match["emotion"],
                "modality": match["modality"],
                "vocal_channel": "speech" if match["channel"] == "01" else "song",
                "intensity": "normal" if match["intensity"] == "01" else "strong",
                "statement": match["statement"],
                "repetition": match["repetition"],
            },
        )

    return scan_files(
        root,
        parse,
        layout="RAVDESS",
        expected="Actor_XX/03-01-EE-II-SS-RR-AA.wav",
        skipped=skipped,
    )
