"""Classical reference models fitted beside every CNN, on the same split and test sets.

A CNN that does not beat these has not earned its cost (field notes: on small
speaker-independent sets, trees on two statistics per frequency bin beat a fine-tuned
ImageNet network by 18 weighted-F1 points). Two feature families, each with two
well-kept scikit-learn classifiers, all class-balanced:

- ``spectral_stats``: mean and standard deviation over time of the log power of every STFT
  bin of the peak-normalised block (the method's STFT, spectrogram.py: 257 bins -> 514
  features);
- ``egemaps``: openSMILE's eGeMAPS v02 functionals (88 features), the field's usual
  hand-crafted reference. Extraction runs once over all blocks laid end to end with
  openSMILE's fixed 1 s functional frames (about 10 ms per block here, against 31 ms
  for one openSMILE call per block), so each frame's low-level descriptors may see up
  to ~50 ms of the neighbouring block through their analysis windows; features agree
  with per-block extraction to a correlation of 0.9997. The training set is capped at
  ``max_egemaps_train_blocks`` by a deterministic stratified subsample (the result says
  so); test sets are never subsampled.

Classifiers: ``HistGradientBoostingClassifier`` and standardised ``LogisticRegression``,
both with ``class_weight="balanced"``. Metrics are :func:`emotions.ser.metrics.evaluate`'s,
the very dict the CNN's evaluation reports. No Django here.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .constants import AMIN, BLOCK_SAMPLES, BLOCK_SECONDS, SAMPLE_RATE
from .metrics import evaluate
from .mixing import normalise_peak
from .spectrogram import power_spectrogram


@dataclass(frozen=True)
class BaselineKind:
    features: str  # feature family key: "spectral_stats" or "egemaps"
    classifier: str  # "hgb" or "logreg"
    name: str  # shown to people
    features_label: str
    classifier_label: str


BASELINES: dict[str, BaselineKind] = {
    "spectral_stats_hgb": BaselineKind(
        "spectral_stats",
        "hgb",
        "spectral stats + gradient-boosted trees",
        "mean + std of log-STFT power per bin (514)",
        "HistGradientBoostingClassifier, balanced",
    ),
    "spectral_stats_logreg": BaselineKind(
        "spectral_stats",
        "logreg",
        "spectral stats + logistic regression",
        "mean + std of log-STFT power per bin (514)",
        "standardised LogisticRegression, balanced",
    ),
    "egemaps_logreg": BaselineKind(
        "egemaps",
        "logreg",
        "eGeMAPS + logistic regression",
        "openSMILE eGeMAPS v02 functionals (88)",
        "standardised LogisticRegression, balanced",
    ),
    "egemaps_hgb": BaselineKind(
        "egemaps",
        "hgb",
        "eGeMAPS + gradient-boosted trees",
        "openSMILE eGeMAPS v02 functionals (88)",
        "HistGradientBoostingClassifier, balanced",
    ),
}
DEFAULT_BASELINES: tuple[str, ...] = tuple(BASELINES)
# eGeMAPS costs ~10 ms per block on this CPU: 4,000 training blocks are ~40 s.
MAX_EGEMAPS_TRAIN_BLOCKS = 4000
# Spectral statistics are cheap (~1 ms per block); the cap only bounds the trees' fit time.
MAX_SPECTRAL_TRAIN_BLOCKS = 20000

ProgressMessage = Callable[[str], None]


@dataclass
class BaselineResult:
    """One baseline's figures: ``metrics`` maps test-set name -> evaluate() dict."""

    kind: str
    name: str
    features: str
    classifier: str
    metrics: dict[str, dict[str, Any]]
    fit_seconds: float  # classifier fit only
    feature_seconds: float  # extracting this family's features, all sets (shared by its kinds)
    train_blocks: int  # blocks the classifier saw (after any subsampling)
    train_blocks_available: int
    note: str = ""  # e.g. the subsampling, in words
    # test-set name -> (N, classes) float32 class probabilities, for late fusion; not exported
    probabilities: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON and exports (without the probabilities)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "features": self.features,
            "classifier": self.classifier,
            "metrics": self.metrics,
            "fit_seconds": self.fit_seconds,
            "feature_seconds": self.feature_seconds,
            "train_blocks": self.train_blocks,
            "train_blocks_available": self.train_blocks_available,
            "note": self.note,
        }


