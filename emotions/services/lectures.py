"""Lectures: upload, analysis (run by the gpu worker), report data, delete."""

import io
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from emotions import selectors
from emotions.models import EmotionModel, Job, Lecture, Segment
from emotions.ser.constants import BLOCK_SECONDS, MIN_TAIL_FRACTION
from emotions.services import jobs
from emotions.services.datasets import delete_files
from emotions.services.errors import Conflict, ServiceError
from emotions.services.files import check_upload, local_copy, safe_filename, store_in

logger = logging.getLogger(__name__)

NO_MODEL_MESSAGE = "No trained model is available yet: train one (Train page) or ask an admin."
# The shortest recording worth analysing: the audio core's own rule for a block's tail
# (half a second of speech is worth a prediction, a few milliseconds are not).
MIN_SECONDS = MIN_TAIL_FRACTION * BLOCK_SECONDS
# Below this a header's sample rate is a broken or hostile file, not a recording of speech
# (telephone audio is 8 kHz): a 96 KB WAV claiming 1 Hz would be a 13-hour job.
MIN_SAMPLE_RATE = 4000
NO_SPEECH_MESSAGE = (
    "No speech found: every second is silent (below {threshold:.0f} dBFS). Was the microphone on?"
)
NOISE_ONLY_MESSAGE = (
    "No speech found: the recording holds sound ({seconds:.0f} s) but the voice-activity "
    "detector heard no speech in it. Is this the right file?"
)


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
    check_recording(upload)
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
    # Storage writes under a fresh name and never overwrites, whole or not at all; the row
    # is created after, and the file removed again if that fails (no orphans either way).
    store_in(lecture.audio, name, upload)
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


def check_recording(upload: UploadedFile) -> None:
    """Refuse, before anything is stored, a recording whose header declares more than
    LECTURE_MAX_SECONDS or a sample rate under MIN_SAMPLE_RATE.

    Only the container header is read (milliseconds, whatever the size). A file the decoder
    cannot open at all passes: its analysis job fails with the decoder's reason, as before.
    """
    from emotions.ser import audio

    try:
        with _upload_path(upload) as path:
            info = audio.probe(path, decode_if_unknown=False)
    except audio.AudioDecodeError:
        return
    finally:
        upload.seek(0)
    name = upload.name or "the file"
    if 0 < info.sample_rate < MIN_SAMPLE_RATE:
        raise ServiceError(
            f"“{name}” says its sample rate is {info.sample_rate} Hz; recordings need at "
            f"least {MIN_SAMPLE_RATE} Hz. The file is probably damaged: export it again."
        )
    if info.duration_s > settings.LECTURE_MAX_SECONDS:
        raise ServiceError(f"“{name}” {_too_long(_hours(info.duration_s))}")


@contextmanager
def _upload_path(upload: UploadedFile) -> Iterator[str]:
    """A path holding the upload's bytes: its temporary file, or a copy of a small upload
    kept in memory (at most FILE_UPLOAD_MAX_MEMORY_SIZE)."""
    if hasattr(upload, "temporary_file_path"):
        yield upload.temporary_file_path()
        return
    with tempfile.NamedTemporaryFile(prefix="sersite-probe-") as copy:
        upload.seek(0)
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        yield copy.name


def _too_long(duration: str) -> str:
    limit = _hours(settings.LECTURE_MAX_SECONDS)
    return (
        f"lasts {duration}; the limit is {limit} per lecture. Split the recording into "
        "parts and upload each."
    )


def _hours(seconds: float) -> str:
    whole, rest = divmod(int(round(seconds)), 3600)
    return f"{whole} h {rest // 60:02d} min"


