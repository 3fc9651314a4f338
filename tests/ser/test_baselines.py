"""The classical baselines: they learn, they are repeatable, they report like the CNN."""

from __future__ import annotations

import numpy as np
import pytest

from emotions.ser import baselines
from emotions.ser.metrics import evaluate

SR = 16_000
LABELS = ["low", "high"]


def _voiced_blocks(n: int, f0: float, seed: int) -> np.ndarray:
    """Harmonic, syllable-modulated 1 s blocks around ``f0`` Hz with breath noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(SR) / SR
    out = np.empty((n, SR), dtype=np.float32)
    for i in range(n):
        f = f0 * rng.uniform(0.9, 1.1)
        voice = sum(np.sin(2 * np.pi * k * f * t + rng.uniform(0, 6)) / k for k in range(1, 8))
        envelope = np.sin(np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 3)) ** 2
        x = voice * envelope + 0.05 * rng.standard_normal(SR)
        out[i] = 0.3 * x / np.max(np.abs(x))
    return out


@pytest.fixture(scope="module")
def two_classes() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    # "low" voices at 110 Hz, "high" ones at 260 Hz; train and test drawn with other seeds
    def make(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        blocks = np.concatenate([_voiced_blocks(n, 110, seed), _voiced_blocks(n, 260, seed + 1)])
        return blocks, np.repeat([0, 1], n)

    return {"train": make(40, 1), "clean": make(15, 100)}


def test_every_baseline_separates_two_clearly_different_classes(two_classes) -> None:
    x, y = two_classes["train"]
    results = baselines.fit_and_evaluate_baselines(
        x, y, {"clean": two_classes["clean"]}, LABELS, seed=0
    )
    assert list(results) == list(baselines.DEFAULT_BASELINES)
    for kind, result in results.items():
        assert result.metrics["clean"]["accuracy"] > 0.9, (kind, result.metrics["clean"])
        assert result.metrics["clean"]["n"] == 30
        assert result.fit_seconds >= 0 and result.train_blocks == 80
        assert result.note == ""
        assert result.probabilities["clean"].shape == (30, 2)


def test_metric_dict_is_the_cnn_evaluation_format(two_classes) -> None:
    x, y = two_classes["train"]
    test_x, test_y = two_classes["clean"]
    results = baselines.fit_and_evaluate_baselines(
        x, y, {"clean": (test_x, test_y)}, LABELS, kinds=["spectral_stats_logreg"]
    )
    result = results["spectral_stats_logreg"]
    metrics = result.metrics["clean"]
    predicted = result.probabilities["clean"].argmax(1)
    assert metrics == evaluate(test_y, predicted, LABELS)
    assert set(result.to_dict()) >= {"name", "features", "classifier", "metrics", "fit_seconds"}
    assert "probabilities" not in result.to_dict()


def test_results_are_deterministic_for_a_seed(two_classes) -> None:
    x, y = two_classes["train"]
    # noisier labels so that the trees have choices to make
    y = y.copy()
    y[::7] = 1 - y[::7]
    kinds = ["spectral_stats_hgb", "egemaps_hgb"]
    first = baselines.fit_and_evaluate_baselines(
        x, y, {"clean": two_classes["clean"]}, LABELS, seed=3, kinds=kinds
    )
    second = baselines.fit_and_evaluate_baselines(
        x, y, {"clean": two_classes["clean"]}, LABELS, seed=3, kinds=kinds
    )
    for kind in kinds:
        assert first[kind].metrics == second[kind].metrics
        np.testing.assert_array_equal(
            first[kind].probabilities["clean"], second[kind].probabilities["clean"]
        )


def test_egemaps_subsample_is_stratified_deterministic_and_reported(two_classes) -> None:
    x, y = two_classes["train"]
    results = baselines.fit_and_evaluate_baselines(
        x,
        y,
        {"clean": two_classes["clean"]},
        LABELS,
        kinds=["egemaps_logreg"],
        max_egemaps_train_blocks=20,
    )
    result = results["egemaps_logreg"]
    assert result.train_blocks == 20 and result.train_blocks_available == 80
    assert "subsample of 20 of 80" in result.note
    chosen = baselines.stratified_subsample(y, 20, seed=0)
    np.testing.assert_array_equal(chosen, baselines.stratified_subsample(y, 20, seed=0))
    assert np.bincount(y[chosen]).tolist() == [10, 10]


def test_egemaps_rows_follow_their_blocks() -> None:
    # blocks laid end to end give one row per block, in order, close to per-block extraction
    low, high = _voiced_blocks(3, 110, 5), _voiced_blocks(3, 260, 6)
    blocks = np.concatenate([low, high, np.zeros((1, SR), np.float32)])
    features = baselines.egemaps(blocks)
    assert features.shape == (7, baselines.EGEMAPS_FEATURES)
    assert np.isfinite(features).all()
    f0_mean = features[:, 0]  # F0semitoneFrom27.5Hz_sma3nz_amean
    assert f0_mean[:3].max() < f0_mean[3:6].min()
    assert f0_mean[6] == 0.0  # silence: no voiced frame, undefined -> 0
    assert len(baselines.egemaps(np.zeros((0, SR), np.float32))) == 0


def test_spectral_stats_are_mean_and_std_of_log_power_per_bin() -> None:
    import librosa

    block = _voiced_blocks(1, 150, 9)
    features = baselines.spectral_stats(block)
    assert features.shape == (1, 514)
    peak_normalised = block[0] / np.max(np.abs(block[0]))
    power = (
        np.abs(
            librosa.stft(
                peak_normalised, n_fft=512, hop_length=62, win_length=256, window="hamming"
            )
        )
        ** 2
    )
    db = 10 * np.log10(np.maximum(power, 1e-10))
    np.testing.assert_allclose(features[0, :257], db.mean(axis=1), atol=1e-3)
    np.testing.assert_allclose(features[0, 257:], db.std(axis=1, ddof=1), atol=1e-3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x, y: (x[:, :8000], y), "expected"),
        (lambda x, y: (x, y[:-1]), "labels of shape"),
        (lambda x, y: (x, y + 5), "class indices"),
        (lambda x, y: (x, np.zeros_like(y)), "at least two classes"),
    ],
)
def test_bad_input_raises_a_readable_error(two_classes, change, message) -> None:
    x, y = change(*two_classes["train"])
    with pytest.raises(ValueError, match=message):
        baselines.fit_and_evaluate_baselines(x, y, {}, LABELS, kinds=["spectral_stats_logreg"])


def test_unknown_kind_is_refused(two_classes) -> None:
    x, y = two_classes["train"]
    with pytest.raises(ValueError, match="unknown baseline"):
        baselines.fit_and_evaluate_baselines(x, y, {}, LABELS, kinds=["wav2vec"])