def fit_and_evaluate_baselines(
    train_blocks: np.ndarray,
    train_labels: np.ndarray,
    test_sets: Mapping[str, tuple[np.ndarray, np.ndarray]],
    labels: list[str],
    *,
    seed: int = 0,
    kinds: Sequence[str] = DEFAULT_BASELINES,
    on_progress: ProgressMessage | None = None,
    max_egemaps_train_blocks: int = MAX_EGEMAPS_TRAIN_BLOCKS,
) -> dict[str, BaselineResult]:
    """Fit each baseline in ``kinds`` on (N, 16000) float32 1 s ``train_blocks`` with integer
    ``train_labels`` (indices into ``labels``) and evaluate it on every test set
    (name -> (blocks, labels)). Deterministic for a given ``seed``. Returns kind -> result,
    in ``kinds`` order. Raises ValueError on malformed input."""
    say = on_progress or (lambda message: None)
    unknown = [k for k in kinds if k not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(BASELINES)}")
    x_train, y_train = _check_set("training set", train_blocks, train_labels, len(labels))
    if len(np.unique(y_train)) < 2:
        raise ValueError("the baselines need at least two classes in the training set")
    tests = {
        name: _check_set(f"test set {name!r}", blocks, y, len(labels))
        for name, (blocks, y) in test_sets.items()
    }
    results: dict[str, BaselineResult] = {}
    families = list(dict.fromkeys(BASELINES[k].features for k in kinds))
    for family in families:
        cap = max_egemaps_train_blocks if family == "egemaps" else MAX_SPECTRAL_TRAIN_BLOCKS
        chosen = stratified_subsample(y_train, cap, seed)
        note = ""
        if len(chosen) < len(y_train):
            note = (
                f"trained on a stratified subsample of {len(chosen)} of {len(y_train)} "
                f"blocks (seed {seed}) to bound the {family} extraction time"
            )
        say(f"{family}: extracting features of {len(chosen)} training blocks")
        started = time.perf_counter()
        extract = FEATURE_EXTRACTORS[family]
        f_train = extract(x_train[chosen])
        f_tests = {}
        for name, (blocks, _) in tests.items():
            say(f"{family}: extracting features of test set {name} ({len(blocks)} blocks)")
            f_tests[name] = extract(blocks)
        feature_seconds = time.perf_counter() - started
        for kind in (k for k in kinds if BASELINES[k].features == family):
            spec = BASELINES[kind]
            say(f"fitting {spec.name}")
            started = time.perf_counter()
            model = make_classifier(spec.classifier, seed)
            with warnings.catch_warnings(), _one_thread():
                # lbfgs may stop at max_iter on hard sets; the figures still say how it did
                warnings.simplefilter("ignore", category=UserWarning)
                warnings.filterwarnings("ignore", message=".*lbfgs failed to converge.*")
                model.fit(f_train, y_train[chosen])
            fit_seconds = time.perf_counter() - started
            metrics, probabilities = {}, {}
            for name, (_, y) in tests.items():
                with _one_thread():
                    proba = _full_proba(model, f_tests[name], len(labels))
                probabilities[name] = proba
                metrics[name] = evaluate(y, proba.argmax(1), labels)
            results[kind] = BaselineResult(
                kind=kind,
                name=spec.name,
                features=spec.features_label,
                classifier=spec.classifier_label,
                metrics=metrics,
                fit_seconds=fit_seconds,
                feature_seconds=feature_seconds,
                train_blocks=len(chosen),
                train_blocks_available=len(y_train),
                note=note,
                probabilities=probabilities,
            )
    return {k: results[k] for k in kinds}


def make_classifier(classifier: str, seed: int = 0) -> Any:
    """A fresh class-balanced scikit-learn classifier: "hgb" or "logreg"."""
    if classifier == "hgb":
        # Early stopping off: its internal validation split would be a random block split,
        # which leaks utterances. The cost is in the per-node histograms (features x bins),
        # nearly independent of the number of blocks: 64 bins and 100 rounds keep a fit on
        # 514 features to a few CPU-seconds (255 bins and 150 rounds took ~25).
        return HistGradientBoostingClassifier(
            max_iter=100,
            max_bins=64,
            learning_rate=0.1,
            max_leaf_nodes=15,
            l2_regularization=1.0,
            early_stopping=False,
            class_weight="balanced",
            random_state=seed,
        )
    if classifier == "logreg":
        return make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced")
        )
    raise ValueError(f"unknown classifier {classifier!r}")


