"""Which device this worker computes on: CUDA when present, else the CPU."""

import os
import socket
from functools import lru_cache


@lru_cache(maxsize=1)
def device_name() -> str:
    """'cuda' or 'cpu' (SERSITE_DEVICE forces one, e.g. to keep a GPU free)."""
    forced = os.environ.get("SERSITE_DEVICE", "").strip().lower()
    if forced in {"cpu", "cuda"}:
        return forced
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=1)
def device_description() -> str:
    """A human description, e.g. 'cuda (NVIDIA H100 80GB HBM3)' or 'cpu (2 threads)'."""
    import torch

    if device_name() == "cuda":
        return f"cuda ({torch.cuda.get_device_name(0)})"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads != 1 else ''})"


def worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
