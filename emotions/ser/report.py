"""The report of a per-segment emotion timeline: shares, dominant emotion per minute,
smoothing, runs and top moments. Pure functions; the report page, the PDF, the stored
summary and the CLI all draw from `build_timeline` and never compute their own."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

import numpy as np

from emotions.ser import csv_safe

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


SILENCE = "silence"
NO_SPEECH = "no speech"
# Codes for a segment that carries no emotion, beside the label indexes 0..k-1 in the
# compact JSON the report page draws from.
SILENCE_CODE = -1
NO_SPEECH_CODE = -2
# The voice-activity detector may mark a block "no speech" by its label; plain silence
# (below the level threshold) has no label at all.
_NO_SPEECH_LABELS = frozenset({"no speech", "no_speech", "nospeech"})
# Smoothing the report offers, in 1 s segments: none, 5 s, 15 s, 1 min. The default is
# short enough to keep a one-minute outburst and long enough to merge single-second flips.
SMOOTHING_WINDOWS = (1, 5, 15, 60)
DEFAULT_SMOOTHING = 5
TOP_MOMENTS_PER_EMOTION = 3
# Emotion colours for the page and the PDF alike: each at least 3:1 against white (WCAG
# for graphics), and the four usual classes far apart in lightness (CIE L* 58, 45, 33,
# 21), so the band still reads in greyscale and with any colour-vision deficiency.
EMOTION_COLOURS = {
    "happy": "#B88000",
    "happiness": "#B88000",
    "anger": "#C03A00",
    "angry": "#C03A00",
    "neutral": "#4D4D4D",
    "sad": "#08306B",
    "sadness": "#08306B",
    "fear": "#00856A",
    "fearful": "#00856A",
    "disgust": "#6A3D9A",
    "surprise": "#8C7000",
    "surprised": "#8C7000",
    "excited": "#B0307F",
    "calm": "#1E1E1E",
    "boredom": "#7A5C1E",
}
EXTRA_COLOURS = ("#00856A", "#6A3D9A", "#B0307F", "#7A5C1E", "#8C7000", "#1E1E1E")
# Non-speech is not a colour but a pattern of this grey (4.5:1 on white) on white.
NON_SPEECH_COLOUR = "#767676"


def colours_for(labels: Sequence[str]) -> dict[str, str]:
    """The colour of each label: the usual emotions keep theirs, others take the next free."""
    out: dict[str, str] = {}
    for label in labels:
        colour = EMOTION_COLOURS.get(label.lower())
        if colour is None or colour in out.values():
            free = [c for c in EXTRA_COLOURS if c not in out.values()] or list(EXTRA_COLOURS)
            colour = free[0]
        out[label] = colour
    return out


def clock(seconds: float | None) -> str:
    """h:mm:ss, the way the report writes every time and length ("1:02:05", "0:00:10")."""
    whole = int(max(0.0, float(seconds or 0.0)))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def segment_kind(is_silence: bool, label: str) -> str | None:
    """None for speech that has an emotion; "silence" or "no speech" for a block without."""
    if (label or "").strip().lower() in _NO_SPEECH_LABELS:
        return NO_SPEECH
    if is_silence or not label:
        return SILENCE
    return None


@dataclass(frozen=True)
class Run:
    """Consecutive segments with one (smoothed) emotion, or one kind of non-speech."""

    start_s: float
    end_s: float
    label: str
    # Mean probability the model gave this emotion over the run (None for non-speech).
    confidence: float | None
    segments: int

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s

    def as_dict(self) -> dict:
        return {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "label": self.label,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "segments": self.segments,
        }


@dataclass(frozen=True)
class Minute:
    """One started minute: the emotion with most speech seconds, or why there is none."""

    minute: int
    label: str | None
    kind: str  # "speech", "silence" or "no speech"
    speech_s: float
    shares: dict[str, float]

    def as_dict(self) -> dict:
        return {
            "minute": self.minute,
            "label": self.label,
            "kind": self.kind,
            "speech_s": round(self.speech_s, 3),
            "shares": {k: round(v, 4) for k, v in self.shares.items()},
        }


@dataclass
class Timeline:
    """Everything the report shows, computed once: the page, the PDF and the stored
    summary draw from this and never recompute it."""

    labels: list[str]
    window: int
    start_s: np.ndarray  # (n,)
    end_s: np.ndarray  # (n,)
    raw: np.ndarray  # (n,) int: label index, SILENCE_CODE or NO_SPEECH_CODE
    confidence: list[float | None]
    probabilities: np.ndarray  # (n, k) the model's answer; zeros where no speech
    smoothed: np.ndarray  # (n, k) moving mean over speech segments only
    band: np.ndarray  # (n,) int: smoothed label index, or the non-speech code
    per_minute: list[Minute]
    runs: list[Run]
    top_moments: dict[str, list[Run]]

    @property
    def duration_s(self) -> float:
        return float(self.end_s.max()) if len(self.end_s) else 0.0

    def seconds_of(self, code: int) -> float:
        return float((self.end_s - self.start_s)[self.raw == code].sum())

    def speech_seconds(self) -> float:
        return float((self.end_s - self.start_s)[self.raw >= 0].sum())

    def shares(self) -> dict[str, float]:
        """Share of speech time per emotion, from the model's own (unsmoothed) answers."""
        speech = self.speech_seconds()
        return {
            label: (self.seconds_of(i) / speech if speech else 0.0)
            for i, label in enumerate(self.labels)
        }

    def name(self, code: int) -> str:
        return _code_name(code, self.labels)

    def as_dict(self) -> dict:
        """Compact JSON for the page: column arrays, emotions as indexes into `labels`."""
        shares = self.shares()
        return {
            "labels": self.labels,
            "colours": colours_for(self.labels),
            "window": self.window,
            "duration_s": round(self.duration_s, 3),
            "speech_s": round(self.speech_seconds(), 3),
            "silence_s": round(self.seconds_of(SILENCE_CODE), 3),
            "no_speech_s": round(self.seconds_of(NO_SPEECH_CODE), 3),
            "shares": {k: round(v, 4) for k, v in shares.items()},
            "dominant": max(shares, key=lambda k: shares[k]) if self.speech_seconds() else None,
            "low_confidence_threshold": round(low_confidence_threshold(len(self.labels)), 4),
            "start": [round(float(t), 3) for t in self.start_s],
            "end": [round(float(t), 3) for t in self.end_s],
            "raw": self.raw.tolist(),
            "band": self.band.tolist(),
            "confidence": [None if c is None else round(c, 4) for c in self.confidence],
            "probabilities": np.round(self.probabilities, 3).tolist(),
            "smoothed": np.round(self.smoothed, 3).tolist(),
            "per_minute": [m.as_dict() for m in self.per_minute],
            "runs": [r.as_dict() for r in self.runs],
            "top_moments": {k: [r.as_dict() for r in v] for k, v in self.top_moments.items()},
        }


