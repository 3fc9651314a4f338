"""Training the network on a split's sets and evaluating it on every test set (worker only)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
from django.conf import settings

from emotions.models import TrainingRun
from emotions.services import jobs
from emotions.services.training.backbones import weights_available
from emotions.services.training.context import CLEAN_SET, Corpus, Evaluation, JobContext, Sets

Protocol = TrainingRun.Protocol

# Progress within one fold: trunk features up to 15 %, epochs up to 85 %, evaluation after.
FEATURES_SHARE, TRAINING_SHARE = 0.15, 0.7


def fit_network(
    ctx: JobContext, corpus: Corpus, sets: Sets, fold: int, folds: int, span: tuple[float, float]
):
    """A network built for the run's settings, trained on ``sets``; JobCancelled on cancel."""
    from emotions.ser import networks
    from emotions.ser.device import choose_device
    from emotions.ser.training import TrainConfig, train

    config = ctx.config
    device = choose_device()
    trainable = config["trainable"]
    if trainable == "default" and not (
        config["pretrained"] and weights_available(config["backbone"])
    ):
        # Frozen random layers learn nothing: without ImageNet weights every layer trains.
        trainable = "all"
    net = networks.build_network(
        config["backbone"],
        len(corpus.labels),
        weights_dir=settings.WEIGHTS_DIR,
        pretrained=config["pretrained"],
        trainable=trainable,
        seed=ctx.run.seed,
    )
    size = config["image_size"]
    # The run's settings that the loop takes; the others (size, split, backbone) act here.
    loop_settings = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed", "device"}
    train_config = TrainConfig(
        **{k: v for k, v in config.items() if k in loop_settings},
        seed=ctx.run.seed,
        device=str(device),
    )
    train_idx, val_idx = _validation_split(ctx, corpus, sets)
    if val_idx is None:
        # No epoch is chosen on it: the clean test set's curve is shown, nothing tuned.
        clean_x, clean_y = sets.tests[CLEAN_SET]
        val = (_images(clean_x, device, size), clean_y)
    else:
        val = (_images(sets.train, device, size, val_idx), sets.train_y[val_idx])
    started = time.perf_counter()
    result = train(
        net,
        _images(sets.train, device, size, train_idx),
        sets.train_y if train_idx is None else sets.train_y[train_idx],
        train_config,
        on_progress=_on_progress(ctx, fold, folds, span),
        should_cancel=lambda: _should_cancel(ctx),
        val=val,
    )
    ctx.add_time("training_s", time.perf_counter() - started)
    if result.cancelled:
        raise jobs.JobCancelled()
    return net


