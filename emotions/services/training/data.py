"""The job's data: clean blocks per utterance, the split, and the training and test sets."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable

import numpy as np

from emotions.models import Dataset, NoiseProfile, TrainingRun
from emotions.ser.constants import BLOCK_SAMPLES
from emotions.services.blocks import UnreadableAudio
from emotions.services.errors import ServiceError
from emotions.services.training.context import (
    CLEAN_SET,
    BlockOrigins,
    Corpus,
    JobContext,
    Sets,
)

Protocol = TrainingRun.Protocol

# A part of a split: (position of the utterance in the corpus, its block indices or None for all).
Part = tuple[int, np.ndarray | None]


def prepare_corpus(ctx: JobContext) -> Corpus:
    """Clean blocks of every utterance kept in the dataset (cached in storage)."""
    run = ctx.run
    utterances = list(run.dataset.utterances.filter(excluded=False).order_by("pk"))
    started = time.perf_counter()
    kept, clean, skipped = [], [], []
    for i, utterance in enumerate(utterances):
        ctx.reporter.progress(
            0.15 * i / max(len(utterances), 1),
            "blocks",
            f"Preparing 1 s blocks: utterance {i + 1} of {len(utterances)}",
        )
        try:
            blocks = ctx.cache.clean(utterance)
        except UnreadableAudio as exc:
            skipped.append({"id": utterance.pk, "reason": f"unreadable audio: {exc.message}"})
            continue
        if len(blocks) == 0:
            skipped.append({"id": utterance.pk, "reason": "no speech block (short or silent)"})
            continue
        kept.append(utterance)
        clean.append(blocks)
    ctx.timing["clean_blocks_s"] = round(time.perf_counter() - started, 3)
    labels = label_order(run.dataset, [u.label for u in kept])
    if len(labels) < 2:
        raise ServiceError(
            "After skipping unreadable, too short and silent recordings, fewer than two "
            "emotions are left to train on."
        )
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[u.label] for u in kept], dtype=np.int64)
    return Corpus(kept, labels, y, clean, skipped)


def split_corpus(ctx: JobContext, corpus: Corpus) -> list:
    """The split (or the k folds) of the run's protocol, as emotions.ser.splits.Split."""
    from emotions.ser import splits

    core: str = {
        str(Protocol.RANDOM_BLOCKS): splits.RANDOM_BLOCKS,
        str(Protocol.UTTERANCE): splits.BY_UTTERANCE,
        str(Protocol.SPEAKER): splits.SPEAKER_INDEPENDENT,
        str(Protocol.LEAVE_ONE_GROUP): splits.LEAVE_ONE_GROUP_OUT,
    }[ctx.run.protocol]
    try:
        return splits.make_splits(
            core,
            corpus.utterances,
            corpus.y,
            corpus.n_blocks,
            test_fraction=ctx.config["test_fraction"],
            seed=ctx.run.seed,
            k=ctx.config.get("kfold"),
            test_group=ctx.config["test_group"],
            test_speakers=ctx.config.get("test_speakers") or (),
        )
    except ValueError as exc:  # SplitError, or scikit-learn refusing a k-fold split
        raise ServiceError(f"Cannot split this dataset: {exc}") from exc


def assemble_sets(ctx: JobContext, corpus: Corpus, split, progress_at: float) -> Sets:
    """Training blocks (+ mixtures with training noises) and the test sets."""
    run = ctx.run
    train_parts, test_parts = split_parts(corpus, split)
    snrs, seed = run.snrs, run.seed
    mixup = run.preset == TrainingRun.Preset.MIXUP
    started = time.perf_counter()
    train_blocks, train_y, _, origins = gather(ctx, corpus, train_parts)
    train_origins = [origins]
    mixtures: dict[str, list[dict]] = {"train": [], "test": []}
    total = len(snrs) * (len(train_parts) * mixup + len(test_parts) * bool(ctx.test_noises))
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        ctx.reporter.progress(progress_at, "mixing", f"Mixing noise into blocks: {done} of {total}")

    train_sets, train_labels = [train_blocks], [train_y]
    if mixup:
        for snr in snrs:
            mix = (ctx.train_noises, snr, seed)
            blocks, y, use, origins = gather(ctx, corpus, train_parts, mix, tick)
            train_sets.append(blocks)
            train_origins.append(origins)
            train_labels.append(y)
            mixtures["train"] += _mixture_summary(use, snr)
    test_blocks, test_y, _, origins = gather(ctx, corpus, test_parts)
    tests = {CLEAN_SET: (test_blocks, test_y)}
    test_origins = {CLEAN_SET: origins}
    test_snrs: dict[str, float | None] = {CLEAN_SET: None}
    if ctx.test_noises:
        for snr in snrs:
            mix = (ctx.test_noises, snr, seed)
            blocks, y, use, origins = gather(ctx, corpus, test_parts, mix, tick)
            name = test_set_name(snr)
            tests[name], test_origins[name], test_snrs[name] = (blocks, y), origins, snr
            mixtures["test"] += _mixture_summary(use, snr)
    ctx.add_time("mixing_s", time.perf_counter() - started)
    if len(test_y) == 0 or len(train_y) == 0:
        raise ServiceError("The split left no blocks to train or to test on.")
    return Sets(
        np.concatenate(train_sets),
        np.concatenate(train_labels),
        tests,
        mixtures,
        test_origins,
        test_snrs,
        BlockOrigins.concat(train_origins),
    )


