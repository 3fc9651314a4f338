"""Lectures made directly in the database, with a known emotion per second: a 20-minute
or 3-hour report needs no 20 minutes of audio to analyse."""

import io

import numpy as np
import soundfile as sf
from django.core.files.base import ContentFile

from emotions.models import Job, Lecture, Segment
from tests.conftest import LABELS


def wav_bytes(seconds: float, sr: int = 8000) -> bytes:
    """A quiet 8-bit WAV of `seconds` (20 min is 9.6 MB): enough for a player to seek."""
    rng = np.random.default_rng(3)
    signal = (0.01 * rng.standard_normal(int(seconds * sr))).astype("float32")
    out = io.BytesIO()
    sf.write(out, signal, sr, format="WAV", subtype="PCM_U8")
    return out.getvalue()


def segment_rows(
    seconds: int,
    *,
    angry: tuple[int, int] | None = None,
    silent_every: int = 0,
    no_speech: tuple[int, int] | None = None,
    seed: int = 0,
) -> list[dict]:
    """One row per second. Outside `angry` the model's answers wander among the other
    emotions at low confidence; inside it says anger at 0.8."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(seconds):
        row = {"index": i, "start_s": float(i), "end_s": float(i + 1)}
        if silent_every and i % silent_every == silent_every - 1:
            rows.append({**row, "is_silence": True, "label": "", "confidence": None})
            continue
        if no_speech and no_speech[0] <= i < no_speech[1]:
            rows.append({**row, "is_silence": True, "label": "no speech", "confidence": None})
            continue
        if angry and angry[0] <= i < angry[1]:
            probs = np.array([0.8, 0.07, 0.07, 0.06])
        else:
            probs = np.concatenate([[0.05], rng.dirichlet([2, 2, 2]) * 0.95])
        label = LABELS[int(probs.argmax())]
        rows.append(
            {
                **row,
                "is_silence": False,
                "label": label,
                "confidence": float(probs.max()),
                "probabilities": dict(zip(LABELS, np.round(probs, 4).tolist(), strict=True)),
            }
        )
    return rows


def make_lecture(
    owner,
    model,
    seconds: int,
    *,
    title: str = "Waves and optics",
    audio_seconds: float | None = None,
    state: str = Job.State.SUCCEEDED,
    **rows,
) -> Lecture:
    """A finished lecture (job succeeded, summary stored) with `seconds` segments."""
    from emotions.ser.report import summarize

    lecture = Lecture(owner=owner, title=title, course="Physics 101", model=model)
    lecture.audio.save("talk.wav", ContentFile(wav_bytes(audio_seconds or seconds)), save=False)
    lecture.original_name = "talk.wav"
    lecture.duration_s = float(seconds)
    lecture.job = Job.objects.create(
        owner=owner, kind=Job.Kind.ANALYSIS, state=state, progress=1.0, params={}
    )
    lecture.save()
    lecture.job.params = {"lecture": lecture.pk}
    lecture.job.save(update_fields=["params"])
    segments = [Segment(lecture=lecture, **r) for r in segment_rows(seconds, **rows)]
    Segment.objects.bulk_create(segments, batch_size=2000)
    lecture.summary = summarize(segments, LABELS)
    lecture.save(update_fields=["summary"])
    return lecture