def build_timeline(segments: Sequence, labels: Sequence[str], window: int = 1) -> Timeline:
    """The report of a lecture from its segments (SegmentResult, or rows with the same
    attributes, in time order). `window` smooths the curves, the band, the per-minute
    summary, the runs and the top moments alike."""
    labels = list(labels)
    n, k = len(segments), len(labels)
    position = {label: i for i, label in enumerate(labels)}
    start = np.fromiter((s.start_s for s in segments), dtype=float, count=n)
    end = np.fromiter((s.end_s for s in segments), dtype=float, count=n)
    raw = np.empty(n, dtype=int)
    probs = np.zeros((n, k))
    confidence: list[float | None] = []
    for i, s in enumerate(segments):
        kind = segment_kind(s.is_silence, s.label)
        if kind is None and s.label not in position:
            kind = SILENCE  # a label the model does not know cannot be drawn as an emotion
        if kind is not None:
            raw[i] = NO_SPEECH_CODE if kind == NO_SPEECH else SILENCE_CODE
            confidence.append(None)
            continue
        raw[i] = position[s.label]
        confidence.append(s.confidence)
        given = s.probabilities or {}
        if given:
            probs[i] = [float(given.get(label, 0.0)) for label in labels]
        else:  # only the winner is known
            probs[i, raw[i]] = 1.0 if s.confidence is None else s.confidence
    speech = raw >= 0
    smoothed = smooth_probabilities(probs, window, speech)
    band = raw.copy()
    if k and window > 1:
        band[speech] = smoothed[speech].argmax(axis=1)
    runs = find_runs(start, end, band, probs, labels)
    timeline = Timeline(
        labels=labels,
        window=window,
        start_s=start,
        end_s=end,
        raw=raw,
        confidence=confidence,
        probabilities=probs,
        smoothed=smoothed,
        band=band,
        per_minute=minutes(start, end, band, smoothed, labels),
        runs=runs,
        top_moments=top_moments(runs, labels),
    )
    return timeline


def _code_name(code: int, labels: Sequence[str]) -> str:
    if code == SILENCE_CODE:
        return SILENCE
    if code == NO_SPEECH_CODE:
        return NO_SPEECH
    return labels[code]


def find_runs(
    start: np.ndarray, end: np.ndarray, band: np.ndarray, probs: np.ndarray, labels: Sequence[str]
) -> list[Run]:
    """Consecutive segments with the same band value, each with the mean probability the
    model gave that emotion over it."""
    runs = []
    n = len(band)
    i = 0
    while i < n:
        j = i
        while j + 1 < n and band[j + 1] == band[i]:
            j += 1
        code = int(band[i])
        conf = float(probs[i : j + 1, code].mean()) if code >= 0 else None
        runs.append(Run(float(start[i]), float(end[j]), _code_name(code, labels), conf, j - i + 1))
        i = j + 1
    return runs


def top_moments(
    runs: Sequence[Run], labels: Sequence[str], per_emotion: int = TOP_MOMENTS_PER_EMOTION
) -> dict[str, list[Run]]:
    """Per emotion, the stretches that are long and confident at once (length × mean
    probability), best first."""
    best: dict[str, list[Run]] = {}
    for label in labels:
        candidates = [r for r in runs if r.label == label]
        candidates.sort(key=lambda r: (-(r.seconds * (r.confidence or 0.0)), r.start_s))
        best[label] = candidates[:per_emotion]
    return best