def analyse(job: Job, reporter: jobs.Reporter) -> dict:
    """The analysis job: classify every 1 s segment, saving and publishing batches."""
    from emotions.ser import audio
    from emotions.ser.report import summarize

    lecture = Lecture.objects.select_related("model").get(pk=job.params["lecture"])
    if lecture.model is None:
        raise ServiceError(NO_MODEL_MESSAGE)
    # A retried task starts over instead of duplicating rows.
    Segment.objects.filter(lecture=lecture).delete()
    results = []
    reporter.progress(0.0, "decoding", "Reading the recording…")
    with local_copy(lecture.audio) as path:
        try:
            info = audio.probe(path)
        except audio.AudioDecodeError as exc:
            raise ServiceError(f"This file cannot be read as audio: {exc.reason}") from exc
        if 0 < info.duration_s < MIN_SECONDS:  # the header knows: say so before any work
            raise ServiceError(_too_short(info.duration_s))
        total = max(info.duration_s, 1e-6)
        Lecture.objects.filter(pk=lecture.pk).update(duration_s=info.duration_s)
        # after the cheap checks: a model without an export is exported on this recording
        classifier = _classifier(lecture.model, path)
        try:
            for batch, seconds in _classify(path, classifier):
                if seconds > settings.LECTURE_MAX_SECONDS + BLOCK_SECONDS:
                    # The header under-stated it (or said nothing): stop at the limit.
                    limit = _hours(settings.LECTURE_MAX_SECONDS)
                    raise ServiceError(f"The recording {_too_long(f'more than {limit}')}")
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
    if results[-1].end_s < MIN_SECONDS:  # the header did not say (or said more)
        Segment.objects.filter(lecture=lecture).delete()
        raise ServiceError(_too_short(results[-1].end_s))
    summary = summarize(results, classifier.labels)
    # which runtime and precision produced this report ("onnxruntime int8", "torch fp32 cuda")
    summary["runtime"] = classifier.runtime
    Lecture.objects.filter(pk=lecture.pk).update(summary=summary, duration_s=summary["duration_s"])
    result = {"lecture": lecture.pk, "segments": len(results), "summary": summary}
    if not summary["speech_s"]:
        # Pure silence is a result, not an error: the report shows every second as silent,
        # and the job's message tells the teacher why there are no emotions.
        if summary.get("no_speech_s"):
            result["message"] = NOISE_ONLY_MESSAGE.format(seconds=summary["no_speech_s"])
        else:
            result["message"] = NO_SPEECH_MESSAGE.format(threshold=audio.SILENCE_THRESHOLD_DBFS)
    return result


def _too_short(seconds: float) -> str:
    return (
        f"The recording is too short to analyse: {seconds:.2f} s of audio, and the "
        f"analysis needs at least {MIN_SECONDS:g} s."
    )


def _classify(path, classifier):
    from emotions.ser.inference import classify_file

    return classify_file(path, classifier, vad=settings.ANALYSIS_VAD)


_classifiers: dict[tuple[int, str], object] = {}


def _classifier(model: EmotionModel, recording):
    """The model loaded once per worker process (weights are immutable per version)."""
    from emotions.services.inference import classifier_for

    key = (model.pk, model.weights.name)
    if key not in _classifiers:
        _classifiers.clear()  # one model in memory at a time
        _classifiers[key] = classifier_for(model, recording)
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
    with transaction.atomic():
        lecture.delete()
        if job is not None and job.is_terminal:
            job.delete()
        # A file the storage will not remove is logged, not raised: the rows are gone by
        # then, and a 500 would tell the teacher the lecture is still there.
        transaction.on_commit(lambda: delete_files([audio_name]))


def segments_csv(lecture: Lecture) -> str:
    from emotions.ser.report import write_segments_csv

    out = io.StringIO()
    labels = lecture.model.labels if lecture.model else []
    write_segments_csv(out, lecture.segments.order_by("index"), labels)
    return out.getvalue()


# ---------------------------------------------------------------- managing a lecture

TITLE_MAX = 200


def rename_lecture(
    lecture: Lecture,
    *,
    title: str,
    course: str | None = None,
    recorded_on: date | None = None,
    clear_date: bool = False,
) -> Lecture:
    """Change what the teacher calls the lecture (title, course, date)."""
    title = (title or "").strip()
    if not title:
        raise ServiceError("A lecture needs a title.")
    if len(title) > TITLE_MAX or len(course or "") > TITLE_MAX:
        raise ServiceError(f"Titles and course names have at most {TITLE_MAX} characters.")
    lecture.title = title
    if course is not None:
        lecture.course = course.strip()
    if recorded_on is not None or clear_date:
        lecture.recorded_on = recorded_on
    lecture.save(update_fields=["title", "course", "recorded_on"])
    return lecture


def reanalyse_lecture(
    lecture: Lecture, model: EmotionModel | None = None, *, dispatch: bool = True
) -> Lecture:
    """Analyse the stored recording again, with another model or after a failure; the old
    results are replaced when the new job starts writing (the job itself is idempotent)."""
    model = model or lecture.model or selectors.active_model_for(lecture.owner)
    if model is None:
        raise Conflict(NO_MODEL_MESSAGE)
    if not lecture.audio.name or not lecture.audio.storage.exists(lecture.audio.name):
        raise Conflict("The recording is no longer stored, so it cannot be analysed again.")
    with transaction.atomic():
        # The row lock makes two quick clicks start one job, not two. (of=("self",): PostgreSQL
        # refuses FOR UPDATE on the nullable side of the outer join to the job.)
        locked = (
            Lecture.objects.select_for_update(of=("self",)).select_related("job").get(pk=lecture.pk)
        )
        if locked.job is not None and not locked.job.is_terminal:
            raise Conflict(
                "The analysis is still running: wait for it to finish, or cancel it first."
            )
        Segment.objects.filter(lecture=locked).delete()
        locked.model = model
        locked.summary = {}
        locked.job = jobs.create_job(
            locked.owner, Job.Kind.ANALYSIS, {"lecture": locked.pk}, dispatch=dispatch
        )
        locked.save(update_fields=["model", "summary", "job"])
    return locked
