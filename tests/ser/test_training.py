"""The training loop, prediction and k-fold splits (emotions.ser.training)."""

import copy

import numpy as np
import pytest
import torch

from emotions.ser.constants import TRAIN_DEFAULTS
from emotions.ser.networks import build_network
from emotions.ser.training import (
    TrainConfig,
    class_weights,
    kfold_indices,
    predict_proba,
    train,
)


def method(**settings) -> TrainConfig:
    """The method's loop (SGD, step decay, no augmentation) with ``settings`` on top."""
    from emotions.ser.training import METHOD_PRESET

    return TrainConfig(**(METHOD_PRESET | settings))


def colour_coded(n: int, classes: int = 3, size: int = 64, seed: int = 0):
    """Images whose brightest colour channel is the class: separable by colour alone."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, 3, size, size, generator=generator) * 0.3 - 1.0
    x[torch.arange(n), y] += 2.0
    return x, y


def test_defaults_are_the_measured_recipe():
    config = TrainConfig()
    assert (config.optimizer, config.schedule, config.warmup_epochs) == ("adamw", "cosine", 1.0)
    assert (config.epochs, config.batch_size, config.lr) == (4, 64, 1e-3)
    assert (config.weight_decay, config.mixup_alpha) == (0.05, 0.2)
    assert config.lr_step_epochs == TRAIN_DEFAULTS["lr_step_epochs"]
    assert config.cache_trunk_features and config.class_weighting == "loss"
    # the epoch is not chosen on a validation split by default: the cosine run's last one
    assert not config.select_epoch and config.patience == 0
    assert TRAIN_DEFAULTS["image_size"] == 128 and TRAIN_DEFAULTS["pool_utterances"]


def test_learns_a_separable_problem_and_reports_progress():
    x, y = colour_coded(48)
    val_x, val_y = colour_coded(12, seed=1)
    net = build_network("mobilenet_v2", 3, seed=0)
    events = []
    config = method(epochs=6, batch_size=16, lr=0.01, lr_step_epochs=10, seed=0)

    result = train(net, x, y, config, on_progress=events.append, val=(val_x, val_y))

    history = result.history
    assert not result.cancelled and result.batches_done == 6 * 3
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert history[-1]["accuracy"] >= 0.95
    assert history[-1]["loss"] < history[0]["loss"] / 5
    assert history[-1]["val_accuracy"] >= 0.9
    assert all(h["lr"] == 0.01 and h["seconds"] > 0 for h in history)
    assert (predict_proba(net, x).argmax(1) == y.numpy()).mean() >= 0.9

    stages = [e["stage"] for e in events]
    # The trunk runs once over train and validation images (3 + 1 batches), then training.
    assert stages[:4] == ["features"] * 4 and set(stages[4:]) == {"train"}
    batch_events = [e for e in events if e["stage"] == "train" and not e.get("epoch_done")]
    assert len(batch_events) == 18
    assert set(batch_events[0]) == {
        "stage",
        "epoch",
        "epochs",
        "batch",
        "batches",
        "loss",
        "accuracy",
        "eta_s",
    }
    assert batch_events[-1]["batch"] == batch_events[-1]["batches"] == 3
    assert batch_events[-1]["eta_s"] == 0
    epoch_events = [e for e in events if e.get("epoch_done")]
    assert [e["val_accuracy"] for e in epoch_events] == [h["val_accuracy"] for h in history]


def test_learning_rate_decays_in_steps():
    x, y = colour_coded(8, size=32)
    net = build_network("mobilenet_v3_small", 3, pretrained=False, trainable="classifier")
    config = method(epochs=5, batch_size=8, lr=0.1, lr_gamma=0.5, lr_step_epochs=2)

    history = train(net, x, y, config).history

    assert [h["lr"] for h in history] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_cached_trunk_features_give_the_same_head_as_live_trunk():
    x, y = colour_coded(24, size=64)
    # MobileNetV2's head has BatchNorm (train mode) and dropout: both must see the same
    # batches and random draws with and without the cache.
    base = build_network("mobilenet_v2", 3, seed=0)
    cached, live = copy.deepcopy(base), copy.deepcopy(base)
    # On the CPU: CUDA autocast and kernel choice per batch size would add rounding noise.
    # the method's loop: no augmentation, which would see images live but features cached
    config = method(epochs=1, batch_size=8, lr=0.05, seed=3, device="cpu")

    cached_run = train(cached, x, y, config)
    live_run = train(live, x, y, TrainConfig(**{**config.to_dict(), "cache_trunk_features": False}))

    changed = False
    for (name, a), (_, b), (_, before) in zip(
        cached.head.state_dict().items(),
        live.head.state_dict().items(),
        base.head.state_dict().items(),
        strict=True,
    ):
        # Tolerance: float32 rounding of the trunk computed in other batch groupings (the
        # CPU gives identical results here; a mismatch in train/eval modes gives ~0.5).
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
        changed |= not torch.equal(a, before)
    assert changed
    assert cached_run.history[0]["loss"] == pytest.approx(live_run.history[0]["loss"], rel=1e-4)


def test_cancel_stops_within_a_batch_and_says_so():
    x, y = colour_coded(24, size=32)
    net = build_network("mobilenet_v3_small", 3, pretrained=False)
    events = []
    config = TrainConfig(epochs=3, batch_size=8)  # 3 batches per epoch, 9 in all

    def cancel_after_four_training_batches() -> bool:
        return sum(e["stage"] == "train" and "epoch_done" not in e for e in events) >= 4

    result = train(
        net,
        x,
        y,
        config,
        on_progress=events.append,
        should_cancel=cancel_after_four_training_batches,
    )

    assert result.cancelled
    assert result.batches_done == 4
    assert [h["epoch"] for h in result.history] == [1]  # only the completed epoch
    assert not net.training  # left ready for prediction


def test_cancel_during_feature_caching():
    x, y = colour_coded(24, size=32)
    net = build_network("mobilenet_v3_small", 3, pretrained=False)
    calls = []

    def cancel_on_second_poll() -> bool:
        calls.append(1)
        return len(calls) >= 2

    result = train(net, x, y, TrainConfig(batch_size=8), should_cancel=cancel_on_second_poll)

    assert result.cancelled and result.batches_done == 0 and result.history == []
    assert len(calls) == 2


def test_class_weights_are_inversely_proportional_to_class_size():
    labels = torch.tensor([0] * 90 + [1] * 10)

    weights = class_weights(labels, 3)  # class 2 is absent

    assert weights[1] / weights[0] == pytest.approx(9.0)
    assert weights.tolist() == pytest.approx([100 / (2 * 90), 100 / (2 * 10), 0.0])
    # Per sample the weights average to one, so the loss keeps its scale.
    assert weights[labels].mean().item() == pytest.approx(1.0)


def test_sampler_weighting_draws_classes_evenly():
    x = colour_coded(40, classes=2, size=16)[0]
    y = torch.tensor([0] * 36 + [1] * 4)
    drawn: list[int] = []

    def batch_of(indices: torch.Tensor) -> torch.Tensor:
        drawn.extend(indices.tolist())
        return x[indices]

    net = build_network("mobilenet_v3_small", 2, pretrained=False, trainable="classifier")
    config = TrainConfig(
        epochs=2, batch_size=40, class_weighting="sampler", cache_trunk_features=False
    )
    train(net, batch_of, y, config)

    minority_share = (y[drawn] == 1).float().mean().item()
    assert len(drawn) == 80
    assert 0.3 < minority_share < 0.7  # 0.1 without the sampler


def test_predict_proba_accepts_tensors_batches_and_single_images():
    x = colour_coded(7, size=32)[0]
    net = build_network("mobilenet_v3_small", 4, pretrained=False, seed=0)

    whole = predict_proba(net, x, batch_size=3)
    from_batches = predict_proba(net, [x[:4], (x[4:], None)])
    from_images = predict_proba(net, list(x), batch_size=2)

    assert whole.shape == (7, 4) and whole.dtype == np.float32
    np.testing.assert_allclose(whole.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(from_batches, whole, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(from_images, whole, rtol=1e-5, atol=1e-6)
    assert predict_proba(net, []).shape == (0, 4)


def test_kfold_indices_are_stratified_and_keep_groups_together():
    labels = np.array([0] * 20 + [1] * 10)
    folds = kfold_indices(labels, k=5, seed=1)

    assert len(folds) == 5
    assert sorted(np.concatenate([test for _, test in folds]).tolist()) == list(range(30))
    for train_idx, test_idx in folds:
        assert set(train_idx).isdisjoint(test_idx)
        assert np.bincount(labels[test_idx]).tolist() == [4, 2]
    assert [t.tolist() for _, t in kfold_indices(labels, k=5, seed=1)] == [
        t.tolist() for _, t in folds
    ]

    groups = np.arange(30) // 3  # e.g. three 1 s blocks per utterance
    for train_idx, test_idx in kfold_indices(labels, k=3, seed=0, groups=groups):
        assert set(groups[train_idx]).isdisjoint(groups[test_idx])


def test_rejects_labels_outside_the_network():
    net = build_network("mobilenet_v3_small", 2, pretrained=False)
    with pytest.raises(ValueError, match="labels must lie in"):
        train(net, torch.zeros(2, 3, 32, 32), torch.tensor([0, 2]), TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="images but"):
        train(net, torch.zeros(3, 3, 32, 32), torch.tensor([0, 1]), TrainConfig(epochs=1))


# ---------------------------------------------------------------------------
# The recipe's parts: optimiser and schedule, augmentation, epoch selection, pooling


def _head_lrs(config: TrainConfig, n: int = 8) -> list[float]:
    x, y = colour_coded(n, size=32)
    net = build_network("mobilenet_v3_small", 3, pretrained=False, trainable="classifier")
    return [h["lr"] for h in train(net, x, y, config).history]


def test_adamw_with_warmup_then_cosine_schedule():
    # 2 batches per epoch; one epoch of warm-up, then cosine down over the other 3
    config = TrainConfig(
        epochs=4, batch_size=4, lr=0.1, optimizer="adamw", schedule="cosine", warmup_epochs=1
    )
    lrs = _head_lrs(config)
    assert lrs[0] == pytest.approx(0.05)  # first batch of the warm-up: 1/2 of lr
    assert lrs[1] == pytest.approx(0.1)  # warm-up done: the cosine starts at lr
    assert lrs[2] == pytest.approx(0.1 * 0.5 * (1 + np.cos(np.pi * 2 / 6)))
    assert lrs[3] == pytest.approx(0.1 * 0.5 * (1 + np.cos(np.pi * 4 / 6)))


def test_method_preset_keeps_sgd_step_decay():
    from emotions.ser.training import METHOD_PRESET

    config = TrainConfig(**METHOD_PRESET)
    assert (config.optimizer, config.schedule, config.lr, config.epochs) == ("sgd", "step", 4e-4, 6)
    assert (config.momentum, config.weight_decay, config.lr_gamma) == (0.9, 4e-4, 0.2)
    assert config.batch_size == 128 and config.lr_step_epochs == 2
    assert not config.select_epoch and config.mixup_alpha == 0 and config.spec_augment_masks == 0


def test_select_epoch_keeps_the_weights_of_the_lowest_validation_loss():
    x, y = colour_coded(24, size=32)
    val_x, val_y = colour_coded(12, size=32, seed=3)
    # A learning rate far too large: validation loss jumps around between epochs.
    config = method(epochs=5, batch_size=8, lr=2.0, select_epoch=True, seed=1)
    net = build_network("mobilenet_v3_small", 3, pretrained=False, trainable="classifier", seed=0)
    result = train(net, x, y, config, val=(val_x, val_y))
    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(losses)) + 1
    proba = torch.from_numpy(predict_proba(net, val_x))
    kept_loss = torch.nn.functional.nll_loss(proba.clamp_min(1e-12).log(), val_y).item()
    assert kept_loss == pytest.approx(min(losses), rel=1e-4)
    assert len(result.history) == 5 and not result.stopped_early


def test_patience_stops_when_validation_stops_improving():
    x, y = colour_coded(16, size=32)
    # lr 0: nothing changes, so epoch 1 stays the best and epoch 3 is the second without gain
    config = TrainConfig(epochs=10, batch_size=8, lr=0.0, select_epoch=True, patience=2)
    net = build_network("mobilenet_v3_small", 3, pretrained=False, trainable="classifier", seed=0)
    result = train(net, x, y, config, val=colour_coded(6, size=32, seed=2))
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.stopped_early and result.best_epoch == 1
    assert "val_uar" in result.history[0]


def test_augmented_training_is_repeatable_and_still_learns():
    x, y = colour_coded(48)
    config = TrainConfig(
        epochs=6, batch_size=16, lr=3e-3, optimizer="adamw", schedule="cosine",
        spec_augment_masks=2, spec_augment_width=0.2, mixup_alpha=0.4, label_smoothing=0.1,
    )  # fmt: skip
    runs = []
    for _ in range(2):
        net = build_network("mobilenet_v2", 3, seed=0)
        runs.append((train(net, x, y, config).history, predict_proba(net, x)))
    assert [h["loss"] for h in runs[0][0]] == [h["loss"] for h in runs[1][0]]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert (runs[0][1].argmax(1) == y.numpy()).mean() >= 0.9


@pytest.mark.parametrize(
    "bad",
    [
        {"optimizer": "adam"},
        {"schedule": "linear"},
        {"warmup_epochs": -1},
        {"label_smoothing": 1.0},
        {"mixup_alpha": -0.1},
        {"spec_augment_width": 1.5},
    ],
)
def test_rejects_bad_recipe_settings(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_aggregate_probabilities_pools_log_probabilities_per_utterance():
    from emotions.ser.training import aggregate_probabilities

    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]], dtype=np.float32)
    pooled = aggregate_probabilities(proba, ["a", "a", "b", "b"])
    geo = np.sqrt(proba[0] * proba[1])
    np.testing.assert_allclose(pooled[0], geo / geo.sum(), rtol=1e-5)
    np.testing.assert_array_equal(pooled[0], pooled[1])
    assert pooled[2].argmax() == pooled[3].argmax() == 1
    np.testing.assert_allclose(pooled.sum(1), 1.0, rtol=1e-6)


def test_validation_split_keeps_groups_whole_and_is_seeded():
    from emotions.ser.training import validation_split

    groups = np.repeat(["s1", "s2", "s3", "s4", "s5"], 4)
    train_idx, val_idx = validation_split(groups, 0.4, seed=0)
    assert len(set(groups[val_idx])) == 2 and not set(groups[val_idx]) & set(groups[train_idx])
    assert sorted([*train_idx, *val_idx]) == list(range(20))
    again = validation_split(groups, 0.4, seed=0)
    assert np.array_equal(again[1], val_idx)
    # one group only: nothing to validate on, everything trains
    train_idx, val_idx = validation_split(["a"] * 5, 0.2)
    assert len(train_idx) == 5 and len(val_idx) == 0