def _one_thread() -> Any:
    # OpenMP (the trees) and BLAS (logistic regression) threads spin while they wait for
    # each other: on the shared 2-core machine a tree fit on 1,000 blocks took 39
    # CPU-seconds with 2 threads and 5.7 with one, and a logistic regression on 1,400
    # blocks 97 s of wall time. Small fits like these gain nothing from a second thread.
    return threadpool_limits(limits=1)


def _full_proba(model: Any, features: np.ndarray, num_classes: int) -> np.ndarray:
    # classes absent from training get probability 0 in their own column
    out = np.zeros((len(features), num_classes), dtype=np.float32)
    if len(features):
        out[:, model.classes_] = model.predict_proba(features)
    return out


def stratified_subsample(labels: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``limit`` items, each class keeping its share (at least one
    item per present class), drawn with ``seed``. All indices when there are few enough."""
    labels = np.asarray(labels)
    n = len(labels)
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        take = max(1, int(round(limit * len(members) / n)))
        chosen.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(chosen))


def _check_set(
    what: str, blocks: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(blocks)
    y = np.asarray(labels)
    if x.ndim != 2 or (len(x) and x.shape[1] != BLOCK_SAMPLES):
        raise ValueError(f"{what}: expected (N, {BLOCK_SAMPLES}) blocks, got {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(f"{what}: {len(x)} blocks but labels of shape {y.shape}")
    if len(y) and (y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{what}: labels must be class indices in 0..{num_classes - 1}")
    return x.astype(np.float32, copy=False), y.astype(np.int64, copy=False)


# ---------------------------------------------------------------------------
# Features


def spectral_stats(blocks: np.ndarray, batch: int = 64) -> np.ndarray:
    """(N, 16000) blocks -> (N, 514) float32: per STFT bin, the mean and the standard
    deviation over frames of ``10 log10(max(P, AMIN))`` of the peak-normalised block."""
    x = np.asarray(blocks, dtype=np.float32)
    out = np.empty((len(x), 2 * 257), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(x), batch):
            chunk = torch.from_numpy(x[start : start + batch])
            db = power_spectrogram(normalise_peak(chunk)).clamp_min_(AMIN).log10_().mul_(10.0)
            std, mean = torch.std_mean(db, dim=-1)
            out[start : start + len(chunk)] = torch.cat([mean, std], dim=1).numpy()
    return out


# openSMILE's functionals over fixed frames of one block each instead of the whole input:
# one extractor call for thousands of blocks.
_FIXED_FRAMES_CONF = (
    f"frameMode = fixed\nframeSize = {BLOCK_SECONDS}\nframeStep = {BLOCK_SECONDS}\n"
    "frameCenterSpecial = left\n"
)


@functools.cache
def _fixed_frames_conf_path() -> str:
    digest = hashlib.sha256(_FIXED_FRAMES_CONF.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"sersite-frames-{digest}.conf.inc"
    if not path.is_file() or path.read_text() != _FIXED_FRAMES_CONF:
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=".sersite-frames-", delete=False
        ) as f:
            f.write(_FIXED_FRAMES_CONF)
        Path(f.name).replace(path)
    return str(path)


@functools.cache
def _egemaps_extractor() -> Any:
    import opensmile  # only the eGeMAPS baselines need it

    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.Functionals,
        options={"frameModeFunctionalsConf": _fixed_frames_conf_path()},
    )


EGEMAPS_FEATURES = 88


def egemaps(blocks: np.ndarray, chunk: int = 500) -> np.ndarray:
    """(N, 16000) blocks -> (N, 88) float32 eGeMAPS v02 functionals, one row per block
    (see the module notes on block boundaries). Undefined values (e.g. pitch statistics
    of a block with no voiced frame) are 0."""
    x = np.asarray(blocks, dtype=np.float32)
    out = np.zeros((len(x), EGEMAPS_FEATURES), dtype=np.float32)
    smile = _egemaps_extractor()
    pad = np.zeros(BLOCK_SAMPLES, dtype=np.float32)  # the last frame needs audio after it
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk]
        signal = np.concatenate([part.reshape(-1), pad])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            frame = smile.process_signal(signal, SAMPLE_RATE).to_numpy(dtype=np.float32)
        if len(frame) < len(part):
            raise RuntimeError(f"openSMILE returned {len(frame)} frames for {len(part)} blocks")
        out[start : start + len(part)] = frame[: len(part)]
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


FEATURE_EXTRACTORS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "spectral_stats": spectral_stats,
    "egemaps": egemaps,
}
