"""Spectrogram images as the method makes them, batched as tensors.

Per 1 s block at 16 kHz (all constants in :mod:`emotions.ser.constants`):

1. ``power_spectrogram``: ``|STFT|**2`` with a 256-sample periodic Hamming window centred in
   an n_fft of 512, hop 62, ``center=True`` with zero padding (librosa 0.11's default
   ``pad_mode="constant"``) -> 257 frequencies x 259 frames. Same numbers as
   ``abs(librosa.stft(y, n_fft=512, hop_length=62, win_length=256, window="hamming"))**2``.
2. ``power_to_db``: ``10*log10(max(P, AMIN)) - 10*log10(max(max(P), AMIN))`` per block,
   clipped below at ``-TOP_DB``; i.e. ``librosa.power_to_db(P, ref=np.max, amin=AMIN,
   top_db=TOP_DB)`` block by block. Every image therefore spans the fixed range
   [-TOP_DB, 0] dB relative to its own loudest bin. A digitally silent block (max power at
   most AMIN) has no reference: it is set to -TOP_DB everywhere, so silence looks like the
   floor of the scale (librosa would give 0 dB, the top of the scale).
3. ``db_to_levels`` / ``db_to_rgb``: level ``floor((dB + TOP_DB) / TOP_DB * 256)`` clipped to
   0..255 (matplotlib's rule for a 256-colour map with vmin=-TOP_DB, vmax=0), looked up in
   ``JET_LUT``. Orientation as in the method's figures and ``specshow``: row 0 is the highest
   frequency (8 kHz), the last row is 0 Hz, so low frequencies are at the bottom; time runs
   left to right. Shape (B, 257, 259, 3) uint8.
4. ``to_model_input``: bilinear resize of the RGB image to 256 x 256 with antialiasing, on
   uint8 values with the result rounded to uint8 (what torchvision's ``Resize`` does to a PIL
   image, i.e. to the method's PNG files), then ``(x / 255 - mean) / std`` with ImageNet's
   mean and std. Output float32 (B, 3, 256, 256) in channels-last memory format (faster for
   the CNN backbones on the CPU; the logical shape is the usual NCHW).

``blocks_to_model_input`` runs 1-4 (after peak normalisation) on whole batches on one
device, in place where it can. It maps power to colour levels in one fused step (same
formula as 2-3; float rounding can put a value lying exactly on a level boundary one level
over, about 1e-5 of the pixels). On CUDA the resize runs in float and is rounded to uint8
levels afterwards (CUDA has no uint8 antialiased kernel), which can differ from the CPU by
one uint8 level at a few pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .constants import (
    AMIN,
    HOP_LENGTH,
    IMAGE_SIZE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    N_FFT,
    TOP_DB,
    WIN_LENGTH,
)
from .device import choose_device
from .jet import JET_LUT, N_LEVELS
from .mixing import normalise_peak

# Blocks per batch. On the CPU small batches win: each intermediate tensor is 0.25-0.8 MB per
# block, and 16 blocks keep most of them in the L3 cache (measured 1.5-2x faster than 64).
# A GPU wants enough work per kernel launch.
CPU_BATCH = 16
CUDA_BATCH = 256


def _as_blocks(blocks: torch.Tensor | np.ndarray) -> torch.Tensor:
    x = torch.as_tensor(blocks)
    if not x.is_floating_point():
        x = x.to(torch.float32)
    return x[None] if x.ndim == 1 else x


@cache
def _window(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # periodic Hamming = scipy.signal.get_window("hamming", 256, fftbins=True), librosa's window
    return torch.hamming_window(WIN_LENGTH, periodic=True, dtype=dtype, device=device)


@cache
def _lut_rgb(device: torch.device) -> torch.Tensor:
    return torch.from_numpy(JET_LUT.copy()).to(device)


@cache
def _imagenet_affine_rows(device: torch.device, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    # (x/255 - mean)/std == x*scale + shift, laid out for one channels-last image row
    # (R, G, B, R, G, B, ...): a long, vectorisable inner loop instead of broadcasting over an
    # innermost dimension of 3.
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)
    scale, shift = 1.0 / (255.0 * std), -mean / std
    return scale.repeat(width).to(device), shift.repeat(width).to(device)


def power_spectrogram(blocks: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Power spectrogram ``|STFT|**2`` of each block: (B, N) -> (B, 257, frames); 259 frames
    for a 1 s block. A 1-D input is one block. Float64 input is computed in float64."""
    x = _as_blocks(blocks)
    spec = torch.stft(
        x,
        n_fft=N_FFT,
        hop_length=HOP_LENGTH,
        win_length=WIN_LENGTH,  # torch, like librosa, centres the 256 window in the 512 frame
        window=_window(x.device, x.dtype),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    # square the (re, im) pairs in place, then add them: one temporary fewer than
    # spec.real**2 + spec.imag**2
    pairs = torch.view_as_real(spec).square_()
    return torch.add(pairs[..., 0], pairs[..., 1])


def _power_to_db_(power: torch.Tensor, top_db: float, amin: float) -> torch.Tensor:
    peak = power.amax(dim=(-2, -1), keepdim=True)
    ref_db = 10.0 * torch.log10(peak.clamp_min(amin))
    power.clamp_min_(amin).log10_().mul_(10.0).sub_(ref_db).clamp_min_(-top_db)
    return power.masked_fill_(peak <= amin, -top_db)


def power_to_db(power: torch.Tensor, top_db: float = TOP_DB, amin: float = AMIN) -> torch.Tensor:
    """dB relative to each block's own maximum, clipped at ``-top_db`` (see module notes)."""
    if top_db <= 0:
        raise ValueError("top_db must be positive")
    return _power_to_db_(power.clone(), top_db, amin)


def _db_to_levels_(db: torch.Tensor, top_db: float) -> torch.Tensor:
    # clamped to [0, 255] first, so the conversion's truncation is a floor
    db.add_(top_db).mul_(N_LEVELS / top_db).clamp_(0, N_LEVELS - 1)
    return db.to(torch.uint8)


def db_to_levels(db: torch.Tensor, top_db: float = TOP_DB) -> torch.Tensor:
    """Colour level 0..255 (uint8) of each dB value in [-top_db, 0]."""
    return _db_to_levels_(db.clone(), top_db)


def levels_to_rgb(levels: torch.Tensor) -> torch.Tensor:
    """(B, F, T) levels -> (B, F, T, 3) uint8 jet image, highest frequency in row 0."""
    idx = torch.empty(levels.shape, dtype=torch.int32, device=levels.device)
    idx.copy_(levels.flip(-2))  # flip the bytes, then one copy into row order
    rgb = _lut_rgb(levels.device).index_select(0, idx.view(-1))
    return rgb.view(*levels.shape, 3)


def db_to_rgb(db: torch.Tensor, top_db: float = TOP_DB) -> torch.Tensor:
    """(B, 257, 259) dB -> (B, 257, 259, 3) uint8 jet image (low frequencies at the bottom)."""
    return levels_to_rgb(db_to_levels(db, top_db))


def _resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 NCHW images to size x size, values rounded to
    uint8 levels (a uint8 tensor on the CPU, an integer-valued float tensor on CUDA)."""
    if images.device.type == "cpu":
        return F.interpolate(
            images, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    resized = F.interpolate(
        images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )
    return resized.round_().clamp_(0, 255)


def _imagenet_normalise(resized: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) resized images (uint8 values) -> float32, channels-last, normalised."""
    b, c, h, w = resized.shape
    out = torch.empty(
        (b, c, h, w), dtype=torch.float32, device=resized.device, memory_format=torch.channels_last
    )
    rows = out.permute(0, 2, 3, 1).view(-1, w * c)  # a view of out: pixels are RGB triples
    rows.copy_(resized.permute(0, 2, 3, 1).reshape(-1, w * c))
    scale, shift = _imagenet_affine_rows(resized.device, w)
    torch.addcmul(shift, rows, scale, out=rows)
    return out


def to_model_input(rgb: torch.Tensor | np.ndarray, size: int = IMAGE_SIZE) -> torch.Tensor:
    """(B, H, W, 3) or (H, W, 3) uint8 images -> (B, 3, size, size) float32 model input:
    antialiased bilinear resize, then ImageNet normalisation (see module notes)."""
    images = torch.as_tensor(rgb)
    if images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 RGB images, got {images.dtype}")
    if images.ndim == 3:
        images = images[None]
    # a contiguous (B, H, W, 3) tensor is a channels-last (B, 3, H, W) one: no copy
    return _imagenet_normalise(_resize_uint8(images.permute(0, 3, 1, 2), size))


def _power_to_levels_(power: torch.Tensor, top_db: float, amin: float) -> torch.Tensor:
    """Colour levels straight from power, in place: ``db_to_levels(power_to_db(power))``
    in six passes over the data instead of eleven. Same formula; float rounding can put a
    value that lies on a level boundary on the other side (about 1e-5 of the pixels, by
    one level)."""
    peak = power.amax(dim=(-2, -1), keepdim=True)
    # clamping at the bottom of the range first is the same as clipping dB at -top_db
    floor = (peak * 10.0 ** (-top_db / 10.0)).clamp_min(amin)
    scale = 10.0 * N_LEVELS / top_db  # levels per decade of power
    offset = N_LEVELS - scale * torch.log10(peak.clamp_min(amin))
    # digitally silent block: every level 0 (see power_to_db)
    offset = torch.where(peak > amin, offset, torch.full_like(offset, -2.0 * N_LEVELS))
    power.clamp_min_(floor).log10_()
    torch.addcmul(offset, power, torch.tensor(scale, device=power.device), out=power)
    return power.clamp_(0, N_LEVELS - 1).to(torch.uint8)


def _model_input_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    levels = _power_to_levels_(power_spectrogram(normalise_peak(x)), TOP_DB, AMIN)
    return to_model_input(levels_to_rgb(levels), size)


def iter_model_input(
    blocks: torch.Tensor | np.ndarray,
    device: str | torch.device | None = None,
    batch: int | None = None,
    size: int = IMAGE_SIZE,
) -> Iterator[torch.Tensor]:
    """Model-ready tensors for ``blocks`` (B, N), ``batch`` blocks at a time (default 16 on
    the CPU, 256 on CUDA), on ``device`` (default: emotions.ser.device.choose_device). The
    values are those of
    ``to_model_input(db_to_rgb(power_to_db(power_spectrogram(normalise_peak(blocks)))))``
    up to float rounding (about 1e-5 of the pixels may be one colour level apart, see module
    notes). Use this for a long recording: an hour of model input is 2.8 GB of float32, too
    much to hold at once."""
    device = choose_device(device)
    if batch is None:
        batch = CUDA_BATCH if device.type == "cuda" else CPU_BATCH
    if batch <= 0:
        raise ValueError("batch must be positive")
    n = len(blocks)
    for start in range(0, n, batch):
        x = _as_blocks(blocks[start : start + batch]).to(device=device, dtype=torch.float32)
        yield _model_input_batch(x, size)


def blocks_to_model_input(
    blocks: torch.Tensor | np.ndarray,
    device: str | torch.device | None = None,
    batch: int | None = None,
    size: int = IMAGE_SIZE,
) -> torch.Tensor:
    """All of :func:`iter_model_input` in one (B, 3, size, size) float32 tensor."""
    parts = list(iter_model_input(blocks, device=device, batch=batch, size=size))
    if not parts:
        dev = choose_device(device)
        return torch.empty((0, 3, size, size), dtype=torch.float32, device=dev)
    return torch.cat(parts).contiguous(memory_format=torch.channels_last)


def blocks_to_rgb(
    blocks: torch.Tensor | np.ndarray, device: str | torch.device | None = None
) -> torch.Tensor:
    """(B, 257, 259, 3) uint8 jet images of peak-normalised blocks, for display and export."""
    device = choose_device(device)
    x = _as_blocks(blocks).to(device=device, dtype=torch.float32)
    return db_to_rgb(power_to_db(power_spectrogram(normalise_peak(x))))


def save_png(rgb: torch.Tensor | np.ndarray, path: str | Path) -> Path:
    """Write one (H, W, 3) uint8 image as PNG (for people to look at; models take tensors)."""
    from PIL import Image  # only exports need Pillow

    array = rgb.detach().cpu().numpy() if isinstance(rgb, torch.Tensor) else np.asarray(rgb)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {array.shape} {array.dtype}")
    path = Path(path)
    Image.fromarray(array).save(path, format="PNG")
    return path
