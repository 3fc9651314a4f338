"""Noise mix-up: mixing blocks with noise at a target SNR, and peak normalisation.

SNR definition used throughout: the whole-block RMS ratio,

    SNR_dB = 20 * log10( rms(clean block) / rms(lambda * noise segment) )

over all samples of the block (padding and pauses included). A block that is mostly pause
therefore carries more noise, relative to its speech, than its nominal SNR suggests; that is
the method's definition and what audiomentations' ``AddBackgroundNoise`` does too.

Mixing: ``y = clean + lambda * noise`` with ``lambda = rms(clean) / (rms(noise) * 10**(snr/20))``,
then infinity-norm normalisation (``y / max|y|``) as the method does before the spectrogram.
Noise segments come from one noise signal already at 16 kHz (decode it with
:func:`emotions.ser.audio.decode`, which resamples): each block gets a segment starting at a
random, seeded offset; a noise shorter than a block is looped.

Silence is defined, never divided by: a block or a noise segment whose RMS is at most
``SILENT_RMS`` is left clean, with gain 0 and a reason in :class:`MixResult`.

All functions take torch tensors (numpy arrays are converted) and work on any device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .constants import DEFAULT_SNRS_DB, SILENT_RMS

SKIP_SILENT_BLOCK = "silent block"
SKIP_SILENT_NOISE = "silent noise"

TensorLike = torch.Tensor | np.ndarray


def _as_float_tensor(x: TensorLike) -> torch.Tensor:
    t = torch.as_tensor(x)
    return t if t.is_floating_point() else t.to(torch.float32)


def rms(x: TensorLike, dim: int = -1) -> torch.Tensor:
    """Root mean square along ``dim``."""
    x = _as_float_tensor(x)
    return x.square().mean(dim=dim).sqrt()


def _loopable(noise: torch.Tensor, length: int) -> torch.Tensor:
    """``noise`` extended by looping so that every offset in ``[0, L)`` has ``length``
    samples after it when the noise is short (a long noise is returned as is)."""
    n = noise.shape[-1]
    if n >= length:
        return noise
    repeats = -(-(n + length - 1) // n)  # ceil
    return noise.repeat(repeats)[: n + length - 1]


def _offset_range(n_noise: int, length: int) -> int:
    """Number of valid offsets: a long noise is cropped without wrapping, a short one is
    looped from any of its samples."""
    return n_noise - length + 1 if n_noise >= length else n_noise


def crop_or_loop(noise: TensorLike, length: int, offset: int) -> torch.Tensor:
    """``length`` samples of a 1-D ``noise`` starting at ``offset``.

    A noise at least ``length`` long is cropped, ``0 <= offset <= len(noise) - length``; a
    shorter noise is looped (repeated end to start), ``0 <= offset < len(noise)``.
    """
    noise = _as_float_tensor(noise)
    if noise.ndim != 1 or noise.numel() == 0:
        raise ValueError("noise must be a non-empty 1-D signal")
    if not 0 <= offset < _offset_range(noise.numel(), length):
        raise ValueError(f"offset {offset} out of range for noise of {noise.numel()} samples")
    return _loopable(noise, length)[offset : offset + length]


def noise_segments(
    noise: TensorLike, n: int, length: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` segments of ``length`` samples at random offsets: ``(segments (n, length),
    offsets (n,) int64)``. Offsets are drawn on the CPU from ``generator`` (seed it for a
    reproducible dataset); segment ``i`` equals ``crop_or_loop(noise, length, offsets[i])``."""
    noise = _as_float_tensor(noise)
    if noise.ndim != 1 or noise.numel() == 0:
        raise ValueError("noise must be a non-empty 1-D signal")
    offsets = torch.randint(0, _offset_range(noise.numel(), length), (n,), generator=generator)
    return _gather_segments(noise, offsets, length), offsets


def _gather_segments(noise: torch.Tensor, offsets: torch.Tensor, length: int) -> torch.Tensor:
    # unfold is a view of all windows, so only the chosen rows are copied.
    windows = _loopable(noise, length).unfold(0, length, 1)
    return windows[offsets.to(windows.device)]


@dataclass(frozen=True)
class MixResult:
    """Outcome of :func:`mix_at_snr` for a batch of B blocks."""

    mixed: torch.Tensor  # (B, N): clean + gain * noise, not normalised
    gain: torch.Tensor  # (B,) float64 lambda; 0 where skipped
    skipped: torch.Tensor  # (B,) bool: True where the block was left clean
    reasons: tuple[str | None, ...]  # per block: None, SKIP_SILENT_BLOCK or SKIP_SILENT_NOISE


