"""Voice activity: Silero VAD through ONNX Runtime marks noise without speech, keeps speech,
and gives the same answer however a recording is cut into batches."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from emotions.ser import audio, inference
from emotions.ser.noisepack import synthetic_noise
from emotions.ser.vad import (
    TRUTH_NOISE,
    TRUTH_SPEECH,
    TRUTH_UNSURE,
    SpeechDetector,
    block_truth,
    error_rates,
    model_path,
)

BENCH = Path(__file__).resolve().parents[2] / "bench" / "vad.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_vad", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_model_comes_from_the_wheel():
    assert model_path().name == "silero_vad.onnx" and model_path().stat().st_size > 100_000


def test_truth_and_rates_count_blocks():
    clean = np.zeros(4 * 16_000, np.float32)
    clean[16_000 : 16_000 + 8_000] = 0.1  # 0.5 s of "speech" in block 1
    clean[2 * 16_000 : 2 * 16_000 + 800] = 0.1  # 50 ms in block 2: unsure
    assert block_truth(clean).tolist() == [TRUTH_NOISE, TRUTH_SPEECH, TRUTH_UNSURE, TRUTH_NOISE]
    rates = error_rates(np.array([True, False, True, False]), block_truth(clean))
    assert rates == {
        "noise_labelled": 0.5,
        "speech_lost": 1.0,
        "noise_blocks": 2,
        "speech_blocks": 1,
    }


def test_noise_and_silence_are_not_speech():
    detector = SpeechDetector()
    blocks = np.stack(
        [
            np.zeros(16_000, np.float32),
            synthetic_noise("pink", 1.0, seed=1) * 0.3,
            synthetic_noise("white", 1.0, seed=2) * 0.1,
        ]
    )
    assert detector.speech_mask(blocks).tolist() == [False, False, False]


def test_batches_do_not_change_the_answer():
    """The detector carries the audio before each batch, so cutting a recording into
    batches of 3 or of 8 gives the same probabilities."""
    rng = np.random.default_rng(0)
    signal = (rng.standard_normal(8 * 16_000) * np.repeat(rng.uniform(0, 0.3, 8), 16_000)).astype(
        np.float32
    )
    blocks = signal.reshape(8, 16_000)
    whole = SpeechDetector().speech_probabilities(blocks)
    detector = SpeechDetector()
    parts = [detector.speech_probabilities(blocks[i : i + 3]) for i in range(0, 8, 3)]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)
    # skipping a batch (a silent one) keeps its audio as the next batch's history
    detector = SpeechDetector()
    detector.skip(blocks[:5])
    np.testing.assert_allclose(detector.speech_probabilities(blocks[5:]), whole[5:], atol=1e-5)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_speech_alternating_with_noise_at_15_db_meets_the_targets(tmp_path):
    """The issue's measurement on a short recording: synthetic speech stretches alternating
    with noise-only stretches, noise under everything at 15 dB; the product's own decision
    (level threshold, then VAD) per second. Targets: < 5 % of noise-only seconds get an
    emotion, < 5 % of speech seconds are lost (bench/vad.py runs it on the real noise pack)."""
    bench = _bench()
    clean = bench.alternating(bench.speech_stretches(tmp_path, 3, 6, seed=4), 6)
    truth = block_truth(clean)
    noise_blocks = labelled = speech_blocks = lost = 0
    for seed, kind in enumerate(("pink", "brown")):
        mixed = bench.mix(clean, synthetic_noise(kind, 30.0, seed=seed), 15.0, seed)
        blocks = audio.split_blocks(mixed, min_tail_fraction=1.0)
        kinds = inference.block_kinds(blocks, detector=SpeechDetector())
        rates = error_rates(kinds == inference.SPEECH, truth)
        noise_blocks += rates["noise_blocks"]
        labelled += round(rates["noise_labelled"] * rates["noise_blocks"])
        speech_blocks += rates["speech_blocks"]
        lost += round(rates["speech_lost"] * rates["speech_blocks"])
    assert noise_blocks >= 30 and speech_blocks >= 30
    assert labelled / noise_blocks < 0.05
    assert lost / speech_blocks < 0.05