def minutes(
    start: np.ndarray,
    end: np.ndarray,
    band: np.ndarray,
    smoothed: np.ndarray,
    labels: Sequence[str],
) -> list[Minute]:
    """For each started minute: the emotion with most speech seconds (ties go to the one
    with more probability mass), its shares, or the kind of non-speech that fills it."""
    out: list[Minute] = []
    if not len(start):
        return out
    length = end - start
    minute_of = (start // 60).astype(int)
    for m in range(int(minute_of.max()) + 1):
        here = minute_of == m
        if not here.any():
            continue
        codes, secs = band[here], length[here]
        speech = codes >= 0
        speech_s = float(secs[speech].sum())
        if speech_s > 0:
            per_label = [float(secs[codes == i].sum()) for i in range(len(labels))]
            mass = smoothed[here][speech].sum(axis=0) if len(labels) else []
            winner = max(range(len(labels)), key=lambda i: (per_label[i], mass[i]))
            shares = {label: per_label[i] / speech_s for i, label in enumerate(labels)}
            out.append(Minute(m, labels[winner], "speech", speech_s, shares))
        else:
            no_speech = float(secs[codes == NO_SPEECH_CODE].sum())
            kind = NO_SPEECH if no_speech > float(secs.sum()) / 2 else SILENCE
            out.append(Minute(m, None, kind, 0.0, {label: 0.0 for label in labels}))
    return out


def summarize(segments: Sequence[SegmentResult], labels: Sequence[str]) -> dict:
    """The summary stored with a lecture (and printed by the CLI): shares from the model's
    own answers, per-minute dominant emotion, top moments at the default smoothing."""
    raw = build_timeline(segments, labels, 1)
    smoothed = build_timeline(segments, labels, DEFAULT_SMOOTHING)
    shares = raw.shares()
    threshold = low_confidence_threshold(len(labels))
    low = sum(1 for c in raw.confidence if c is not None and c < threshold)
    return {
        "duration_s": round(raw.duration_s, 3),
        "segments": len(segments),
        "speech_s": round(raw.speech_seconds(), 3),
        "silence_s": round(raw.seconds_of(SILENCE_CODE), 3),
        "no_speech_s": round(raw.seconds_of(NO_SPEECH_CODE), 3),
        "shares": {k: round(v, 4) for k, v in shares.items()},
        "dominant": max(shares, key=lambda k: shares[k]) if raw.speech_seconds() else None,
        "per_minute": [{"minute": m.minute, "label": m.label} for m in raw.per_minute],
        "top_moments": {k: [r.as_dict() for r in v] for k, v in smoothed.top_moments.items()},
        "low_confidence_segments": low,
        "low_confidence_threshold": round(threshold, 3),
    }


def dominant_per_minute(segments: Sequence[SegmentResult]) -> list[dict]:
    """For each started minute: the emotion with most speech seconds (None if silent)."""
    labels = sorted({s.label for s in segments if segment_kind(s.is_silence, s.label) is None})
    return [
        {"minute": m.minute, "label": m.label}
        for m in build_timeline(segments, labels, 1).per_minute
    ]


def smooth_probabilities(
    probs: np.ndarray, window: int, speech: np.ndarray | None = None
) -> np.ndarray:
    """Moving average over `window` segments (centred; edges use what exists). With a
    `speech` mask, only speech segments count: silence neither dilutes nor feeds it."""
    if window <= 1 or len(probs) == 0:
        return probs
    weight = np.ones(len(probs)) if speech is None else speech.astype(float)
    # Running sums make any window cost the same (a 60 s window over 3 h is instant).
    half_before, half_after = (window - 1) // 2, window // 2
    padded = np.vstack([np.zeros((1, probs.shape[1])), np.cumsum(probs * weight[:, None], 0)])
    counts = np.concatenate([[0.0], np.cumsum(weight)])
    idx = np.arange(len(probs))
    lo = np.clip(idx - half_before, 0, len(probs))
    hi = np.clip(idx + half_after + 1, 0, len(probs))
    sums = padded[hi] - padded[lo]
    n = (counts[hi] - counts[lo])[:, None]
    return np.where(n > 0, sums / np.maximum(n, 1e-12), 0.0)


CSV_COLUMNS = ["index", "start_s", "end_s", "is_silence", "label", "confidence"]


def write_segments_csv(out: IO[str], segments: Iterable, labels: Sequence[str]) -> None:
    """CSV of segments (SegmentResult or anything with the same attributes), one row each,
    with one probability column per label (empty for silence)."""
    writer = csv_safe.writer(out)  # labels come from users: no formulas
    writer.writerow(CSV_COLUMNS + [f"p_{label}" for label in labels])
    for s in segments:
        confidence = "" if s.confidence is None else f"{s.confidence:.5f}"
        probs = ["" if s.is_silence else f"{s.probabilities.get(lab, 0.0):.5f}" for lab in labels]
        writer.writerow(
            [s.index, f"{s.start_s:.3f}", f"{s.end_s:.3f}", int(s.is_silence), s.label, confidence]
            + probs
        )