def mix_at_snr(
    clean: TensorLike, noise_segments: TensorLike, snr_db: float | TensorLike
) -> MixResult:
    """Mix each clean block with its noise segment so that the mixture's whole-block SNR
    equals ``snr_db`` (a float for all blocks or a tensor (B,) per block)."""
    clean = _as_float_tensor(clean)
    noise = _as_float_tensor(noise_segments).to(device=clean.device, dtype=clean.dtype)
    if clean.ndim == 1:  # a single block
        clean, noise = clean[None], noise.reshape(1, -1)
    if clean.ndim != 2 or noise.shape != clean.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and noise {tuple(noise.shape)} differ")
    if not (torch.isfinite(clean).all() and torch.isfinite(noise).all()):
        raise ValueError("clean blocks and noise must be finite (decode() cleans NaN/Inf)")
    snr = torch.as_tensor(snr_db, dtype=torch.float64, device=clean.device)
    snr = snr.expand(clean.shape[0])
    if not torch.isfinite(snr).all():
        raise ValueError("snr_db must be finite")

    rms_clean = rms(clean).double()
    rms_noise = rms(noise).double()
    silent_block = rms_clean <= SILENT_RMS
    silent_noise = rms_noise <= SILENT_RMS
    skipped = silent_block | silent_noise
    # clamp only guards the division on rows that are skipped anyway
    gain = rms_clean / (rms_noise.clamp_min(SILENT_RMS) * 10.0 ** (snr / 20.0))
    gain = torch.where(skipped, torch.zeros_like(gain), gain)
    mixed = torch.where(skipped[:, None], clean, clean + gain.to(clean.dtype)[:, None] * noise)

    reasons = tuple(
        SKIP_SILENT_BLOCK if b else SKIP_SILENT_NOISE if n else None
        for b, n in zip(silent_block.tolist(), silent_noise.tolist(), strict=True)
    )
    return MixResult(mixed=mixed, gain=gain, skipped=skipped, reasons=reasons)


def normalise_peak(x: TensorLike, dim: int = -1) -> torch.Tensor:
    """Divide each block by its infinity norm (largest absolute sample) so its peak is 1.

    An all-zero block stays all zero (no division by zero, no NaN).
    """
    x = _as_float_tensor(x)
    peak = x.abs().amax(dim=dim, keepdim=True)
    # 1/peak is finite for any normal float; below that the block is silence, left as is.
    usable = peak > torch.finfo(x.dtype).tiny
    scale = torch.where(usable, 1.0 / torch.where(usable, peak, 1.0), 1.0)
    return x * scale


@dataclass(frozen=True)
class MixRecord:
    """Everything needed to rebuild one SNR's noisy copy of a set of blocks exactly."""

    seed: int
    snr_db: float
    noise_id: str  # whatever names the noise for the caller (file name, profile id)
    offsets: torch.Tensor  # (B,) int64: start of each block's noise segment
    gains: torch.Tensor  # (B,) float64 lambda (0 where skipped)
    reasons: tuple[str | None, ...]  # per block, see MixResult

    def rows(self) -> list[dict]:
        """One plain dict per block, ready to store next to the generated data."""
        return [
            {
                "block": i,
                "seed": self.seed,
                "snr_db": self.snr_db,
                "noise_id": self.noise_id,
                "noise_offset": int(offset),
                "gain": float(gain),
                "skipped": reason,
            }
            for i, (offset, gain, reason) in enumerate(
                zip(self.offsets.tolist(), self.gains.tolist(), self.reasons, strict=True)
            )
        ]


@dataclass(frozen=True)
class AugmentedBlocks:
    """The noisy copy of a set of blocks at one SNR (peak-normalised) and its record."""

    snr_db: float
    mixed: torch.Tensor  # (B, N)
    record: MixRecord


def augment_blocks(
    blocks: TensorLike,
    noise: TensorLike,
    snrs: Sequence[float] = DEFAULT_SNRS_DB,
    seed: int = 0,
    noise_id: str = "",
) -> list[AugmentedBlocks]:
    """The method's noise mix-up: one peak-normalised noisy copy of ``blocks`` (B, N) per SNR.

    Offsets are drawn from one CPU generator seeded with ``seed``, SNR after SNR in the order
    given, so the same arguments always give the same data; each copy's :class:`MixRecord`
    holds the offsets, so :func:`replay_mix` rebuilds it without the generator. The originals
    are not included: the caller keeps ``normalise_peak(blocks)`` as the clean copy.
    """
    blocks = _as_float_tensor(blocks)
    noise = _as_float_tensor(noise).to(device=blocks.device, dtype=blocks.dtype)
    generator = torch.Generator().manual_seed(seed)
    out = []
    for snr in snrs:
        segments, offsets = noise_segments(noise, blocks.shape[0], blocks.shape[-1], generator)
        result = mix_at_snr(blocks, segments, float(snr))
        record = MixRecord(
            seed=seed,
            snr_db=float(snr),
            noise_id=noise_id,
            offsets=offsets,
            gains=result.gain.cpu(),
            reasons=result.reasons,
        )
        out.append(AugmentedBlocks(float(snr), normalise_peak(result.mixed), record))
    return out


def replay_mix(blocks: TensorLike, noise: TensorLike, record: MixRecord) -> torch.Tensor:
    """Rebuild the peak-normalised noisy blocks described by ``record`` (same noise)."""
    blocks = _as_float_tensor(blocks)
    noise = _as_float_tensor(noise).to(device=blocks.device, dtype=blocks.dtype)
    segments = _gather_segments(noise, record.offsets, blocks.shape[-1])
    return normalise_peak(mix_at_snr(blocks, segments, record.snr_db).mixed)
