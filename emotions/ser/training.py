"""The training loop, prediction and cross-validation splits.

Progress and cancel come in as callbacks, so the same loop runs from a Celery task, a
management command, a benchmark or a test.

The trunk of an ``SERNetwork`` is frozen and stays in eval mode, so its output for an
image never changes during training. With ``cache_trunk_features`` (the default) the
trunk runs once over all images and every epoch trains the head on those cached features:
the method's later epochs then cost only the head. Results match training without the
cache up to floating-point rounding (same seed, same batches, same dropout draws).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from torch import nn

from emotions.ser import augment
from emotions.ser.constants import TRAIN_DEFAULTS
from emotions.ser.device import choose_device
from emotions.ser.networks import (
    SERNetwork,
    autocast,
    autocast_dtype,
    model_input,
    place_network,
)

# Images: a (N, 3, H, W) tensor or array; a Dataset whose items are images or (image, ...) tuples;
# or a callable mapping a LongTensor of indices to a (B, 3, H, W) batch.
ImageSource = torch.Tensor | Sequence[Any] | Callable[[torch.Tensor], torch.Tensor]
ProgressCallback = Callable[[dict[str, Any]], None]
CancelCallback = Callable[[], bool]
ClassWeighting = Literal["loss", "sampler", "none"]
Optimizer = Literal["sgd", "adamw"]
Schedule = Literal["step", "cosine"]


# The method's own loop settings (step 6: SGD with momentum, step decay, six epochs, the last
# epoch kept), kept as a labelled preset beside whatever default measures best. The method's
# image size is constants.IMAGE_SIZE (256).
METHOD_PRESET: dict[str, Any] = {
    "optimizer": "sgd",
    "schedule": "step",
    "lr": 4e-4,
    "momentum": 0.9,
    "weight_decay": 4e-4,
    "epochs": 6,
    "batch_size": 128,
    "lr_gamma": 0.2,
    "lr_step_epochs": 2,
    "warmup_epochs": 0.0,
    "spec_augment_masks": 0,
    "mixup_alpha": 0.0,
    "label_smoothing": 0.0,
    "select_epoch": False,
    "patience": 0,
}


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run; defaults are the method's (constants.py).

    The learning rate is multiplied by ``lr_gamma`` every ``lr_step_epochs`` epochs
    (step decay, torch's StepLR): with the defaults 4e-4 for epochs 1-2, 8e-5 for 3-4,
    1.6e-5 for 5-6.

    ``cache_trunk_features``: compute the frozen trunk's output once and train the head on
    it (much faster; memory of one trunk output per image, e.g. AlexNet at 256x256:
    256x15x15 floats = 230 kB per image). Turn off for data that does not fit.

    ``class_weighting``: "loss" weights cross-entropy by n / (classes x class count);
    "sampler" draws each epoch's samples with probability 1 / class count instead;
    "none" uses neither.

    ``optimizer`` "sgd" (the method's, with momentum) or "adamw"; ``schedule`` "step" (the
    step decay above) or "cosine" (from ``lr`` down to 0 over the run, per batch); either
    after ``warmup_epochs`` of linear warm-up from 0 (fractions of an epoch allowed).

    Augmentation of the batches the trained part sees (emotions/ser/augment.py):
    ``spec_augment_masks`` frequency bands and time spans per example, each up to
    ``spec_augment_width`` of its axis, are zeroed (SpecAugment; on the cached trunk
    features when the cache is on); ``mixup_alpha`` > 0 mixes pairs of examples and their
    targets with weight Beta(alpha, alpha); ``label_smoothing`` as torch's cross-entropy.

    ``select_epoch``: with a validation set, keep the weights of the epoch with the lowest
    validation loss (not the last one); ``patience`` > 0 stops after that many epochs
    without improvement. The validation set must come from the training speakers, never
    from the test set, or the test figures are tuned on.
    """

    epochs: int = TRAIN_DEFAULTS["epochs"]
    batch_size: int = TRAIN_DEFAULTS["batch_size"]
    lr: float = TRAIN_DEFAULTS["lr"]
    momentum: float = TRAIN_DEFAULTS["momentum"]
    weight_decay: float = TRAIN_DEFAULTS["weight_decay"]
    lr_gamma: float = TRAIN_DEFAULTS["lr_gamma"]
    lr_step_epochs: int = TRAIN_DEFAULTS["lr_step_epochs"]
    optimizer: Optimizer = TRAIN_DEFAULTS["optimizer"]
    schedule: Schedule = TRAIN_DEFAULTS["schedule"]
    warmup_epochs: float = TRAIN_DEFAULTS["warmup_epochs"]
    spec_augment_masks: int = TRAIN_DEFAULTS["spec_augment_masks"]
    spec_augment_width: float = TRAIN_DEFAULTS["spec_augment_width"]
    mixup_alpha: float = TRAIN_DEFAULTS["mixup_alpha"]
    label_smoothing: float = TRAIN_DEFAULTS["label_smoothing"]
    select_epoch: bool = TRAIN_DEFAULTS["select_epoch"]
    patience: int = TRAIN_DEFAULTS["patience"]
    cache_trunk_features: bool = TRAIN_DEFAULTS["cache_trunk_features"]
    class_weighting: ClassWeighting = TRAIN_DEFAULTS["class_weighting"]
    seed: int = 0
    device: str | None = None  # None: emotions.ser.device.choose_device (SERSITE_DEVICE)
    num_threads: int | None = None  # CPU threads for this run; None leaves torch's setting

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr_step_epochs < 1:
            raise ValueError("epochs, batch_size and lr_step_epochs must be at least 1")
        if self.class_weighting not in ("loss", "sampler", "none"):
            raise ValueError(f"unknown class_weighting {self.class_weighting!r}")
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}")
        if self.schedule not in ("step", "cosine"):
            raise ValueError(f"unknown schedule {self.schedule!r}")
        if self.warmup_epochs < 0 or self.patience < 0 or self.spec_augment_masks < 0:
            raise ValueError("warmup_epochs, patience and spec_augment_masks cannot be negative")
        if not (0.0 <= self.label_smoothing < 1.0 and 0.0 <= self.spec_augment_width <= 1.0):
            raise ValueError("label_smoothing must lie in [0, 1), spec_augment_width in [0, 1]")
        if self.mixup_alpha < 0:
            raise ValueError("mixup_alpha cannot be negative")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """Per-epoch history ({epoch, loss, accuracy, [val_loss, val_accuracy, val_uar,] lr,
    seconds}); ``best_epoch`` is the epoch whose weights the network keeps (the last one
    unless ``select_epoch`` chose another)."""

    history: list[dict[str, Any]] = field(default_factory=list)
    cancelled: bool = False
    batches_done: int = 0  # training batches run, over all epochs
    best_epoch: int | None = None
    stopped_early: bool = False


