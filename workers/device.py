"""What this worker computes on, for its jobs and its announcement: the ML core decides
(emotions.ser.device, honouring SERSITE_DEVICE); this module only reports it."""

import os
import socket


def device_name() -> str:
    """'cuda' or 'cpu': the type of the device the ML core computes on."""
    from emotions.ser.device import choose_device

    return choose_device().type


def device_description() -> str:
    """A human description, e.g. 'cuda (NVIDIA H100 80GB HBM3)' or 'cpu (2 threads)'."""
    from emotions.ser.device import describe_device

    return describe_device()


def worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
