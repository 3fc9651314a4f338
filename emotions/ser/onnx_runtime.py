"""Fast CPU inference: a trained network exported to ONNX, int8-quantised, run by ONNX Runtime.

The PyTorch network stays the reference (and the path for training and for CUDA). For CPU
analysis :func:`export_for_inference` writes, beside each other in one folder:

- ``model.fp32.onnx``: the network with every BatchNorm folded into its convolution
  (``networks.for_inference``), NCHW float32 input, logits out;
- ``model.int8.onnx``: the same graph statically quantised (QDQ, int8 weights per channel,
  uint8 activations) with ranges calibrated on the model's own training blocks; when the
  whole network in int8 disagrees, the trained head stays fp32 and only the frozen trunk
  is quantised;
- ``inference.json``: the card: which file to run, its precision, and how closely it agreed
  with PyTorch on held-out blocks (top-1 agreement and largest probability difference).

The int8 model is used only when it agrees with PyTorch on the held-out blocks (top-1 at
least 99 %, every probability within 0.02); otherwise the card says why and names the fp32
file. Running (:class:`OnnxModel`) needs numpy and onnxruntime only: importing this module
does not import torch, so a worker that only analyses stays light.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FP32_FILE = "model.fp32.onnx"
INT8_FILE = "model.int8.onnx"
CARD_FILE = "inference.json"
CARD_FORMAT = 1
OPSET = 17

# The fast path must agree with PyTorch on held-out blocks to be used (issue 13).
MIN_TOP1_AGREEMENT = 0.99
MAX_PROBABILITY_DIFFERENCE = 0.02
# Calibration takes at most this many images (a few hundred are plenty for min/max ranges);
# this share of the given images is kept out of calibration to check agreement on.
MAX_CALIBRATION_IMAGES = 256
HELDOUT_FRACTION = 0.25
MIN_HELDOUT_IMAGES = 8

# Threads per ONNX Runtime session. Measured on the 2-core CPU (bench/lecture.py): one
# intra-op thread with the spectrograms of the next batch computed alongside beats two
# threads that stall each other at every operator's barrier.
DEFAULT_THREADS = 1


class ExportError(RuntimeError):
    """The network could not be exported to ONNX."""


@dataclass(frozen=True)
class Agreement:
    top1: float  # share of held-out images where both give the same class
    max_difference: float  # largest absolute probability difference over images and classes
    images: int

    @property
    def acceptable(self) -> bool:
        return self.top1 >= MIN_TOP1_AGREEMENT and self.max_difference <= MAX_PROBABILITY_DIFFERENCE

    def as_dict(self) -> dict[str, Any]:
        return {
            "top1": round(self.top1, 4),
            "max_difference": round(self.max_difference, 5),
            "images": self.images,
        }


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def compare(reference: np.ndarray, candidate: np.ndarray) -> Agreement:
    """How far ``candidate`` probabilities (N, k) are from the ``reference`` ones."""
    if len(reference) == 0:
        return Agreement(1.0, 0.0, 0)
    top1 = float(np.mean(reference.argmax(axis=1) == candidate.argmax(axis=1)))
    return Agreement(top1, float(np.abs(reference - candidate).max()), len(reference))


# --- running ----------------------------------------------------------------------------------


class OnnxModel:
    """An ONNX Runtime session on the CPU for (B, 3, H, W) float32 input -> probabilities."""

    def __init__(self, path: str | os.PathLike[str], threads: int = DEFAULT_THREADS) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # spinning threads burn the other core that the spectrograms need
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: images})[0]

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(B, 3, H, W) float32 -> (B, classes) float32 softmax probabilities."""
        return softmax(self.logits(np.ascontiguousarray(images, dtype=np.float32)))


