"""Lectures: upload, analysis (run by the gpu worker), report data, delete."""

import io
import logging
from dataclasses import asdict
from datetime import date

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from emotions import selectors
from emotions.models import EmotionModel, Job, Lecture, Segment
from emotions.services import jobs
from emotions.services.errors import Conflict, ServiceError
from emotions.services.files import check_upload, local_copy, safe_filename

logger = logging.getLogger(__name__)

NO_MODEL_MESSAGE = "No trained model is available yet: train one (Train page) or ask an admin."


def create_lecture(
    owner,
    upload: UploadedFile,
    *,
    title: str = "",
    course: str = "",
    recorded_on: date | None = None,
    model: EmotionModel | None = None,
    dispatch: bool = True,
) -> Lecture:
    """Store the upload and queue its analysis; the file streams to storage in chunks
    (`dispatch=False`: the caller runs the analysis job itself)."""
    check_upload(upload, settings.MAX_UPLOAD_BYTES)
    model = model or selectors.active_model_for(owner)
    if model is None:
        raise Conflict(NO_MODEL_MESSAGE)
    name = safe_filename(upload.name)
    lecture = Lecture(
        owner=owner,
        title=(title or name)[:200],
        course=course[:200],
        recorded_on=recorded_on,
        original_name=(upload.name or "")[:255],
        size_bytes=upload.size,
        model=model,
    )
    # Storage writes under a fresh name and never overwrites; the row is created in the
    # same transaction, and the file removed again if that fails (no orphans either way).
    lecture.audio.save(name, upload, save=False)
    try:
        with transaction.atomic():
            lecture.save()
            lecture.job = jobs.create_job(
                owner, Job.Kind.ANALYSIS, {"lecture": lecture.pk}, dispatch=dispatch
            )
            lecture.save(update_fields=["job"])
    except Exception:
        lecture.audio.delete(save=False)
        raise
    return lecture


def analyse(job: Job, reporter: jobs.Reporter) -> dict:
    """The analysis job: classify every 1 s segment, saving and publishing batches."""
    from emotions.ser import audio
    from emotions.ser.report import summarize

    lecture = Lecture.objects.select_related("model").get(pk=job.params["lecture"])
    if lecture.model is None:
        raise ServiceError(NO_MODEL_MESSAGE)
    classifier = _classifier(lecture.model)
    # A retried task starts over instead of duplicating rows.
    Segment.objects.filter(lecture=lecture).delete()
    results = []
    reporter.progress(0.0, "decoding", "Reading the recording…")
    with local_copy(lecture.audio) as path:
        try:
            info = audio.probe(path)
        except audio.AudioDecodeError as exc:
            raise ServiceError(f"This file cannot be read as audio: {exc.reason}") from exc
        total = max(info.duration_s, 1e-6)
        Lecture.objects.filter(pk=lecture.pk).update(duration_s=info.duration_s)
        try:
            for batch, seconds in _classify(path, classifier):
                Segment.objects.bulk_create(
                    Segment(lecture=lecture, **_segment_fields(s)) for s in batch
                )
                results.extend(batch)
                reporter.publish(
                    "segments",
                    {"lecture": lecture.pk, "segments": [_segment_fields(s) for s in batch]},
                )
                reporter.progress(
                    min(seconds / total, 0.999),
                    "classifying",
                    f"{int(seconds)} of {int(total)} s analysed",
                )
        except audio.AudioDecodeError as exc:
            raise ServiceError(f"This file cannot be read as audio: {exc.reason}") from exc
    if not results:
        raise ServiceError("The recording holds no audio to analyse.")
    summary = summarize(results, classifier.labels)
    Lecture.objects.filter(pk=lecture.pk).update(summary=summary, duration_s=summary["duration_s"])
    return {"lecture": lecture.pk, "segments": len(results), "summary": summary}


def _classify(path, classifier):
    from emotions.ser.inference import classify_file

    return classify_file(path, classifier)


_classifiers: dict[tuple[int, str], object] = {}


def _classifier(model: EmotionModel):
    """The model loaded once per worker process (weights are immutable per version)."""
    from emotions.ser.inference import Classifier

    key = (model.pk, model.weights.name)
    if key not in _classifiers:
        with local_copy(model.weights) as path:
            _classifiers.clear()  # one model in memory at a time
            _classifiers[key] = Classifier.from_checkpoint(path)
    return _classifiers[key]


def _segment_fields(s) -> dict:
    fields = asdict(s)
    return {
        "index": fields["index"],
        "start_s": round(fields["start_s"], 4),
        "end_s": round(fields["end_s"], 4),
        "is_silence": fields["is_silence"],
        "label": fields["label"],
        "confidence": None if s.confidence is None else round(s.confidence, 5),
        "probabilities": {k: round(v, 5) for k, v in s.probabilities.items()},
    }


def delete_lecture(lecture: Lecture) -> None:
    """Delete the rows and the recording together; a running analysis is cancelled first."""
    job = lecture.job
    if job is not None and not job.is_terminal:
        jobs.request_cancel(job)
    audio_name = lecture.audio.name
    storage = lecture.audio.storage
    with transaction.atomic():
        lecture.delete()
        if job is not None and job.is_terminal:
            job.delete()
        transaction.on_commit(lambda: storage.delete(audio_name) if audio_name else None)


def segments_csv(lecture: Lecture) -> str:
    from emotions.ser.report import write_segments_csv

    out = io.StringIO()
    labels = lecture.model.labels if lecture.model else []
    write_segments_csv(out, lecture.segments.order_by("index"), labels)
    return out.getvalue()
