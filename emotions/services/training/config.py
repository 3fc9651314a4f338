"""A run's settings, checked against the ML core's one definition (constants.TRAIN_SETTINGS).

Every message names the setting and what it may be, so the API, the Train page and
``manage.py train`` can show it as it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from emotions.ser.constants import DEFAULT_SNRS_DB, TRAIN_DEFAULTS, TRAIN_SETTINGS
from emotions.services.errors import ServiceError

DEFAULT_KFOLD = 5
MAX_SNRS = 6
SNR_RANGE_DB = (-20.0, 60.0)
# Chosen outside the settings object (they have fields of their own in the API and CLI) but
# stored in the run's config beside the settings.
RUN_KEYS = ("backbone", "kfold")
# Lists are stored as JSON lists; the defaults say so too, so a default run's config and a
# stored one compare equal.
CONFIG_DEFAULTS: dict[str, Any] = {
    k: list(v) if isinstance(v, tuple) else v for k, v in TRAIN_DEFAULTS.items()
}


def clean_config(overrides: dict) -> dict:
    """The run's settings: the defaults with checked overrides."""
    if not isinstance(overrides, dict):
        raise ServiceError("Settings must be an object of name: value.")
    allowed = sorted(TRAIN_SETTINGS)
    unknown = sorted(set(overrides) - set(allowed) - set(RUN_KEYS))
    if unknown:
        raise ServiceError(
            f"Unknown setting {', '.join(unknown)}; the settings are {', '.join(allowed)}."
        )
    config = dict(CONFIG_DEFAULTS)
    for key, value in overrides.items():
        setting = TRAIN_SETTINGS.get(key)
        if setting is None:
            continue  # backbone and kfold: checked by the caller
        if setting.kind in (int, float):
            config[key] = number(key, value, setting.kind, setting.low, setting.high)
        elif setting.kind is bool:
            if not isinstance(value, bool):
                raise ServiceError(f"{key} must be true or false.")
            config[key] = value
        elif setting.choices:
            config[key] = choice(value, setting.choices, key)
        elif setting.kind is list:
            config[key] = names(key, value)
        else:
            config[key] = str(value or "").strip()[:100]
    return config


def clean_snrs(snrs: Sequence[float] | None) -> list[float]:
    """SNRs in dB, each once, in the order given (default 15, 20, 40)."""
    if snrs is None or (isinstance(snrs, (list, tuple)) and not snrs):
        snrs = DEFAULT_SNRS_DB
    if not isinstance(snrs, (list, tuple)):
        raise ServiceError("SNRs must be a list of numbers in dB, e.g. [15, 20, 40].")
    out: list[float] = []
    for value in snrs:
        snr = number("SNR", value, float, *SNR_RANGE_DB)
        if snr not in out:
            out.append(snr)
    if len(out) > MAX_SNRS:
        raise ServiceError(f"At most {MAX_SNRS} SNRs, please.")
    return out


MAX_NAMES, MAX_NAME_LENGTH = 100, 100


def names(what: str, value: Any) -> list[str]:
    """A list of names (e.g. speakers) from a list or a comma-separated string; each once."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ServiceError(f'{what} must be a list of names, e.g. ["spk1", "spk2"].')
    out = list(dict.fromkeys(v.strip() for v in value if v.strip()))
    if len(out) > MAX_NAMES or any(len(v) > MAX_NAME_LENGTH for v in out):
        raise ServiceError(f"{what}: at most {MAX_NAMES} names of {MAX_NAME_LENGTH} characters.")
    return out


def clean_seed(seed: Any) -> int:
    return number("seed", seed, int, 0, 2**31 - 1)


def clean_kfold(kfold: Any) -> int | None:
    """None for one split; True for the default number of folds; else 2 to 10."""
    if kfold is None or kfold is False or kfold == "":
        return None
    if kfold is True:
        return DEFAULT_KFOLD
    return number("k-fold", kfold, int, 2, 10)


def choice(value: Any, choices: Iterable[str], what: str) -> str:
    choices = list(choices)
    if value not in choices:
        raise ServiceError(f"Unknown {what} {value!r}; choose one of {', '.join(choices)}.")
    return str(value)


def number(what: str, value: Any, kind: type, low: float | None, high: float | None) -> Any:
    """``value`` as ``kind`` (int or float) within [low, high], or a ServiceError saying why."""
    if isinstance(value, bool):
        raise ServiceError(f"{what} must be a number.")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ServiceError(f"{what} must be a number, not {value!r}.") from None
    low = -math.inf if low is None else low
    high = math.inf if high is None else high
    if not math.isfinite(result) or not low <= result <= high:
        raise ServiceError(f"{what} must be between {low:g} and {high:g}.")
    if kind is int:
        if result != int(result):
            raise ServiceError(f"{what} must be a whole number.")
        return int(result)
    return result
