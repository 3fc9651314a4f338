"""A lecture's report: the timeline the page draws, the one-document JSON export and the
model card shown beside every result. The numbers come from `emotions.ser.report`."""

from emotions.models import EmotionModel, Lecture, Segment
from emotions.ser.report import (
    DEFAULT_SMOOTHING,
    SMOOTHING_WINDOWS,
    SegmentResult,
    Timeline,
    build_timeline,
)
from emotions.services.errors import ServiceError

# In SegmentResult's order: rows are read as plain tuples (10,800 model instances of a 3 h
# lecture took 6 s to build; the tuples take 0.15 s).
SEGMENT_FIELDS = ("index", "start_s", "end_s", "is_silence", "label", "confidence", "probabilities")
# The order metrics are shown in, when a model has them.
METRIC_NAMES = (("accuracy", "accuracy"), ("uar", "UAR"), ("f1", "weighted F1"))


def smoothing_window(value: str | int | None) -> int:
    """The smoothing a request asks for, in seconds; only the windows the report offers."""
    if value in (None, ""):
        return DEFAULT_SMOOTHING
    try:
        window = int(value)
    except (TypeError, ValueError):
        window = -1
    if window not in SMOOTHING_WINDOWS:
        choices = ", ".join(str(w) for w in SMOOTHING_WINDOWS)
        raise ServiceError(f"Smoothing must be one of {choices} seconds.")
    return window


def timeline_for(lecture: Lecture, window: int = DEFAULT_SMOOTHING) -> Timeline:
    """The lecture's timeline so far (a running analysis gives what is saved)."""
    return build_timeline(segment_results(lecture), lecture_labels(lecture), window)


def segment_results(lecture: Lecture) -> list[SegmentResult]:
    rows = Segment.objects.filter(lecture=lecture).order_by("index").values_list(*SEGMENT_FIELDS)
    return [SegmentResult(*row) for row in rows]


def lecture_labels(lecture: Lecture) -> list[str]:
    if lecture.model is not None:
        return list(lecture.model.labels)
    # The model was deleted: the labels still live in the segments.
    speech = Segment.objects.filter(lecture=lecture, is_silence=False).exclude(label="")
    return sorted(set(speech.values_list("label", flat=True)))


def model_card(model: EmotionModel | None) -> dict | None:
    """What a reader needs to judge the results: the model, its training and its scores."""
    if model is None:
        return None
    notices = []
    if not model.pretrained:
        notices.append("Trained from scratch (no ImageNet weights): expect weaker results.")
    if model.synthetic_speech:
        notices.append("Trained on synthetic speech (demonstration): not meant for real lectures.")
    return {
        "id": model.pk,
        "name": model.name,
        "version": model.version,
        "backbone": model.backbone,
        "labels": model.labels,
        "pretrained": model.pretrained,
        "provenance": model.provenance,
        "synthetic_speech": model.synthetic_speech,
        "metrics": model.metrics,
        "evaluation": evaluation_lines(model.metrics),
        "notices": notices,
    }


def evaluation_lines(metrics: dict | None) -> list[str]:
    """One line per test set: "clean: accuracy 0.71 · UAR 0.69 · weighted F1 0.70"."""
    lines = []
    for name, scores in (metrics or {}).items():
        if not isinstance(scores, dict):
            continue
        parts = []
        for key, title in METRIC_NAMES:
            value = scores.get(key, scores.get("f1_weighted") if key == "f1" else None)
            if isinstance(value, int | float):
                parts.append(f"{title} {value:.2f}")
        if parts:
            lines.append(f"{name}: " + " · ".join(parts))
    return lines


def report_data(lecture: Lecture, window: int = DEFAULT_SMOOTHING) -> dict:
    """What the report page draws: the lecture, its model card and the timeline."""
    return {
        "lecture": lecture_header(lecture),
        "model": model_card(lecture.model),
        **timeline_for(lecture, window).as_dict(),
    }


def lecture_header(lecture: Lecture) -> dict:
    return {
        "id": lecture.pk,
        "title": lecture.title,
        "course": lecture.course,
        "recorded_on": lecture.recorded_on.isoformat() if lecture.recorded_on else None,
        "original_name": lecture.original_name,
        "duration_s": lecture.duration_s,
        "state": lecture.job.state if lecture.job else None,
    }


def export_document(lecture: Lecture) -> dict:
    """The JSON export: one document with the lecture, its model, the summary (at the
    default smoothing) and every segment as the model answered it."""
    rows = segment_results(lecture)
    timeline = build_timeline(rows, lecture_labels(lecture), DEFAULT_SMOOTHING)
    data = timeline.as_dict()
    summary = {
        key: data[key]
        for key in (
            "duration_s",
            "speech_s",
            "silence_s",
            "no_speech_s",
            "shares",
            "dominant",
            "per_minute",
            "top_moments",
        )
    }
    summary["smoothing_s"] = timeline.window
    segments = [
        {
            "index": s.index,
            "start_s": s.start_s,
            "end_s": s.end_s,
            "state": _state(timeline, i),
            "label": s.label,
            "confidence": s.confidence,
            "probabilities": s.probabilities,
        }
        for i, s in enumerate(rows)
    ]
    return {
        **lecture_header(lecture),
        "model": model_card(lecture.model),
        "summary": summary,
        "segments": segments,
    }


def _state(timeline: Timeline, i: int) -> str:
    code = int(timeline.raw[i])
    return "speech" if code >= 0 else timeline.name(code)
