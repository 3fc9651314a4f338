"""Trained models ready for analysis: where each worker keeps a model's ONNX export, and
the classifier an analysis runs.

Exports live in a worker-local folder keyed by the checkpoint's content (sha256), so a
model re-exports nowhere twice and two versions can never be confused. Training calls
:func:`export_trained_model` right after saving a model, calibrating on its own training
blocks; a worker that finds no export (an older model, or another host) makes one on the
first analysis, calibrated on that lecture's first blocks, and the card says which.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from django.conf import settings

from emotions.models import EmotionModel
from emotions.services.files import local_copy

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def export_root() -> Path:
    # A cache, not data: outside the media folder (which may be shared or remote), so stored
    # files stay exactly those that rows own.
    return Path(settings.INFERENCE_DIR)


def _content_key(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()[:24]


def export_dir_for(checkpoint: Path) -> Path:
    """The folder holding the export of the checkpoint file ``checkpoint``."""
    return export_root() / _content_key(checkpoint)


def export_trained_model(model: EmotionModel, net: Any, calibration_images: Any) -> dict:
    """Export a freshly trained ``net`` (the network saved as ``model.weights``) for fast
    CPU analysis, calibrated on ``calibration_images`` (training model input, (N, 3, H, W)).
    Returns the card; a failure is logged and returns {} (analysis then exports lazily)."""
    from emotions.ser.onnx_runtime import export_for_inference

    try:
        with local_copy(model.weights) as path:
            dest = export_dir_for(Path(path))
        return export_for_inference(net, calibration_images, dest)
    except Exception:
        logger.exception("ONNX export of model %s failed", model.pk)
        return {}


def classifier_for(model: EmotionModel, recording: Path):
    """The classifier for ``model`` in this worker: PyTorch on CUDA, else ONNX Runtime
    (exported now, calibrated on ``recording``, when this worker has no export yet)."""
    from emotions.ser.inference import load_classifier

    with local_copy(model.weights) as checkpoint:
        checkpoint = Path(checkpoint)
        return load_classifier(
            checkpoint, export_dir_for(checkpoint), list(model.labels), recording=recording
        )
