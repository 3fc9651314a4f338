"""What a finished job stores: the model (weights in storage) and the run's split, curves and
metrics, written in one transaction; and the job's result."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from django.core.files import File
from django.db import transaction
from django.db.models import Max

from emotions.models import EmotionModel, NoiseProfile, TrainingRun
from emotions.ser.constants import DEFAULT_BACKBONE
from emotions.services.training.context import CLEAN_SET, Corpus, FoldResult, JobContext, Sets
from emotions.services.training.data import blocks_of, split_parts
from emotions.services.training.runs import LEAK_WARNING, fingerprint_of

Protocol = TrainingRun.Protocol
RESULT_KEYS = ("accuracy", "precision", "recall", "f1", "uar")  # the method's table's columns


def save_results(ctx: JobContext, corpus: Corpus, folds: list[FoldResult]) -> dict:
    """The model (the first fold's network) and the run's record, in one transaction."""
    from emotions.ser import networks

    run = ctx.run
    first = folds[0]
    split, net, sets = first.split, first.net, first.sets
    assert sets is not None, "the first fold keeps its sets"
    summary = split_summary(ctx, corpus, split, sets)
    run_metrics: dict[str, Any] = dict(first.metrics)
    if len(folds) > 1:
        run_metrics["kfold"] = kfold_summary([f.metrics for f in folds], summary["protocol"])
        summary["folds"] = [
            {"fold": i + 1, "fingerprint": f.split.fingerprint(), "n_test": len(f.split.test)}
            for i, f in enumerate(folds)
        ]
    data_fingerprint = _data_fingerprint(ctx, corpus)
    name = run.name or default_model_name(run)
    model = EmotionModel(
        owner=run.owner,
        name=name[:200],
        backbone=net.backbone,
        labels=corpus.labels,
        pretrained=net.pretrained,
        provenance=net.provenance[:300],
        synthetic_speech=run.dataset.synthetic,
        config=_model_config(ctx),
        metrics=first.metrics,
        dataset=run.dataset,
        split_fingerprint=split.fingerprint(),
        data_fingerprint=data_fingerprint,
        visibility=run.dataset.visibility,
    )
    extra = {
        "labels": corpus.labels,
        "run": run.pk,
        "dataset": run.dataset.name,
        "split_fingerprint": split.fingerprint(),
        "data_fingerprint": data_fingerprint,
        "image_size": ctx.config["image_size"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        networks.save_checkpoint(net, path, extra)
        with transaction.atomic():
            locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
            if locked.model_id is not None:  # another execution saved it first
                return job_result(locked, ctx.timing)
            latest = EmotionModel.objects.filter(name=model.name).aggregate(v=Max("version"))
            model.version = (latest["v"] or 0) + 1
            with path.open("rb") as fh:
                model.weights.save(_weights_name(model), File(fh), save=False)
            try:
                model.save()
                TrainingRun.objects.filter(pk=run.pk).update(
                    model=model,
                    split=summary,
                    history=ctx.history,
                    metrics=run_metrics,
                    baselines=first.baselines,
                    predictions=predictions_record(corpus, sets, first.probabilities),
                )
            except Exception:
                model.weights.delete(save=False)
                raise
    export_for_analysis(ctx, model, net, sets.train)
    run.refresh_from_db()
    return job_result(run, ctx.timing)


# Training blocks that calibrate the int8 export (and check it on the last quarter).
CALIBRATION_BLOCKS = 256


def export_for_analysis(ctx: JobContext, model: EmotionModel, net: Any, blocks: np.ndarray) -> None:
    """The model's ONNX export for fast CPU analysis, calibrated on its own training blocks
    (clean and mixed alike, drawn at random); a failure only means analysis exports later."""
    import time

    from emotions.ser import spectrogram_numpy
    from emotions.services.inference import export_trained_model

    started = time.perf_counter()
    ctx.reporter.progress(0.99, "exporting", "Preparing the model for fast analysis…")
    rng = np.random.default_rng(ctx.run.seed)
    pick = rng.permutation(len(blocks))[:CALIBRATION_BLOCKS]
    images = spectrogram_numpy.blocks_to_model_input(
        np.asarray(blocks[pick], dtype=np.float32), int(ctx.config["image_size"])
    )
    export_trained_model(model, net, images)
    ctx.add_time("export_s", time.perf_counter() - started)


def split_summary(ctx: JobContext, corpus: Corpus, split, sets: Sets) -> dict:
    """The split's record: protocol, seed, who and what is on each side, noises, mixtures."""
    run = ctx.run
    train_parts, test_parts = split_parts(corpus, split)
    train_ids = [corpus.utterances[p].pk for p, _ in train_parts]
    test_ids = [corpus.utterances[p].pk for p, _ in test_parts]
    leaks = bool(split.meta.get("leaks_speakers")) or run.protocol in (
        Protocol.RANDOM_BLOCKS,
        Protocol.UTTERANCE,
    )
    meta = {k: v for k, v in split.meta.items() if k not in ("test_speakers",)}
    return {
        "protocol": run.protocol,
        "core_protocol": split.protocol,
        "seed": run.seed,
        "fingerprint": split.fingerprint(),
        "test_fraction": ctx.config["test_fraction"],
        "unit": split.meta.get("unit", "utterance"),
        "leaks_speakers": leaks,
        "warning": LEAK_WARNING if run.protocol == Protocol.RANDOM_BLOCKS else "",
        "meta": meta,
        "labels": corpus.labels,
        "n_utterances": len(corpus.utterances),
        "n_train_utterances": len(train_ids),
        "n_test_utterances": len(test_ids),
        "n_train_blocks": int(len(sets.train_y)),
        "n_clean_train_blocks": int(sum(len(b) for b in blocks_of(corpus, train_parts))),
        "n_test_blocks": int(len(sets.tests[CLEAN_SET][1])),
        "train_blocks_per_label": _per_label(sets.train_y, corpus.labels),
        "test_blocks_per_label": _per_label(sets.tests[CLEAN_SET][1], corpus.labels),
        "train_utterances": train_ids,
        "test_utterances": test_ids,
        "train_speakers": sorted({corpus.utterances[p].speaker for p, _ in train_parts}),
        "test_speakers": sorted({corpus.utterances[p].speaker for p, _ in test_parts}),
        "snrs": run.snrs,
        "train_noises": [_noise_record(n) for n in ctx.train_noises],
        "test_noises": [_noise_record(n) for n in ctx.test_noises],
        "mixtures": sets.mixtures,
        "test_sets": list(sets.tests),
        "skipped_utterances": corpus.skipped,
        "blocks_cache": {
            "generated": ctx.cache.generated,
            "reused": ctx.cache.reused,
            "blocks_generated": ctx.cache.blocks_generated,
            "seconds_generating": round(ctx.cache.seconds_generating, 3),
        },
        "validation": ctx.validation,
        "timing": ctx.timing,
    }


PREDICTION_COLUMNS = (
    "test_set",
    "snr_db",
    "utterance",
    "item",
    "speaker",
    "block",
    "noise",
    "true",
    "predicted",
)


def predictions_record(corpus: Corpus, sets: Sets, probabilities: dict) -> dict:
    """Every test block's origin, true and predicted label and class probabilities: columns
    PREDICTION_COLUMNS then one probability per label, one row per block and test set."""
    rows = []
    for name, proba in probabilities.items():
        origins, y = sets.test_origins[name], sets.tests[name][1]
        snr = sets.test_snrs.get(name)
        for i, p in enumerate(proba):
            utterance = corpus.utterances[int(origins.utterance[i])]
            noise = origins.noise[i]
            rows.append(
                [
                    name,
                    snr,
                    utterance.pk,
                    utterance.source_path or utterance.audio.name,
                    utterance.speaker,
                    int(origins.block[i]),
                    noise.name if noise is not None else "",
                    corpus.labels[int(y[i])],
                    corpus.labels[int(p.argmax())],
                    *(round(float(v), 5) for v in p),
                ]
            )
    return {"labels": corpus.labels, "columns": list(PREDICTION_COLUMNS), "rows": rows}


def kfold_summary(fold_metrics: list[dict[str, dict]], protocol: str) -> dict:
    """Mean and standard deviation (population, ddof 0) of each metric over the folds."""
    summary: dict[str, dict] = {}
    for name in fold_metrics[0]:
        summary[name] = {}
        for key in RESULT_KEYS:
            values = np.array([m[name][key] for m in fold_metrics if name in m])
            summary[name][key] = {"mean": float(values.mean()), "std": float(values.std())}
    folds = [{name: {k: m[name][k] for k in RESULT_KEYS} for name in m} for m in fold_metrics]
    return {"k": len(fold_metrics), "protocol": protocol, "summary": summary, "folds": folds}


def job_result(run: TrainingRun, timing: dict) -> dict:
    """The job's result: the run, its model, headline metrics, the block cache, timing."""
    metrics = {
        name: {"accuracy": m["accuracy"], "f1": m["f1"], "uar": m["uar"]}
        for name, m in (run.metrics or {}).items()
        if name != "kfold"
    }
    cache = (run.split or {}).get("blocks_cache", {})
    return {
        "run": run.pk,
        "model": run.model_id,
        "metrics": metrics,
        "blocks": cache,
        "timing": timing or (run.split or {}).get("timing", {}),
    }


def default_model_name(run: TrainingRun) -> str:
    preset = "mix-up" if run.preset == TrainingRun.Preset.MIXUP else "clean"
    return f"{run.dataset.name} · {preset} · {run.config.get('backbone', DEFAULT_BACKBONE)}"


def _data_fingerprint(ctx: JobContext, corpus: Corpus) -> str:
    payload = {
        "utterances": [
            [u.pk, u.label, u.audio.name, len(b)]
            for u, b in zip(corpus.utterances, corpus.clean, strict=True)
        ],
        "train_noises": [[n.pk, n.audio.name] for n in ctx.train_noises],
        "test_noises": [[n.pk, n.audio.name] for n in ctx.test_noises],
        "snrs": ctx.run.snrs,
        "preset": ctx.run.preset,
        "seed": ctx.run.seed,
    }
    return fingerprint_of(payload)


def _model_config(ctx: JobContext) -> dict:
    run = ctx.run
    return {
        **ctx.config,
        "preset": run.preset,
        "protocol": run.protocol,
        "seed": run.seed,
        "snrs": run.snrs,
        "train_noises": [n.pk for n in ctx.train_noises],
        "test_noises": [n.pk for n in ctx.test_noises],
        "training_run": run.pk,
    }


def _weights_name(model: EmotionModel) -> str:
    from emotions.services.files import safe_filename

    return safe_filename(f"{model.name}-v{model.version}.pt", default="model")


def _per_label(y: np.ndarray, labels: list[str]) -> dict[str, int]:
    return {labels[i]: int(n) for i, n in enumerate(np.bincount(y, minlength=len(labels)))}


def _noise_record(noise: NoiseProfile) -> dict:
    return {
        "id": noise.pk,
        "name": noise.name,
        "file": noise.audio.name,
        "environment": noise.environment,
        "synthetic": noise.synthetic,
    }
