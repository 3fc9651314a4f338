"""Which device the ML core computes on: the one place that decides.

``SERSITE_DEVICE`` chooses for a whole process: ``cpu`` (e.g. to keep a GPU free for
another worker), ``cuda`` (or ``cuda:N``), or ``auto`` (the default: CUDA when present, else
the CPU). Everything that computes (training, inference, spectrograms) takes its device
from :func:`choose_device`, and a worker reports the same device with its jobs, so a job
that says "cpu" ran on the CPU.
"""

from __future__ import annotations

import logging
import os

import torch

logger = logging.getLogger(__name__)

DEVICE_ENV = "SERSITE_DEVICE"
AUTO = "auto"


def choose_device(preference: str | torch.device | None = None) -> torch.device:
    """The device to compute on.

    ``preference``: a device ("cpu", "cuda", "cuda:1", a torch.device) or "auto"; None reads
    SERSITE_DEVICE (unset or empty means auto). Auto is CUDA when present, else the CPU. CUDA
    asked for on a machine without it falls back to the CPU with a warning rather than
    failing every job. An unknown name raises ValueError.
    """
    if isinstance(preference, torch.device):
        wanted = str(preference)
    elif preference is None:
        wanted = os.environ.get(DEVICE_ENV, "").strip().lower() or AUTO
    else:
        wanted = preference.strip().lower() or AUTO
    if wanted == AUTO:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(wanted)
    except RuntimeError:
        raise ValueError(
            f"Unknown device {wanted!r} (from {DEVICE_ENV} or a setting): use cpu, cuda or auto."
        ) from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"Unsupported device {wanted!r}: use cpu, cuda or auto.")
    if device.type == "cuda" and not torch.cuda.is_available():
        logger.warning(
            "%s asks for %s but CUDA is not available: using the CPU", DEVICE_ENV, wanted
        )
        return torch.device("cpu")
    return device


def describe_device(device: torch.device | None = None) -> str:
    """For people: e.g. 'cuda (NVIDIA H200)' or 'cpu (2 threads)'; default the chosen device."""
    device = device if device is not None else choose_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads != 1 else ''})"
