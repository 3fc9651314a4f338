"""Accuracy on held-out voices and unseen noises: the CNN recipes beside the baselines.

No Django: the ML core only, on data made here.

Data: synthetic emotional speech (espeak-ng, emotions/ser/synthetic.py) from ten voices
and sixteen sentences in four emotions. Speaker-independent: two voices are held out for
testing and never used for any choice; two more of the eight training voices are carved
off as the validation split (early stopping / epoch choice), the other six train. Noise:
the real environmental noise pack (Debian game data, emotions/ser/noisepack.py), split by
FILE into training noises and held-out test noises. Test sets: the held-out voices clean
and mixed with the test noises at 15, 20 and 40 dB (whole-block SNR, one noise per
utterance and SNR, random offsets, seeded).

Each experiment is one change against a named reference; the frozen trunk's features are
computed once per image size and shared by every experiment at that size (what the
product's feature cache does inside one run). Every number printed is weighted F1 / UAR
in percent on the held-out voices.

    nice -n 10 .venv/bin/python bench/accuracy.py                  # every experiment
    nice -n 10 .venv/bin/python bench/accuracy.py --only default paper
    .venv/bin/python bench/accuracy.py --timing                    # the 1 h default run

The --timing mode runs the default mix-up recipe end to end on one hour of speech (3,600
blocks, x4 with the 15/20/40 dB copies): noise mixing, spectrograms, the trunk-feature
cache, training and evaluation, and prints wall time, peak RSS and page faults.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from emotions.ser.training import METHOD_PRESET  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VOICES = (
    "en-us+m3", "en-us+f2", "en-gb+m1", "en-gb+f4", "en-029+m2", "en-gb-x-gbclan+f1",
    "en-us-nyc+m5", "en-gb-x-gbcwmd+f5", "en-gb-scotland+m4", "en-gb-x-rp+f3",
)  # fmt: skip
TEST_VOICES = ("en-gb-scotland+m4", "en-gb-x-rp+f3")  # never tuned on
VAL_VOICES = ("en-gb+m1", "en-gb-x-gbclan+f1")  # carved from the training voices
EXTRA_SENTENCES = (
    "Our meeting has been moved to the second floor.",
    "The experiment needs another week of careful work.",
    "Nobody told me that the deadline was today.",
    "She walked home through the park after class.",
    "The new timetable will be posted on Monday.",
    "We counted the votes and the result is final.",
    "He forgot his keys on the kitchen table again.",
    "Bring a pencil and a calculator to the exam.",
)
# Noise files held out for the test mixtures (one per kind of scene, never in training).
TEST_NOISE_NAMES = (
    "city.ogg",  # street traffic
    "oceanwaves.wav",
    "birds2.wav",
    "rain.ogg",  # plee-the-bear rain (scorched3d's rain.wav trains)
    "crowdcheer.wav",
    "crowd09.wav",
    "crowd10.wav",
    "crowd11.wav",
    "crowd12.wav",
)
SNRS = (15.0, 20.0, 40.0)
TEST_SETS = ("clean", "15dB", "20dB", "40dB")


# ---------------------------------------------------------------------------
# Data


@dataclass
class Part:
    """Blocks of one side of the split: float16 (N, 16000), labels, utterance ids."""

    blocks: np.ndarray
    y: np.ndarray
    utt: np.ndarray

    def take(self, mask: np.ndarray) -> Part:
        return Part(self.blocks[mask], self.y[mask], self.utt[mask])


@dataclass
class Data:
    labels: list[str]
    train: dict[str, Part]  # "clean", "15dB", ... (training noises)
    val: dict[str, Part]  # same, validation voices, training noises
    test: dict[str, Part]  # "clean", "15dB", ... (held-out noises)
    noises: dict[str, list[str]] = field(default_factory=dict)


def synthesize(corpus_dir: Path) -> list:
    from emotions.ser import synthetic

    sentences = synthetic.SENTENCES + EXTRA_SENTENCES
    manifest = corpus_dir / "manifest.csv"
    expected = len(VOICES) * len(sentences) * len(synthetic.EMOTION_PROSODY)
    if manifest.is_file() and sum(1 for _ in manifest.open()) == expected + 1:
        items = []
        for emotion in synthetic.EMOTION_PROSODY:
            for voice in VOICES:
                speaker = voice.replace("+", "_")
                for n in range(len(sentences)):
                    path = corpus_dir / emotion / f"{speaker}_{n:02d}.wav"
                    items.append(synthetic.SyntheticUtterance(path, emotion, speaker, n))
        return items
    return synthetic.build_corpus(corpus_dir, voices=VOICES, sentences=sentences)


def load_noises(noise_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    from emotions.ser import audio

    files = sorted(p for p in noise_dir.rglob("*") if p.suffix in (".ogg", ".wav"))
    if not files:
        raise SystemExit(f"no noise files under {noise_dir}: fetch the noise pack first")
    train, test = {}, {}
    for path in files:
        # plee-the-bear's rain.ogg is held out; scorched3d's rain.wav trains
        held_out = path.name in TEST_NOISE_NAMES
        signal = audio.decode(path)
        if np.sqrt(np.mean(signal.astype(np.float64) ** 2)) < 1e-6:
            continue
        (test if held_out else train)[f"{path.parent.name}/{path.name}"] = signal
    return train, test


def build_data(cache: Path, noise_dir: Path, seed: int = 0) -> Data:
    from emotions.ser import audio, mixing
    from emotions.ser.constants import SILENCE_THRESHOLD_DBFS

    key = hashlib.sha256(
        json.dumps([VOICES, TEST_VOICES, VAL_VOICES, TEST_NOISE_NAMES, SNRS, seed]).encode()
    ).hexdigest()[:10]
    path = cache / f"data-{key}.npz"
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        return _load_data(path, meta_path)
    items = synthesize(cache / "corpus")
    labels = sorted({i.label for i in items})
    train_noises, test_noises = load_noises(noise_dir)
    sides: dict[str, list] = {"train": [], "val": [], "test": []}
    for u, item in enumerate(items):
        voice = next(v for v in VOICES if v.replace("+", "_") == item.speaker)
        side = "test" if voice in TEST_VOICES else "val" if voice in VAL_VOICES else "train"
        blocks = audio.split_blocks(audio.decode(item.path))
        blocks = blocks[~audio.silence_mask(blocks, SILENCE_THRESHOLD_DBFS)]
        if len(blocks):
            sides[side].append((u, labels.index(item.label), blocks))
    arrays: dict[str, np.ndarray] = {}
    for side, utterances in sides.items():
        noises = test_noises if side == "test" else train_noises
        names = sorted(noises)
        for set_name in TEST_SETS:
            out_blocks, out_y, out_u = [], [], []
            for u, y, blocks in utterances:
                clean = mixing.normalise_peak(blocks)
                if set_name == "clean":
                    mixed = clean
                else:
                    snr = float(set_name[:-2])
                    rng = np.random.default_rng([seed, u, int(snr)])
                    noise = noises[names[rng.integers(len(names))]]
                    (aug,) = mixing.augment_blocks(
                        clean, noise, [snr], seed=int(rng.integers(2**31))
                    )
                    mixed = aug.mixed
                out_blocks.append(mixed.numpy().astype(np.float16))
                out_y.append(np.full(len(blocks), y))
                out_u.append(np.full(len(blocks), u))
            arrays[f"{side}/{set_name}/blocks"] = np.concatenate(out_blocks)
            arrays[f"{side}/{set_name}/y"] = np.concatenate(out_y)
            arrays[f"{side}/{set_name}/utt"] = np.concatenate(out_u)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    meta = {
        "labels": labels,
        "noises": {"train": sorted(train_noises), "test": sorted(test_noises)},
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    return _load_data(path, meta_path)


def _load_data(path: Path, meta_path: Path) -> Data:
    meta = json.loads(meta_path.read_text())
    z = np.load(path)
    sides = {
        side: {
            s: Part(z[f"{side}/{s}/blocks"], z[f"{side}/{s}/y"], z[f"{side}/{s}/utt"])
            for s in TEST_SETS
        }
        for side in ("train", "val", "test")
    }
    return Data(meta["labels"], sides["train"], sides["val"], sides["test"], meta["noises"])


def concat(parts: list[Part]) -> Part:
    return Part(
        np.concatenate([p.blocks for p in parts]),
        np.concatenate([p.y for p in parts]),
        np.concatenate([p.utt for p in parts]),
    )


# ---------------------------------------------------------------------------
# Features of the frozen trunk, once per (image size, trainable split)


def trunk_features(
    data: Data, size: int, trainable: str, cache: Path
) -> dict[tuple[str, str], torch.Tensor]:
    from emotions.ser import networks, spectrogram

    path = cache / f"trunk-{size}-{trainable}-{_data_key(data)}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    net = networks.build_network("mobilenet_v2", len(data.labels), trainable=trainable, seed=0)
    trunk = networks.place_network(net.trunk, torch.device("cpu")).eval()
    out = {}
    started = time.perf_counter()
    n = 0
    if trainable != "default":
        # a deeper trunk continues from the default trunk's cached output
        default = trunk_features(data, size, "default", cache)
        depth = networks.BACKBONE_SPECS["mobilenet_v2"].frozen_stages
        with torch.no_grad():
            out = {
                k: torch.cat([trunk[depth:](x).contiguous() for x in torch.split(v, 256)])
                for k, v in default.items()
            }  # fmt: skip
        torch.save(out, path)
        return out
    with torch.no_grad():
        for side_name, side in (("train", data.train), ("val", data.val), ("test", data.test)):
            for set_name, part in side.items():
                chunks = []
                for x in spectrogram.iter_model_input(
                    part.blocks.astype(np.float32), device="cpu", batch=64, size=size
                ):
                    chunks.append(trunk(x).contiguous())
                out[(side_name, set_name)] = torch.cat(chunks)
                n += len(part.y)
    took = time.perf_counter() - started
    print(f"# trunk features at {size}px ({trainable}): {n} images in {took:.0f} s "
          f"({n / took:.0f} images/s)", flush=True)  # fmt: skip
    torch.save(out, path)
    return out


def _data_key(data: Data) -> str:
    return hashlib.sha256(data.train["clean"].blocks[:50].tobytes()).hexdigest()[:8]


# ---------------------------------------------------------------------------
# Experiments


@dataclass(frozen=True)
class Recipe:
    """One CNN recipe: the preset, the loop's settings and what happens around them."""

    preset: str = "mixup"  # or "clean"
    size: int = 128
    trainable: str = "default"
    config: dict[str, Any] = field(default_factory=dict)
    aggregate: bool = True  # mean log-probability over each test utterance
    validation: bool = True  # carve the validation voices out of training
    fusion: float = 0.0  # weight of a baseline's log-probabilities (late fusion)
    fusion_kind: str = "egemaps_logreg"


