"""The analysis job with voice activity on: noise without speech is "no speech" in the
stored segments, the summary and the CSV; the report records the runtime that produced it."""

import csv
import io
import shutil

import numpy as np
import pytest
import soundfile as sf
from django.core.files.uploadedfile import SimpleUploadedFile

from emotions.models import Job
from emotions.ser import audio, synthetic
from emotions.ser.noisepack import synthetic_noise
from emotions.ser.report import NO_SPEECH
from emotions.services import jobs, lectures

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng"),
]


def _speech_then_noise(tmp_path) -> bytes:
    """About 4 s of synthetic speech, then 5 s with only noise, noise under both at 15 dB."""
    speech = [
        audio.decode(synthetic.synthesize(text, "neutral", "en-us+m3", tmp_path / f"{i}.wav"))
        for i, text in enumerate(synthetic.SENTENCES[:2])
    ]
    clean = np.concatenate([*speech, np.zeros(5 * 16_000, np.float32)])
    noise = synthetic_noise("pink", len(clean) / 16_000 + 1, seed=3)[: len(clean)]
    active = clean[np.abs(clean) > 1e-4]
    noise *= np.sqrt(np.mean(active**2)) / 10 ** (15 / 20) / np.sqrt(np.mean(noise**2))
    out = io.BytesIO()
    sf.write(out, (clean + noise).astype(np.float32), 16_000, format="WAV", subtype="PCM_16")
    return out.getvalue()


def test_noise_without_speech_is_reported_as_no_speech(
    settings, monkeypatch, tmp_path, make_user, emotion_model, client
):
    settings.ANALYSIS_VAD = True
    monkeypatch.setenv("SERSITE_DEVICE", "cpu")  # the CPU default path, GPU or not
    teacher = make_user("teacher")
    upload = SimpleUploadedFile("talk.wav", _speech_then_noise(tmp_path), "audio/wav")
    lecture = lectures.create_lecture(teacher, upload, model=emotion_model, dispatch=False)
    done = jobs.run(lecture.job_id, lectures.analyse, worker="test", device="cpu")
    assert done.state == Job.State.SUCCEEDED, done.error
    lecture.refresh_from_db()

    segments = list(lecture.segments.order_by("index"))
    tail = segments[-4:]  # the last seconds hold only noise
    assert all(s.label == NO_SPEECH and s.is_silence and s.confidence is None for s in tail)
    assert segments[0].label in emotion_model.labels  # speech got an emotion
    summary = lecture.summary
    assert summary["no_speech_s"] >= 4 and summary["speech_s"] >= 2
    # what produced the report is on record: ONNX Runtime on the CPU
    assert summary["runtime"].startswith("onnxruntime ")

    rows = list(csv.DictReader(io.StringIO(lectures.segments_csv(lecture))))
    assert [r["label"] for r in rows[-4:]] == [NO_SPEECH] * 4
    assert all(r[f"p_{label}"] == "" for r in rows[-4:] for label in emotion_model.labels)

    client.force_login(teacher)
    page = client.get(f"/lectures/{lecture.pk}/")
    assert page.status_code == 200
    assert f"This report was computed with {summary['runtime']}." in page.content.decode()