class _Cancelled(Exception):
    """Raised inside the loop when should_cancel() says so; train() turns it into a result."""


def train(
    net: SERNetwork,
    images: ImageSource,
    labels: torch.Tensor | Sequence[int] | np.ndarray,
    config: TrainConfig | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCallback | None = None,
    val: tuple[ImageSource, torch.Tensor | Sequence[int] | np.ndarray] | None = None,
) -> TrainResult:
    """Fine-tune ``net``'s head on ``images`` with integer ``labels`` (in place).

    Progress events (every batch; throttle in the caller) are dicts with ``stage``
    ("features" while caching the trunk, "train" while training), ``epoch``, ``epochs``,
    ``batch``, ``batches``, ``loss`` and ``accuracy`` (running means over the epoch; None
    while caching) and ``eta_s`` (seconds left in this stage). The last "train" event of
    each epoch also has ``epoch_done`` True and the epoch's history entry.

    ``should_cancel`` is polled before every batch; on True the run stops and returns
    with ``cancelled`` True and the history of the epochs completed so far (the network
    keeps the updates made before the cancel). The network is left in eval mode on
    ``config.device``.
    """
    config = config or TrainConfig()
    device = choose_device(config.device)
    y = _as_labels(labels, net.num_classes)
    val_y = _as_labels(val[1], net.num_classes) if val is not None else None
    progress = _Progress(on_progress, config.epochs)
    cancel = should_cancel or (lambda: False)
    run = _Run(net, device, config, progress, cancel)
    with _cpu_threads(config.num_threads):
        torch.manual_seed(config.seed)
        place_network(net, device)
        try:
            return run.fit(images, y, val[0] if val is not None else None, val_y)
        except _Cancelled:
            return TrainResult(run.history, cancelled=True, batches_done=run.batches_done)
        finally:
            net.eval()