def read_card(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The card written by :func:`export_for_inference`, or None when there is none (or it
    is from another format, or names a file that is missing)."""
    path = Path(folder) / CARD_FILE
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        return None
    if not (Path(folder) / str(card.get("file", ""))).is_file():
        return None
    return card


def load(folder: str | os.PathLike[str], threads: int = DEFAULT_THREADS) -> tuple[OnnxModel, dict]:
    """The model the card in ``folder`` chose, with the card."""
    card = read_card(folder)
    if card is None:
        raise FileNotFoundError(f"no exported model in {folder}")
    return OnnxModel(Path(folder) / card["file"], threads=threads), card


# --- exporting (needs torch) -----------------------------------------------------------------


def export_for_inference(
    net: Any,
    calibration_images: Any,
    dest_dir: str | os.PathLike[str],
    *,
    calibration_source: str = "training blocks",
    heldout_images: Any = None,
) -> dict[str, Any]:
    """Export ``net`` (a SERNetwork) to ONNX in ``dest_dir``, quantise it to int8 calibrated
    on ``calibration_images`` ((N, 3, H, W) model input, tensor or array, at the size the
    model was trained at), check both against PyTorch, and write the card; returns the card.

    ``heldout_images`` are the images the agreement is measured on; by default the last
    quarter of ``calibration_images`` is kept out of calibration for it. Files are written
    to a temporary name first and renamed, so a reader never sees half a model.
    """
    import torch

    from . import networks

    images = _as_array(calibration_images)
    if images.ndim != 4 or images.shape[1] != 3 or len(images) == 0:
        raise ValueError(f"calibration images must be (N, 3, H, W), got {images.shape}")
    if heldout_images is None:
        n_held = max(MIN_HELDOUT_IMAGES, int(len(images) * HELDOUT_FRACTION))
        n_held = min(n_held, len(images) // 2) if len(images) > 1 else 0
        calibration, heldout = images[: len(images) - n_held], images[len(images) - n_held :]
    else:
        calibration, heldout = images, _as_array(heldout_images)
    if len(heldout) == 0:
        heldout = calibration
    calibration = calibration[:MAX_CALIBRATION_IMAGES]

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    folded = networks.for_inference(net).to("cpu").eval()
    size = int(images.shape[-1])
    with torch.no_grad():
        reference = torch.softmax(folded(torch.from_numpy(heldout)).float(), dim=1).numpy()

    with tempfile.TemporaryDirectory(dir=dest, prefix=".export-") as tmp:
        tmp_dir = Path(tmp)
        fp32 = tmp_dir / FP32_FILE
        _export_onnx(folded, fp32, size)
        fp32_agreement = compare(reference, OnnxModel(fp32).predict_proba(heldout))
        card: dict[str, Any] = {
            "format": CARD_FORMAT,
            "backbone": getattr(net, "backbone", ""),
            "image_size": size,
            "num_classes": int(reference.shape[1]),
            "calibration": f"{len(calibration)} {calibration_source}",
            "heldout_images": len(heldout),
            "fp32_agreement": fp32_agreement.as_dict(),
        }
        int8 = tmp_dir / INT8_FILE
        # First the whole network in int8; if that disagrees, the trained head in fp32 and
        # only the frozen ImageNet trunk (most of the arithmetic) in int8.
        why, chosen = "", None
        for scope, exclude_prefix in (("int8", None), ("int8 trunk, fp32 head", "/head")):
            try:
                _quantise(fp32, int8, calibration, tmp_dir, exclude_prefix)
                agreement = compare(reference, OnnxModel(int8).predict_proba(heldout))
            except Exception as exc:  # a graph the quantiser cannot handle: fp32 still works
                log.warning("int8 quantisation (%s) failed: %s", scope, exc)
                why = f"{why}; " if why else ""
                why += f"{scope}: quantisation failed ({exc})"
                continue
            card.setdefault("int8_agreement", {})[scope] = agreement.as_dict()
            if agreement.acceptable:
                chosen = scope
                break
            why = f"{why}; " if why else ""
            why += f"{scope}: {_disagreement(agreement)}"
        if chosen is not None:
            card.update(file=INT8_FILE, precision=chosen)
        else:
            int8.unlink(missing_ok=True)
            card.update(file=FP32_FILE, precision="fp32", int8_rejected=why)
        card["runtime"] = f"onnxruntime {card['precision']}"
        for name in (FP32_FILE, INT8_FILE):
            if (tmp_dir / name).exists():
                os.replace(tmp_dir / name, dest / name)
        (tmp_dir / CARD_FILE).write_text(json.dumps(card, indent=1), encoding="utf-8")
        os.replace(tmp_dir / CARD_FILE, dest / CARD_FILE)
    return card


def _disagreement(agreement: Agreement) -> str:
    return (
        f"int8 agreed with PyTorch on {100 * agreement.top1:.1f}% of {agreement.images} "
        f"held-out blocks (needs {100 * MIN_TOP1_AGREEMENT:.0f}%), largest probability "
        f"difference {agreement.max_difference:.3f} (allowed {MAX_PROBABILITY_DIFFERENCE})"
    )


def _as_array(images: Any) -> np.ndarray:
    if hasattr(images, "detach"):
        images = images.detach().cpu().contiguous().numpy()
    return np.ascontiguousarray(images, dtype=np.float32)


def _fixed_pooling(net: Any, dummy: Any) -> None:
    """Replace each adaptive average pooling whose windows are all alike at this input size
    with the plain average pooling it equals (AlexNet at 256 x 256 pools 7 x 7 to 6 x 6:
    windows of 2, stride 1), which the ONNX exporter can write; it cannot write the
    adaptive one when the output size does not divide the input size."""
    import torch

    seen: dict[str, tuple[int, int]] = {}
    hooks = [
        module.register_forward_pre_hook(
            lambda m, args, name=name: seen.__setitem__(name, tuple(args[0].shape[-2:]))
        )
        for name, module in net.named_modules()
        if isinstance(module, torch.nn.AdaptiveAvgPool2d)
    ]
    with torch.no_grad():
        net(dummy)
    for hook in hooks:
        hook.remove()
    for name, (h, w) in seen.items():
        module = net.get_submodule(name)
        out = module.output_size
        oh, ow = (out, out) if isinstance(out, int) else out
        if (oh, ow) == (h, w) or h < (oh or h) or w < (ow or w):
            continue
        kernel = (h - (oh - 1) * (h // oh), w - (ow - 1) * (w // ow))
        stride = (h // oh, w // ow)
        plain = torch.nn.AvgPool2d(kernel, stride)
        if plain(torch.zeros(1, 1, h, w)).shape[-2:] != (oh, ow):
            continue
        probe = torch.randn(1, 1, h, w)
        if not torch.allclose(plain(probe), module(probe), atol=1e-6):
            continue  # uneven windows: leave it (the export then says why it cannot)
        parent_name, _, child = name.rpartition(".")
        setattr(net.get_submodule(parent_name) if parent_name else net, child, plain)


def _export_onnx(folded: Any, path: Path, size: int) -> None:
    import torch

    dummy = torch.zeros((2, 3, size, size), dtype=torch.float32)
    folded = copy.deepcopy(folded)  # the pooling swap must not touch the caller's network
    _fixed_pooling(folded, dummy)
    try:
        with warnings.catch_warnings():
            # the TorchScript exporter is "legacy" but needs no onnxscript, and works here
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                folded,
                (dummy,),
                str(path),
                dynamo=False,  # the TorchScript exporter: traces fx graphs, no onnxscript
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=OPSET,
            )
    except Exception as exc:
        raise ExportError(f"cannot export the network to ONNX: {exc}") from exc


class _Calibration:
    """onnxruntime.quantization's CalibrationDataReader over an array of images."""

    def __init__(self, images: np.ndarray, input_name: str, batch: int = 16) -> None:
        self._batches: Iterator[np.ndarray] = (
            images[i : i + batch] for i in range(0, len(images), batch)
        )
        self.input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self.input_name: batch}


def _quantise(
    fp32: Path, int8: Path, calibration: np.ndarray, tmp_dir: Path, exclude_prefix: str | None
) -> None:
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = tmp_dir / "prepared.onnx"
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    excluded = []
    if exclude_prefix:
        graph = onnx.load(str(prepared), load_external_data=False).graph
        excluded = [node.name for node in graph.node if node.name.startswith(exclude_prefix)]
    quantize_static(
        str(prepared),
        str(int8),
        _Calibration(calibration, "input"),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=excluded,
    )
    prepared.unlink(missing_ok=True)


def runtime_label(card: dict[str, Any] | None, device: str = "cpu") -> str:
    """What produced a report, for its card: "onnxruntime int8" or "torch fp32 cuda"."""
    if card is not None:
        return str(card.get("runtime") or f"onnxruntime {card.get('precision', 'fp32')}")
    return f"torch fp32 {device}"


def labels_match(card: dict[str, Any], labels: Sequence[str]) -> bool:
    return int(card.get("num_classes", -1)) == len(labels)