def run_recipe(
    recipe: Recipe, data: Data, features: dict, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train per ``recipe``; returns (test-set name -> block probabilities, info)."""
    from torch import nn

    from emotions.ser import networks
    from emotions.ser.training import TrainConfig, train

    net = networks.build_network(
        "mobilenet_v2", len(data.labels), trainable=recipe.trainable, seed=seed
    )
    # The trunk's output is precomputed above; train the head on it (what the loop's own
    # feature cache does, shared here by every experiment).
    head_only = networks.SERNetwork(
        nn.Sequential(), net.head, net.torchvision_model, backbone=net.backbone,
        num_classes=net.num_classes, trainable=net.trainable, provenance=net.provenance,
        pretrained=net.pretrained,
    )  # fmt: skip
    sets = ["clean"] if recipe.preset == "clean" else list(TEST_SETS)
    train_x = torch.cat([features[("train", s)] for s in sets])
    train_y = np.concatenate([data.train[s].y for s in sets])
    val = None
    if recipe.validation:
        val_x = torch.cat([features[("val", s)] for s in sets])
        val = (val_x, np.concatenate([data.val[s].y for s in sets]))
    else:  # no validation split: the validation voices train too
        train_x = torch.cat([train_x, *[features[("val", s)] for s in sets]])
        train_y = np.concatenate([train_y, *[data.val[s].y for s in sets]])
    config = TrainConfig(**{"seed": seed, "device": "cpu", **recipe.config})
    started = time.perf_counter()
    result = train(head_only, train_x, train_y, config, val=val)
    seconds = time.perf_counter() - started
    head_only.eval()
    proba = {}
    with torch.no_grad():
        for s in TEST_SETS:
            logits = torch.cat([head_only(x) for x in torch.split(features[("test", s)], 256)])
            proba[s] = torch.softmax(logits.float(), 1).numpy()
    info = {"seconds": seconds, "best_epoch": result.best_epoch, "epochs": len(result.history)}
    return proba, info


def aggregate(proba: np.ndarray, groups: np.ndarray) -> np.ndarray:
    from emotions.ser.training import aggregate_probabilities

    return aggregate_probabilities(proba, groups)


def score(
    proba: dict[str, np.ndarray], data: Data, aggregate_utt: bool
) -> dict[str, dict[str, float]]:
    from emotions.ser.metrics import evaluate

    out = {}
    for s in TEST_SETS:
        p = aggregate(proba[s], data.test[s].utt) if aggregate_utt else proba[s]
        m = evaluate(data.test[s].y, p.argmax(1), data.labels)
        out[s] = {"f1": 100 * m["f1"], "uar": 100 * m["uar"]}
    return out


def fmt_row(name: str, scores: dict[str, dict[str, float]], extra: str = "") -> str:
    cells = " ".join(f"{scores[s]['f1']:5.1f}/{scores[s]['uar']:5.1f}" for s in TEST_SETS)
    return f"{name:<44} {cells}  {extra}"


def baselines_for(
    data: Data, preset: str, cache: Path, seed: int = 0
) -> dict[str, dict[str, np.ndarray]]:
    """kind -> test set -> block probabilities; cached on disk per preset."""
    from emotions.ser.baselines import fit_and_evaluate_baselines

    path = cache / f"baselines-{preset}-{_data_key(data)}-{seed}.npz"
    if path.is_file():
        z = np.load(path)
        out: dict[str, dict[str, np.ndarray]] = {}
        for key in z.files:
            kind, s = key.split("|")
            out.setdefault(kind, {})[s] = z[key]
        return out
    sets = ["clean"] if preset == "clean" else list(TEST_SETS)
    # baselines train on every training voice (they have no epochs to choose)
    parts = [data.train[s] for s in sets] + [data.val[s] for s in sets]
    train = concat(parts)
    tests = {s: (data.test[s].blocks.astype(np.float32), data.test[s].y) for s in TEST_SETS}
    started = time.perf_counter()
    results = fit_and_evaluate_baselines(
        train.blocks.astype(np.float32), train.y, tests, data.labels, seed=seed
    )
    print(f"# baselines ({preset}): {time.perf_counter() - started:.0f} s; "
          + "; ".join(f"{r.name}: fit {r.fit_seconds:.1f} s, features {r.feature_seconds:.0f} s"
                      + (f" ({r.note})" if r.note else "") for r in results.values()),
          flush=True)  # fmt: skip
    out = {kind: r.probabilities for kind, r in results.items()}
    np.savez(path, **{f"{k}|{s}": p for k, v in out.items() for s, p in v.items()})
    return out


# The method's preset (AlexNet-style SGD step decay, the paper's 256 px) and the reference
# recipe each experiment changes one thing of.
# Every recipe spells out its settings on top of the method's (no augmentation, SGD), so a
# change of the product's defaults does not change what an experiment measures.
PAPER = dict(METHOD_PRESET)
BASE = METHOD_PRESET | {
    "optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05, "schedule": "cosine",
    "warmup_epochs": 1.0, "epochs": 12, "batch_size": 64, "select_epoch": True,
}  # fmt: skip


CLS = BASE | {"epochs": 30, "lr": 3e-3, "batch_size": 64}
CLS2 = CLS | {"select_epoch": False}  # the cosine schedule's last epoch
# the last five blocks trained, but only 4 epochs: base mix-up chose epoch 2 of 12
B4 = BASE | {"epochs": 4, "select_epoch": False}


def experiments() -> dict[str, Recipe]:
    """Named recipes; "b4 mix-up, mix-up alpha 0.2" is the product's default."""
    r = Recipe
    return {
        "paper clean (256px, SGD step, last epoch)": r(
            "clean", 256, config=PAPER | {"select_epoch": False}, aggregate=False,
            validation=False,
        ),
        "paper mix-up (256px, SGD step, last epoch)": r(
            "mixup", 256, config=PAPER | {"select_epoch": False}, aggregate=False,
            validation=False,
        ),
        "paper clean, 128px": r(
            "clean", config=PAPER | {"select_epoch": False}, aggregate=False, validation=False),
        "paper mix-up, 128px": r(
            "mixup", config=PAPER | {"select_epoch": False}, aggregate=False, validation=False),
        "base clean": r("clean", config=BASE),
        "base mix-up": r("mixup", config=BASE),
        "base mix-up, no utterance aggregation": r("mixup", config=BASE, aggregate=False),
        "base mix-up, SGD step decay (lr 0.01)": r(
            "mixup", config=BASE | {"optimizer": "sgd", "lr": 0.01, "schedule": "step",
                                    "lr_step_epochs": 4, "warmup_epochs": 0.0,
                                    "weight_decay": 4e-4}),
        "base mix-up, no warm-up": r("mixup", config=BASE | {"warmup_epochs": 0.0}),
        "base mix-up, last epoch (no selection)": r(
            "mixup", config=BASE | {"select_epoch": False}),
        "base mix-up, SpecAugment 2x15%": r(
            "mixup", config=BASE | {"spec_augment_masks": 2, "spec_augment_width": 0.15}),
        "base mix-up, mix-up alpha 0.4": r("mixup", config=BASE | {"mixup_alpha": 0.4}),
        "base mix-up, label smoothing 0.1": r("mixup", config=BASE | {"label_smoothing": 0.1}),
        "base mix-up, no class weighting": r("mixup", config=BASE | {"class_weighting": "none"}),
        "base mix-up, classifier layer only": r("mixup", trainable="classifier", config=BASE),
        "base mix-up, 160px": r("mixup", 160, config=BASE),
        "base mix-up, 256px": r("mixup", 256, config=BASE),
        "base mix-up + eGeMAPS fusion 0.5": r("mixup", config=BASE, fusion=0.5),
        # the classifier layer alone, on the pooled 1280 features: cheap enough for big sets
        "cls clean": r("clean", trainable="classifier", config=CLS),
        "cls mix-up": r("mixup", trainable="classifier", config=CLS),
        "cls mix-up, no utterance aggregation": r(
            "mixup", trainable="classifier", config=CLS, aggregate=False),
        "cls mix-up, last epoch (no selection)": r(
            "mixup", trainable="classifier", config=CLS | {"select_epoch": False}),
        "cls mix-up, mix-up alpha 0.4": r(
            "mixup", trainable="classifier", config=CLS | {"mixup_alpha": 0.4}),
        "cls mix-up, SGD step decay (lr 0.01)": r(
            "mixup", trainable="classifier", config=CLS | {
                "optimizer": "sgd", "lr": 0.01, "schedule": "step", "lr_step_epochs": 10,
                "warmup_epochs": 0.0, "weight_decay": 4e-4}),
        "cls mix-up, no class weighting": r(
            "mixup", trainable="classifier", config=CLS | {"class_weighting": "none"}),
        "cls mix-up, label smoothing 0.1": r(
            "mixup", trainable="classifier", config=CLS | {"label_smoothing": 0.1}),
        "cls mix-up + eGeMAPS fusion 0.5": r(
            "mixup", trainable="classifier", config=CLS, fusion=0.5),
        "cls mix-up + eGeMAPS fusion 0.3": r(
            "mixup", trainable="classifier", config=CLS, fusion=0.3),
        "b4 clean": r("clean", config=B4),
        "b4 mix-up": r("mixup", config=B4),
        "b4 mix-up, SpecAugment 2x15%": r(
            "mixup", config=B4 | {"spec_augment_masks": 2, "spec_augment_width": 0.15}),
        "b4 mix-up, mix-up alpha 0.2": r("mixup", config=B4 | {"mixup_alpha": 0.2}),
        "b4 mix-up, no aggregation": r("mixup", config=B4, aggregate=False),
        "b4 clean, mix-up alpha 0.2": r("clean", config=B4 | {"mixup_alpha": 0.2}),
        "b4 mix-up, mix-up alpha 0.2, 256px": r("mixup", 256, config=B4 | {"mixup_alpha": 0.2}),
        "b4 mix-up, mix-up alpha 0.2 + SpecAugment": r(
            "mixup", config=B4 | {"mixup_alpha": 0.2, "spec_augment_masks": 2}),
        "b4 mix-up + eGeMAPS trees fusion 0.3": r(
            "mixup", config=B4, fusion=0.3, fusion_kind="egemaps_hgb"),
        "cls2 clean": r("clean", trainable="classifier", config=CLS2),
        "cls2 mix-up": r("mixup", trainable="classifier", config=CLS2),
        "cls2 mix-up, no aggregation": r(
            "mixup", trainable="classifier", config=CLS2, aggregate=False),
        "cls2 mix-up, mix-up alpha 0.2": r(
            "mixup", trainable="classifier", config=CLS2 | {"mixup_alpha": 0.2}),
        "cls2 mix-up, lr 0.01": r("mixup", trainable="classifier", config=CLS2 | {"lr": 0.01}),
        "cls2 mix-up, 60 epochs": r(
            "mixup", trainable="classifier", config=CLS2 | {"epochs": 60}),
        "cls2 mix-up, weight decay 0.005": r(
            "mixup", trainable="classifier", config=CLS2 | {"weight_decay": 0.005}),
        "cls2 mix-up + eGeMAPS trees fusion 0.3": r(
            "mixup", trainable="classifier", config=CLS2, fusion=0.3, fusion_kind="egemaps_hgb"),
        "cls2 mix-up + eGeMAPS trees fusion 0.5": r(
            "mixup", trainable="classifier", config=CLS2, fusion=0.5, fusion_kind="egemaps_hgb"),
        "cls2 mix-up, 256px": r("mixup", 256, trainable="classifier", config=CLS2),
        "cls2 clean, 256px": r("clean", 256, trainable="classifier", config=CLS2),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "accuracy")
    parser.add_argument("--noise-dir", type=Path, default=ROOT / "var" / "noise-pack")
    parser.add_argument("--only", nargs="*", help="experiments whose name contains one of these")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timing", action="store_true", help="the 1 h default-run timing")
    parser.add_argument("--extra", type=json.loads, default=None, help="JSON recipe to add")
    parser.add_argument("--baselines", choices=("yes", "no", "only"), default="yes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.timing:
        return timing(args)
    started = time.perf_counter()
    data = build_data(args.cache, args.noise_dir, seed=0)
    sizes = {k: len(v.y) for k, v in data.train.items()}
    print(f"# labels {data.labels}; blocks per set: train {sizes['clean']}, "
          f"val {len(data.val['clean'].y)}, test {len(data.test['clean'].y)} "
          f"(utterances {len(set(data.test['clean'].utt))}); train noises "
          f"{len(data.noises['train'])}, test noises {len(data.noises['test'])}; "
          f"data ready in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    print(f"# load: {os.getloadavg()[0]:.1f}; torch threads {torch.get_num_threads()}")
    header = " ".join(f"{s:>11}" for s in TEST_SETS)
    print(f"{'weighted F1 / UAR (%), held-out voices':<44} {header}")
    base: dict[str, dict] = {}
    if args.baselines != "no":
        base = {p: baselines_for(data, p, args.cache, args.seed) for p in ("clean", "mixup")}
    from emotions.ser.baselines import BASELINES

    for preset, results in base.items():
        for kind, proba in results.items():
            for agg in (False, True):
                name = f"{BASELINES[kind].name} ({preset}{', utt' if agg else ''})"
                print(fmt_row(name, score(proba, data, agg)), flush=True)
    if args.baselines == "only":
        return
    chosen = experiments()
    if args.extra:
        chosen["extra " + json.dumps(args.extra)] = Recipe(
            **{k: v for k, v in args.extra.items() if k != "config"},
            config=BASE | args.extra.get("config", {}),
        )
    if args.only:
        # "=NAME" is one experiment by its whole name, other words match parts of names
        chosen = {
            k: v for k, v in chosen.items()
            if any(k == o[1:] if o.startswith("=") else o in k for o in args.only)
        }  # fmt: skip
    features: dict[tuple[int, str], dict] = {}
    for name, recipe in chosen.items():
        key = (recipe.size, recipe.trainable)
        if key not in features:
            features[key] = trunk_features(data, recipe.size, recipe.trainable, args.cache)
        proba, info = run_recipe(recipe, data, features[key], args.seed)
        if recipe.fusion:
            if recipe.preset not in base:  # fitted once, then read from the cache
                base[recipe.preset] = baselines_for(data, recipe.preset, args.cache, args.seed)
            egemaps = base[recipe.preset][recipe.fusion_kind]
            proba = {
                s: _fuse(proba[s], egemaps[s], recipe.fusion) for s in TEST_SETS
            }  # fmt: skip
        extra = (f"[{info['seconds']:.0f} s, best epoch {info['best_epoch']}/{info['epochs']}, "
                 f"load {os.getloadavg()[0]:.1f}]")  # fmt: skip
        print(fmt_row(name, score(proba, data, recipe.aggregate), extra), flush=True)
    print(f"# total {time.perf_counter() - started:.0f} s")


def _fuse(cnn: np.ndarray, other: np.ndarray, weight: float) -> np.ndarray:
    logp = (1 - weight) * np.log(cnn + 1e-7) + weight * np.log(other + 1e-7)
    p = np.exp(logp - logp.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True)


# ---------------------------------------------------------------------------
# The 1 h default run, timed end to end


def timing(args: argparse.Namespace) -> None:
    from emotions.ser import mixing, networks, spectrogram
    from emotions.ser.constants import TRAIN_DEFAULTS
    from emotions.ser.training import TrainConfig, predict_proba, train

    data = build_data(args.cache, args.noise_dir, seed=0)
    train_noises, _ = load_noises(args.noise_dir)
    rng = np.random.default_rng(0)
    pool = concat([data.train["clean"], data.val["clean"]])
    n = 3600
    pick = rng.integers(0, len(pool.y), n)
    clean = pool.blocks[pick].astype(np.float32)
    y = pool.y[pick]
    extra = args.extra or {}  # e.g. {"size": 256, "trainable": "default", "config": {...}}
    size = extra.get("size", TRAIN_DEFAULTS["image_size"])
    trainable = extra.get("trainable", TRAIN_DEFAULTS["trainable"])
    loop = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed", "device"}
    settings = {k: v for k, v in TRAIN_DEFAULTS.items() if k in loop} | extra.get("config", {})
    config = TrainConfig(**settings, seed=0)
    print(f"# 1 h of speech: {n} blocks x {1 + len(SNRS)} (clean + {SNRS} dB), "
          f"{size}px, trainable {trainable}, {config.to_dict()}, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    t0 = time.perf_counter()
    names = sorted(train_noises)
    # float16 blocks as the product's block cache keeps them, filled in place
    blocks = np.empty(((1 + len(SNRS)) * n, clean.shape[1]), dtype=np.float16)
    blocks[:n] = clean
    for k, snr in enumerate(SNRS, 1):
        for start in range(0, n, 400):  # one noise per 400 blocks, as per utterance
            noise = train_noises[names[(start // 400 + int(snr)) % len(names)]]
            (aug,) = mixing.augment_blocks(clean[start : start + 400], noise, [snr], seed=start)
            blocks[k * n + start : k * n + start + 400] = aug.mixed.numpy()
    del clean, train_noises
    labels = np.tile(y, 1 + len(SNRS))
    t_mix = time.perf_counter() - t0
    # validation: a tenth of the blocks' utterances stand in for the validation voices
    val_mask = np.zeros(len(labels), bool)
    val_mask[np.arange(len(labels)) % 10 == 0] = True
    net = networks.build_network("mobilenet_v2", len(data.labels), trainable=trainable, seed=0)

    def images(source: np.ndarray):
        def batch(idx: torch.Tensor) -> torch.Tensor:
            x = torch.from_numpy(source[idx.numpy()].astype(np.float32))
            return spectrogram.blocks_to_model_input(x, device="cpu", size=size)

        return batch

    train_blocks, val_blocks = blocks[~val_mask], blocks[val_mask]
    t1 = time.perf_counter()
    result = train(
        net, images(train_blocks), labels[~val_mask], config,
        val=(images(val_blocks), labels[val_mask]),
    )  # fmt: skip
    t_train = time.perf_counter() - t1
    t2 = time.perf_counter()
    test = data.test["15dB"]
    batches = spectrogram.iter_model_input(test.blocks.astype(np.float32), device="cpu", size=size)
    predict_proba(net, batches)
    t_eval = time.perf_counter() - t2
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = time.perf_counter() - t0
    print(f"mixing {t_mix:.0f} s, training {t_train:.0f} s (best epoch {result.best_epoch} of "
          f"{len(result.history)}), evaluating {len(test.y)} blocks {t_eval:.0f} s")  # fmt: skip
    print(f"total {total:.0f} s ({total / 60:.1f} min; target <= 15 min), peak RSS "
          f"{usage.ru_maxrss / 1024:.0f} MB, user {usage.ru_utime:.0f} s, system "
          f"{usage.ru_stime:.0f} s, minor page faults {usage.ru_minflt / 1e6:.2f} M, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