class _Run:
    """State of one training run: keeps train() readable and the cancel path simple."""

    def __init__(
        self,
        net: SERNetwork,
        device: torch.device,
        config: TrainConfig,
        progress: _Progress,
        cancel: CancelCallback,
    ) -> None:
        self.net, self.device, self.config = net, device, config
        self.progress, self.cancel = progress, cancel
        self.history: list[dict[str, Any]] = []
        self.batches_done = 0
        self.generator = torch.Generator().manual_seed(config.seed)

    def fit(
        self,
        images: ImageSource,
        y: torch.Tensor,
        val_images: ImageSource | None,
        val_y: torch.Tensor | None,
    ) -> TrainResult:
        net, config = self.net, self.config
        _check_length(images, len(y))
        if val_images is not None and val_y is not None:
            _check_length(val_images, len(val_y))
        part: nn.Module = net
        if config.cache_trunk_features and net.has_trunk:
            sources = [(images, len(y))]
            if val_images is not None and val_y is not None:
                sources.append((val_images, len(val_y)))
            cached = self.trunk_features(sources)
            images = cached[0]
            val_images = cached[1] if len(cached) > 1 else None
            part = net.head
        steps_per_epoch = len(_batches(torch.arange(len(y)), config.batch_size))
        optimizer, scheduler = _optimizer_and_schedule(net, config, steps_per_epoch)
        weight = class_weights(y, net.num_classes) if config.class_weighting == "loss" else None
        criterion = nn.CrossEntropyLoss(
            weight=weight.to(self.device) if weight is not None else None,
            label_smoothing=config.label_smoothing,
        )
        has_val = val_images is not None and val_y is not None
        best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        stopped_early = False
        # bfloat16 autocast needs no loss scaling; float16 (older GPUs) does.
        scaler = torch.amp.GradScaler(
            self.device.type, enabled=autocast_dtype(self.device) == torch.float16
        )
        self.progress.start("train")
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            loss, accuracy, batches = self.epoch(
                part, images, y, epoch, optimizer, criterion, scaler, scheduler
            )
            entry = {"epoch": epoch, "loss": loss, "accuracy": accuracy}
            if has_val:
                val_loss, val_acc, val_uar = self.evaluate(part, val_images, val_y)
                entry |= {"val_loss": val_loss, "val_accuracy": val_acc, "val_uar": val_uar}
            entry |= {"lr": lr, "seconds": time.perf_counter() - started}
            self.history.append(entry)
            self.progress.epoch_done(entry, batches)
            if has_val and config.select_epoch:
                if best is None or entry["val_loss"] < best[0]:
                    # a copy of the trained part only: the frozen trunk never changes
                    state = {k: v.detach().clone() for k, v in part.state_dict().items()}
                    best = (entry["val_loss"], epoch, state)
                elif config.patience and epoch - best[1] >= config.patience:
                    stopped_early = epoch < config.epochs
                    break
        best_epoch = self.history[-1]["epoch"]
        if best is not None:
            part.load_state_dict(best[2])
            best_epoch = best[1]
        return TrainResult(
            self.history,
            cancelled=False,
            batches_done=self.batches_done,
            best_epoch=best_epoch,
            stopped_early=stopped_early,
        )

    def epoch(
        self,
        part: nn.Module,
        images: ImageSource,
        y: torch.Tensor,
        epoch: int,
        optimizer: torch.optim.Optimizer,
        criterion: nn.Module,
        scaler: torch.amp.GradScaler,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
    ) -> tuple[float, float, int]:
        """One pass over the data; returns (mean loss, accuracy, batches)."""
        self.net.train()
        config = self.config
        batches = _batches(self._epoch_order(y), config.batch_size)
        loss_sum, correct, seen = 0.0, 0, 0
        for b, idx in enumerate(batches, 1):
            if self.cancel():
                raise _Cancelled
            x = model_input(_gather(images, idx), self.device)
            target = y[idx].to(self.device)
            x = augment.spec_augment(
                x, config.spec_augment_masks, config.spec_augment_width, self.generator
            )
            x, perm, lam = augment.mixup(x, config.mixup_alpha, self.generator)
            with autocast(self.device):
                logits = part(x)
            loss = criterion(logits.float(), target)
            if lam < 1.0:
                loss = lam * loss + (1.0 - lam) * criterion(
                    logits.float(), target[perm.to(target.device)]
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            self.batches_done += 1
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == target).sum())
            seen += len(idx)
            self.progress.train_batch(epoch, b, len(batches), loss_sum / seen, correct / seen)
        return loss_sum / seen, correct / seen, len(batches)

    def _epoch_order(self, y: torch.Tensor) -> torch.Tensor:
        if self.config.class_weighting == "sampler":
            counts = torch.bincount(y, minlength=self.net.num_classes).float()
            per_sample = 1.0 / counts[y]
            return torch.multinomial(per_sample, len(y), replacement=True, generator=self.generator)
        return torch.randperm(len(y), generator=self.generator)

    @torch.no_grad()
    def evaluate(
        self, part: nn.Module, images: ImageSource, y: torch.Tensor
    ) -> tuple[float, float, float]:
        """Unweighted mean cross-entropy, accuracy and UAR on held-out data."""
        self.net.eval()
        loss_sum = 0.0
        predicted = []
        for idx in _batches(torch.arange(len(y)), self.config.batch_size):
            x = model_input(_gather(images, idx), self.device)
            target = y[idx].to(self.device)
            with autocast(self.device):
                logits = part(x).float()
            loss_sum += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
            predicted.append(logits.argmax(1).cpu())
        pred = torch.cat(predicted)
        recalls = [
            float((pred[y == c] == c).float().mean()) for c in range(self.net.num_classes)
            if bool((y == c).any())
        ]  # fmt: skip
        return loss_sum / len(y), float((pred == y).float().mean()), float(np.mean(recalls))

    @torch.no_grad()
    def trunk_features(self, sources: list[tuple[ImageSource, int]]) -> list[torch.Tensor]:
        """Run the frozen trunk once over every source; one feature tensor per source."""
        self.net.trunk.eval()
        self.progress.start("features")
        bs = self.config.batch_size
        total = sum(math.ceil(n / bs) for _, n in sources)
        done = 0
        out: list[torch.Tensor] = []
        for images, n in sources:
            features: torch.Tensor | None = None
            for start in range(0, n, bs):
                if self.cancel():
                    raise _Cancelled
                idx = torch.arange(start, min(n, start + bs))
                with autocast(self.device):
                    z = self.net.trunk(model_input(_gather(images, idx), self.device))
                if features is None:
                    features = _empty_like_batch(z, n)
                features[start : start + len(idx)] = z
                done += 1
                self.progress.features_batch(done, total)
            assert features is not None  # n >= 1 is checked by _as_labels
            out.append(features)
        return out


