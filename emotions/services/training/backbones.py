"""Which backbones can start from ImageNet weights, told without importing torch."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

from django.conf import settings

from emotions.ser.constants import (
    BACKBONES,
    METHOD_BACKBONE,
    MOBILENET_V2_PACKAGE,
    MOBILENET_V2_RESOURCE,
    SCRATCH_PROVENANCE,
)

SCRATCH_NOTICE = SCRATCH_PROVENANCE


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
        try:
            resource = importlib.resources.files(MOBILENET_V2_PACKAGE)
        except ModuleNotFoundError:
            return False
        return resource.joinpath(*MOBILENET_V2_RESOURCE).is_file()
    return False