def _validation_split(
    ctx: JobContext, corpus: Corpus, sets: Sets
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(training, validation) block indices when the run chooses its epoch or stops early;
    (None, None) otherwise. The validation blocks are whole speakers of the training side
    (whole utterances when the protocol shares speakers), noisy copies with their clean
    block: never test blocks, so the test figures are not tuned on."""
    config = ctx.config
    if not (config.get("select_epoch") or config.get("patience")):
        return None, None
    from emotions.ser.training import validation_split

    assert sets.train_origins is not None
    positions = sets.train_origins.utterance
    by_speaker = ctx.run.protocol in (Protocol.SPEAKER, Protocol.LEAVE_ONE_GROUP)
    keys = [u.speaker if by_speaker else str(u.pk) for u in corpus.utterances]
    groups = np.asarray(keys)[positions]
    train_idx, val_idx = validation_split(groups, config["validation_fraction"], ctx.run.seed)
    if len(val_idx) == 0:
        return None, None
    if not ctx.validation:  # the first fold's, as the model saved is the first fold's
        ctx.validation = {
            "unit": "speaker" if by_speaker else "utterance",
            "groups": sorted(set(groups[val_idx].tolist())),
            "n_blocks": int(len(val_idx)),
        }
    return train_idx, val_idx


def evaluate(
    ctx: JobContext, net, sets: Sets, labels: list[str], span: tuple[float, float]
) -> Evaluation:
    """The method's metrics of ``net`` on every test set, and each block's probabilities."""
    from emotions.ser import metrics, spectrogram
    from emotions.ser.device import choose_device
    from emotions.ser.training import aggregate_probabilities, predict_proba

    device = choose_device()
    size, batch = ctx.config["image_size"], ctx.config["batch_size"]
    low, high = span
    out, probabilities = {}, {}
    started = time.perf_counter()
    for i, (name, (blocks, y)) in enumerate(sets.tests.items()):
        ctx.reporter.progress(
            low + (high - low) * (0.85 + 0.15 * i / len(sets.tests)),
            "evaluating",
            f"Evaluating on the {name} test set",
        )
        batches = spectrogram.iter_model_input(blocks, device=device, batch=batch, size=size)
        proba = np.asarray(predict_proba(net, batches, batch_size=batch, device=device))
        if ctx.config.get("pool_utterances"):
            # Every block gets its utterance's pooled prediction; blocks still count singly.
            proba = aggregate_probabilities(proba, sets.test_origins[name].utterance)
        result = metrics.evaluate(y, proba.argmax(1), labels)
        result["f1_weighted"] = result["f1"]  # the name lecture pages show
        out[name], probabilities[name] = result, proba.astype(np.float32)
    ctx.add_time("evaluation_s", time.perf_counter() - started)
    return Evaluation(out, probabilities)


def epoch_entry(event: dict, fold: int) -> dict:
    """The history entry of a finished epoch, floats rounded for the record."""
    keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
    entry = {k: event[k] for k in keys if k in event}
    return {
        "fold": fold,
        **{k: round(v, 6) if isinstance(v, float) else v for k, v in entry.items()},
    }


def _on_progress(
    ctx: JobContext, fold: int, folds: int, span: tuple[float, float]
) -> Callable[[dict], None]:
    low, high = span
    run_pk = ctx.run.pk
    prefix = f"Fold {fold} of {folds}: " if folds > 1 else ""

    def on_progress(event: dict) -> None:
        batches = max(event["batches"], 1)
        data = {
            "run": run_pk,
            "fold": fold,
            "epoch": event["epoch"],
            "epochs": event["epochs"],
            "batch": event["batch"],
            "batches": batches,
            "loss": event["loss"],
            "accuracy": event["accuracy"],
            "eta_s": round(event["eta_s"], 1),
        }
        if event["stage"] == "features":
            within = FEATURES_SHARE * event["batch"] / batches
            stage, message = "features", f"{prefix}computing frozen-layer features"
        else:
            epochs = max(event["epochs"], 1)
            done = ((event["epoch"] - 1) + event["batch"] / batches) / epochs
            within = FEATURES_SHARE + TRAINING_SHARE * done
            stage = "training"
            message = f"{prefix}epoch {event['epoch']} of {event['epochs']}"
            if event["loss"] is not None:
                message += f", loss {event['loss']:.3f}, accuracy {event['accuracy']:.1%}"
        if event.get("epoch_done"):
            entry = epoch_entry(event, fold)
            ctx.history.append(entry)
            TrainingRun.objects.filter(pk=run_pk).update(history=ctx.history)
            ctx.reporter.publish("epoch", {"run": run_pk, **entry})
        ctx.reporter.progress(low + (high - low) * within, stage, message, **data)

    return on_progress


def _should_cancel(ctx: JobContext) -> bool:
    # A query per batch would cost more than a small batch itself; twice a second is enough.
    now = time.monotonic()
    if now - ctx.last_cancel_check < 0.5:
        return False
    ctx.last_cancel_check = now
    return ctx.reporter.cancelled()


def _images(blocks: np.ndarray, device, size: int, subset: np.ndarray | None = None):
    """Model input made on demand from float16 blocks, or from ``subset`` of them (a
    callable image source; no copy of the blocks)."""
    import torch

    from emotions.ser import spectrogram

    def batch(idx: torch.Tensor) -> torch.Tensor:
        rows = idx.numpy() if subset is None else subset[idx.numpy()]
        x = torch.from_numpy(blocks[rows].astype(np.float32))
        return spectrogram.blocks_to_model_input(x, device=device, size=size)

    return batch