def _optimizer_and_schedule(
    net: SERNetwork, config: TrainConfig, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The optimiser and a per-batch learning-rate factor (warm-up, then step or cosine)."""
    params = [p for p in net.head.parameters() if p.requires_grad]
    if config.optimizer == "adamw":
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(
            params, lr=config.lr, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    warmup = round(config.warmup_epochs * steps_per_epoch)
    total = config.epochs * steps_per_epoch

    def factor(step: int) -> float:
        # ``step`` batches done; the factor applies to the next batch
        if step < warmup:
            return (step + 1) / warmup
        if config.schedule == "cosine":
            progress = (step - warmup) / max(total - warmup, 1)
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        # the method's step decay, per epoch (torch's StepLR)
        return config.lr_gamma ** ((step // steps_per_epoch) // config.lr_step_epochs)

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _empty_like_batch(z: torch.Tensor, n: int) -> torch.Tensor:
    fmt = torch.channels_last if z.is_cuda and z.dim() == 4 else torch.contiguous_format
    return torch.empty((n, *z.shape[1:]), dtype=z.dtype, device=z.device, memory_format=fmt)


def _batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    batches = list(torch.split(order, batch_size))
    # A last batch of one sample breaks BatchNorm in train mode when the spatial size is 1
    # and gives a noisy step; fold it into the batch before.
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _gather(images: ImageSource, idx: torch.Tensor) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return images[idx.to(images.device)]
    if isinstance(images, np.ndarray):
        return torch.from_numpy(images[idx.numpy()])
    if hasattr(images, "__getitem__") and hasattr(images, "__len__"):
        items = [images[int(i)] for i in idx]
        return torch.stack([it[0] if isinstance(it, (tuple, list)) else it for it in items])
    if callable(images):
        return images(idx)
    raise TypeError(f"cannot take image batches from a {type(images).__name__}")


def _check_length(images: ImageSource, n: int) -> None:
    if hasattr(images, "__len__") and len(images) != n:
        raise ValueError(f"{len(images)} images but {n} labels")


def _as_labels(labels: torch.Tensor | Sequence[int] | np.ndarray, num_classes: int) -> torch.Tensor:
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1).cpu()
    if len(y) == 0:
        raise ValueError("no training examples")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}); got {int(y.min())}..{int(y.max())}"
        )
    return y


def class_weights(
    labels: torch.Tensor | Sequence[int] | np.ndarray, num_classes: int
) -> torch.Tensor:
    """Cross-entropy class weights n / (present classes x count), 0 for absent classes.

    Inversely proportional to class size and averaging 1 per sample (scikit-learn's
    "balanced"), so the loss keeps its scale while each class counts equally.
    """
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1)
    counts = torch.bincount(y, minlength=num_classes).double()
    present = int((counts > 0).sum())
    weights = torch.zeros(num_classes, dtype=torch.double)
    mask = counts > 0
    weights[mask] = len(y) / (present * counts[mask])
    return weights.float()


class _Progress:
    """Builds the progress events and their time-left estimates."""

    def __init__(self, callback: ProgressCallback | None, epochs: int) -> None:
        self.callback, self.epochs = callback, epochs
        self.stage_started: dict[str, float] = {}
        self.train_done = 0

    def start(self, stage: str) -> None:
        self.stage_started[stage] = time.perf_counter()

    def features_batch(self, done: int, total: int) -> None:
        eta = self._eta("features", done, total)
        self._emit("features", 0, done, total, None, None, eta)

    def train_batch(self, epoch: int, batch: int, batches: int, loss: float, acc: float) -> None:
        self.train_done += 1
        total = self.epochs * batches
        eta = self._eta("train", self.train_done, total)
        self._emit("train", epoch, batch, batches, loss, acc, eta)

    def epoch_done(self, entry: dict[str, Any], batches: int) -> None:
        if self.callback is None:
            return
        eta = self._eta("train", self.train_done, self.epochs * batches)
        event = self._event("train", entry["epoch"], batches, batches, None, None, eta)
        self.callback(event | entry | {"epoch_done": True})

    def _eta(self, stage: str, done: int, total: int) -> float:
        started = self.stage_started.setdefault(stage, time.perf_counter())
        elapsed = time.perf_counter() - started
        return elapsed / max(done, 1) * max(total - done, 0)

    def _emit(self, stage: str, *args: Any) -> None:
        if self.callback is not None:
            self.callback(self._event(stage, *args))

    def _event(
        self,
        stage: str,
        epoch: int,
        batch: int,
        batches: int,
        loss: float | None,
        accuracy: float | None,
        eta_s: float,
    ) -> dict[str, Any]:
        return {
            "stage": stage,
            "epoch": epoch,
            "epochs": self.epochs,
            "batch": batch,
            "batches": batches,
            "loss": loss,
            "accuracy": accuracy,
            "eta_s": eta_s,
        }


@contextlib.contextmanager
def _cpu_threads(num_threads: int | None) -> Iterator[None]:
    if num_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------
# Prediction and splits


def predict_proba(
    net: SERNetwork,
    images: torch.Tensor | Iterable[Any],
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Softmax probabilities (N, num_classes) as float32.

    ``images`` is a (N, 3, H, W) tensor, or an iterable of batches (4-D tensors or tuples
    whose first item is one) or of single (3, H, W) images, which are batched here.
    ``net`` is moved to ``device`` (default: choose_device) and left in eval mode.
    """
    device = choose_device(device)
    place_network(net, device)
    net.eval()
    out: list[torch.Tensor] = []
    with torch.no_grad(), autocast(device):
        for batch in _inference_batches(images, batch_size):
            logits = net(model_input(batch, device)).float()
            out.append(torch.softmax(logits, dim=1).cpu())
    if not out:
        return np.zeros((0, net.num_classes), dtype=np.float32)
    return torch.cat(out).numpy()


def aggregate_probabilities(proba: np.ndarray, groups: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Block probabilities (N, classes) pooled over each group (an utterance): every block
    gets its group's normalised mean log-probability, so all blocks of an utterance share
    one prediction. Blocks are still counted one by one by the metrics."""
    proba = np.asarray(proba, dtype=np.float64)
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    log_p = np.log(np.clip(proba, 1e-7, 1.0))
    sums = np.zeros((inverse.max() + 1 if len(inverse) else 0, proba.shape[1]))
    np.add.at(sums, inverse, log_p)
    counts = np.bincount(inverse)[:, None]
    mean = sums[inverse] / counts[inverse]
    pooled = np.exp(mean - mean.max(axis=1, keepdims=True))
    return (pooled / pooled.sum(axis=1, keepdims=True)).astype(np.float32)


def _inference_batches(
    images: torch.Tensor | Iterable[Any], batch_size: int
) -> Iterator[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        yield from torch.split(images.unsqueeze(0) if images.dim() == 3 else images, batch_size)
        return
    pending: list[torch.Tensor] = []
    for item in images:
        x = item[0] if isinstance(item, (tuple, list)) else item
        if x.dim() == 4:
            if pending:
                yield torch.stack(pending)
                pending = []
            yield x
            continue
        pending.append(x)
        if len(pending) == batch_size:
            yield torch.stack(pending)
            pending = []
    if pending:
        yield torch.stack(pending)


def validation_split(
    groups: Sequence[Any] | np.ndarray, fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx) over items whose group (speaker, else utterance) is ``groups``:
    about ``fraction`` of the groups, drawn with ``seed``, form the validation split, so no
    group is on both sides (a block's noisy copies share its group). At least one group
    stays for training; with a single group the validation split is empty.

    This is the split for choosing the epoch (``select_epoch``): it comes from the training
    side only. Choosing on the test set would tune the very figures reported."""
    keys = np.asarray(groups)
    unique = np.unique(keys)
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must lie strictly between 0 and 1")
    n_val = min(max(1, round(fraction * len(unique))), len(unique) - 1)
    chosen = np.random.default_rng(seed).permutation(unique)[:n_val]
    is_val = np.isin(keys, chosen)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def kfold_indices(
    labels: Sequence[Any] | np.ndarray | torch.Tensor,
    k: int = 5,
    seed: int = 0,
    *,
    groups: Sequence[Any] | np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (train_idx, test_idx) pairs, shuffled with ``seed``.

    With ``groups`` (utterance, speaker or session ids) no group is split between train
    and test: blocks of one utterance must never land on both sides.
    """
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if groups is None:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(len(y)), y)
    else:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(np.zeros(len(y)), y, np.asarray(groups))
    return [(train_idx, test_idx) for train_idx, test_idx in splits]
