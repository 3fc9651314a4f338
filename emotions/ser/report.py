"""Summaries of a per-segment emotion timeline: shares, dominant emotion per minute,
smoothing. Pure functions over plain lists; the lecture report and the CLI share them."""

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

import numpy as np

# Below this top-class probability (relative to chance) a segment is "low confidence".
LOW_CONFIDENCE_MARGIN = 1.5


@dataclass(frozen=True)
class SegmentResult:
    index: int
    start_s: float
    end_s: float
    is_silence: bool
    label: str
    confidence: float | None
    probabilities: dict[str, float]


def low_confidence_threshold(n_classes: int) -> float:
    """Top probability under 1.5× chance (0.375 for 4 classes) is not worth trusting."""
    return min(0.95, LOW_CONFIDENCE_MARGIN / max(n_classes, 1))


def summarize(segments: Sequence[SegmentResult], labels: Sequence[str]) -> dict:
    speech = [s for s in segments if not s.is_silence and s.label]
    speech_s = sum(s.end_s - s.start_s for s in speech)
    silence_s = sum(s.end_s - s.start_s for s in segments if s.is_silence)
    seconds = Counter()
    for s in speech:
        seconds[s.label] += s.end_s - s.start_s
    shares = {label: (seconds[label] / speech_s if speech_s else 0.0) for label in labels}
    threshold = low_confidence_threshold(len(labels))
    low = sum(1 for s in speech if s.confidence is not None and s.confidence < threshold)
    duration = max((s.end_s for s in segments), default=0.0)
    return {
        "duration_s": round(duration, 3),
        "segments": len(segments),
        "speech_s": round(speech_s, 3),
        "silence_s": round(silence_s, 3),
        "shares": {k: round(v, 4) for k, v in shares.items()},
        "dominant": max(shares, key=shares.get) if speech else None,
        "per_minute": dominant_per_minute(segments),
        "low_confidence_segments": low,
        "low_confidence_threshold": round(threshold, 3),
    }


def dominant_per_minute(segments: Sequence[SegmentResult]) -> list[dict]:
    """For each started minute: the emotion with most speech seconds (None if silent)."""
    minutes: dict[int, Counter] = {}
    for s in segments:
        minute = int(s.start_s // 60)
        bucket = minutes.setdefault(minute, Counter())
        if not s.is_silence and s.label:
            bucket[s.label] += s.end_s - s.start_s
    return [
        {"minute": m, "label": (c.most_common(1)[0][0] if c else None)}
        for m, c in sorted(minutes.items())
    ]


def smooth_probabilities(probs: np.ndarray, window: int) -> np.ndarray:
    """Moving average over `window` segments (centred; edges use what exists)."""
    if window <= 1 or len(probs) == 0:
        return probs
    kernel = np.ones(window)
    padded_sum = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), 0, probs)
    counts = np.convolve(np.ones(len(probs)), kernel, mode="same")[:, None]
    return padded_sum / counts


CSV_COLUMNS = ["index", "start_s", "end_s", "is_silence", "label", "confidence"]


def write_segments_csv(out: IO[str], segments: Iterable, labels: Sequence[str]) -> None:
    """CSV of segments (SegmentResult or anything with the same attributes), one row each,
    with one probability column per label (empty for silence)."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS + [f"p_{label}" for label in labels])
    for s in segments:
        confidence = "" if s.confidence is None else f"{s.confidence:.5f}"
        probs = ["" if s.is_silence else f"{s.probabilities.get(lab, 0.0):.5f}" for lab in labels]
        writer.writerow(
            [s.index, f"{s.start_s:.3f}", f"{s.end_s:.3f}", int(s.is_silence), s.label, confidence]
            + probs
        )
