"""Synthetic emotional speech: espeak-ng with per-emotion prosody, and a sample lecture."""

import csv

import numpy as np
import pytest

from emotions.ser import audio, synthetic
from emotions.ser.constants import SAMPLE_RATE


def test_ssml_escapes_text_and_sets_prosody():
    markup = synthetic.ssml("a < b & c", "sad")
    assert "a &lt; b &amp; c" in markup and 'rate="75%"' in markup


def test_missing_espeak_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(synthetic.shutil, "which", lambda name: None)
    with pytest.raises(synthetic.SpeechSynthesisError, match="apt-get install espeak-ng"):
        synthetic.synthesize("hello", "neutral", "en-us", tmp_path / "x.wav")


def test_corpus_prosody_differs_by_emotion(tmp_path):
    sentence = "The train was late again this morning."
    voices = ("en-us+m3", "en-gb+f4")
    items = synthetic.build_corpus(
        tmp_path, emotions=("anger", "sad"), voices=voices, sentences=(sentence,)
    )
    assert len(items) == 4
    rows = list(csv.DictReader(open(tmp_path / "manifest.csv")))
    assert {(r["label"], r["speaker"]) for r in rows} == {
        ("anger", "en-us_m3"), ("anger", "en-gb_f4"), ("sad", "en-us_m3"), ("sad", "en-gb_f4"),
    }  # fmt: skip
    length = {(i.label, i.speaker): audio.probe(i.path).duration_s for i in items}
    level = {(i.label, i.speaker): np.abs(audio.decode(i.path)).mean() for i in items}
    for speaker in ("en-us_m3", "en-gb_f4"):
        # Sad speech is slower (longer) and softer than angry speech of the same sentence.
        assert length[("sad", speaker)] > 1.3 * length[("anger", speaker)]
        assert level[("sad", speaker)] < level[("anger", speaker)]


def test_sample_lecture_has_pauses_and_noise(tmp_path):
    items = synthetic.build_corpus(
        tmp_path, emotions=("happy",), voices=("en-us+f2",), sentences=synthetic.SENTENCES[:2]
    )
    noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE * 3).astype(np.float32)
    clean = synthetic.sample_lecture(items, None, pause_s=1.0)
    noisy = synthetic.sample_lecture(items, noise, snr_db=10, pause_s=1.0)
    assert len(clean) == len(noisy)
    assert np.max(np.abs(noisy)) == pytest.approx(0.9, abs=1e-6)
    blocks = audio.split_blocks(clean)
    assert audio.silence_mask(blocks).any()  # the pauses are silent
    assert not np.allclose(clean, noisy)