def split_parts(corpus: Corpus, split) -> tuple[list[Part], list[Part]]:
    """The train and the test parts of ``split`` (over utterances or over blocks)."""
    if split.meta.get("unit") != "block":
        return [(i, None) for i in split.train], [(i, None) for i in split.test]
    offsets = np.concatenate([[0], np.cumsum(corpus.n_blocks)])
    owner = np.searchsorted(offsets, np.arange(offsets[-1]), side="right") - 1

    def parts(blocks: list[int]) -> list[Part]:
        by_utterance: dict[int, list[int]] = {}
        for b in blocks:
            u = int(owner[b])
            by_utterance.setdefault(u, []).append(b - int(offsets[u]))
        return [(u, np.array(idx)) for u, idx in sorted(by_utterance.items())]

    return parts(split.train), parts(split.test)


def blocks_of(corpus: Corpus, parts: list[Part]) -> list[np.ndarray]:
    """The clean blocks of ``parts``, one array per utterance."""
    return [corpus.clean[p] if idx is None else corpus.clean[p][idx] for p, idx in parts]


def gather(
    ctx: JobContext,
    corpus: Corpus,
    parts: list[Part],
    mix: tuple[list[NoiseProfile], float, int] | None = None,
    tick: Callable[[], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, Counter, BlockOrigins]:
    """The blocks of ``parts``, clean (mix None) or mixed with (noises, snr, seed),
    their labels, how many blocks each noise went into, and where each block comes from."""
    arrays, labels, origins = [], [], []
    noise_use: Counter = Counter()
    for position, idx in parts:
        utterance = corpus.utterances[position]
        if mix is None:
            blocks = corpus.clean[position]
        else:
            noises, snr, seed = mix
            noise = pick_noise(noises, seed, utterance.pk, snr)
            blocks = ctx.cache.mixed(utterance, noise, snr, seed)
            if tick is not None:
                tick()
        index = np.arange(len(blocks)) if idx is None else np.asarray(idx)
        blocks = blocks if idx is None else blocks[idx]
        if mix is not None:
            noise_use[noise.pk] += len(blocks)
        arrays.append(blocks)
        labels.append(np.full(len(blocks), corpus.y[position], dtype=np.int64))
        origins.append(
            BlockOrigins(
                np.full(len(blocks), position, dtype=np.int64),
                index.astype(np.int64),
                [noise if mix is not None else None] * len(blocks),
            )
        )
    if not arrays:
        empty = np.zeros((0, BLOCK_SAMPLES), np.float16)
        return empty, np.zeros(0, np.int64), noise_use, BlockOrigins.concat([])
    return (
        np.concatenate(arrays),
        np.concatenate(labels),
        noise_use,
        BlockOrigins.concat(origins),
    )


def test_set_name(snr: float) -> str:
    """The name of the test set mixed at ``snr`` dB, e.g. "15dB"."""
    return f"{snr:g}dB"


def pick_noise(noises: list[NoiseProfile], seed: int, utterance_id: int, snr: float):
    """One of ``noises`` for this utterance at this SNR, the same on every rebuild."""
    text = f"{seed}:{utterance_id}:{snr:g}"
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
    return noises[digest % len(noises)]


def label_order(dataset: Dataset, present: list[str]) -> list[str]:
    """The dataset's declared label order, then any other labels present, sorted."""
    seen = set(present)
    declared = [label for label in (dataset.labels or []) if label in seen]
    return declared + sorted(seen - set(declared))


def _mixture_summary(use: Counter, snr: float) -> list[dict]:
    return [{"noise": noise, "snr_db": snr, "blocks": n} for noise, n in sorted(use.items())]
