"""The model input of :mod:`emotions.ser.spectrogram`, computed with numpy and scipy only.

Why a second implementation: a worker that only analyses lectures with an exported ONNX
model should not import torch (the CUDA build costs ~630 MB of memory before any work),
and on the CPU this path is also the faster one (see ``bench/spectrograms.py``). The torch
path stays the reference, and the one used for training and on CUDA.

Same steps and the same numbers (``tests/ser/test_spectrogram_numpy.py`` checks both):

1. peak normalisation (``x * (1 / max|x|)`` in float32, a silent block left as is);
2. power spectrogram: the 256-sample periodic Hamming window sits centred in torch's and
   librosa's 512-sample frame, so each frame's power is ``|rfft(window * 256 samples, 512)|**2``
   (the centring offset only rotates the phase); frames at hop 62 over the block zero-padded
   by 256 on each side (``center=True``, constant padding), 257 x 259 per 1 s block;
3. colour levels straight from power with the same float32 formula as
   ``spectrogram._power_to_levels_``, flipped so the highest frequency is row 0, and the jet
   lookup table;
4. the antialiased bilinear resize of the uint8 image exactly as PyTorch (and Pillow) do it
   on uint8: int16 fixed-point weights, a horizontal pass rounded to uint8, then a vertical
   pass; then ImageNet normalisation. The output is NCHW float32, the ONNX model's layout.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

import numpy as np
import scipy.fft

from .constants import AMIN, HOP_LENGTH, IMAGENET_MEAN, IMAGENET_STD, N_FFT, TOP_DB, WIN_LENGTH
from .jet import JET_LUT, N_LEVELS

_HALF_WINDOW = WIN_LENGTH // 2


@cache
def _window() -> np.ndarray:
    # periodic Hamming, as torch.hamming_window(256, periodic=True) and scipy's "hamming"
    n = np.arange(WIN_LENGTH)
    return (0.54 - 0.46 * np.cos(2.0 * np.pi * n / WIN_LENGTH)).astype(np.float32)


def n_frames(n_samples: int) -> int:
    return 1 + n_samples // HOP_LENGTH


def _frames(x: np.ndarray) -> np.ndarray:
    """(B, N) -> (B, frames, 256): the non-zero part of every centred 512-sample frame."""
    b, n = x.shape
    pad = N_FFT // 2
    padded = np.zeros((b, n + 2 * pad), dtype=np.float32)
    padded[:, pad : pad + n] = x
    # frame t covers padded[t*hop : t*hop + 512]; its window is non-zero on the middle 256
    start = pad - _HALF_WINDOW
    view = np.lib.stride_tricks.sliding_window_view(padded[:, start:], WIN_LENGTH, axis=1)
    return view[:, : n_frames(n) * HOP_LENGTH : HOP_LENGTH]


def normalise_peak(x: np.ndarray) -> np.ndarray:
    """Each block divided by its largest absolute sample (float32; a silent block stays)."""
    x = np.asarray(x, dtype=np.float32)
    peak = np.abs(x).max(axis=-1, keepdims=True)
    usable = peak > np.finfo(np.float32).tiny
    scale = np.where(usable, np.float32(1.0) / np.where(usable, peak, np.float32(1.0)), 1.0)
    return x * scale.astype(np.float32)


def power_spectrogram(blocks: np.ndarray, workers: int = 1) -> np.ndarray:
    """(B, N) float32 -> (B, 257, frames) float32 power, frequencies along axis 1."""
    x = np.atleast_2d(np.asarray(blocks, dtype=np.float32))
    spec = scipy.fft.rfft(_frames(x) * _window(), n=N_FFT, axis=-1, workers=workers)
    power = np.square(spec.real)
    power += np.square(spec.imag)
    return power.transpose(0, 2, 1)


def power_to_levels(power: np.ndarray, top_db: float = TOP_DB, amin: float = AMIN) -> np.ndarray:
    """(B, F, T) power -> uint8 colour levels 0..255 (``spectrogram._power_to_levels_``)."""
    power = np.asarray(power, dtype=np.float32)
    peak = power.max(axis=(-2, -1), keepdims=True)
    floor = np.maximum(peak * np.float32(10.0 ** (-top_db / 10.0)), np.float32(amin))
    scale = np.float32(10.0 * N_LEVELS / top_db)
    offset = np.float32(N_LEVELS) - scale * np.log10(np.maximum(peak, np.float32(amin)))
    offset = np.where(peak > amin, offset, np.float32(-2.0 * N_LEVELS)).astype(np.float32)
    out = np.log10(np.maximum(power, floor))
    out *= scale
    out += offset
    np.clip(out, 0, N_LEVELS - 1, out=out)
    return out.astype(np.uint8)


# --- antialiased bilinear resize on uint8, as torch's CPU kernel (and Pillow) ----------------


@cache
def _resize_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(first input index per output, int32 weights (out, taps), precision bits).

    torch's _compute_indices_min_size_weights_aa with the bilinear filter, then
    _compute_index_ranges_int16_weights: weights normalised in float64, then scaled to int16
    with as many fraction bits as the largest weight allows (at most 22)."""
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0  # interp_size 2, times the scale when shrinking
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    centers = scale * (np.arange(out_size) + 0.5)
    xmin = np.maximum((centers - support + 0.5).astype(np.int64), 0)
    xmax = np.minimum((centers + support + 0.5).astype(np.int64), in_size)
    taps = int((xmax - xmin).max())
    j = np.arange(taps)[None, :]
    w = np.clip(1.0 - np.abs((j + xmin[:, None] - centers[:, None] + 0.5) * invscale), 0, None)
    w[j >= (xmax - xmin)[:, None]] = 0.0
    w /= w.sum(axis=1, keepdims=True)
    w_max = w.max()
    precision = 0
    while precision < 22 and int(0.5 + w_max * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    fixed = np.where(w < 0, -0.5 + w * (1 << precision), 0.5 + w * (1 << precision))
    # a window running past the edge starts earlier so every row has `taps` valid indices
    start = np.minimum(xmin, in_size - taps)
    shift = xmin - start
    weights = np.zeros((out_size, taps), dtype=np.int32)
    for row in range(out_size):
        weights[row, shift[row] :] = fixed[row, : taps - shift[row]].astype(np.int32)
    return start, weights, precision


@cache
def _resize_plan(in_size: int, out_size: int) -> tuple[list[tuple[int, int, int]], np.ndarray, int]:
    """The taps as runs of outputs whose first input lies at a constant offset (a resize by
    a few pixels has 1-3 runs), so each tap of a run is a slice, not a gather."""
    start, weights, precision = _resize_taps(in_size, out_size)
    offset = start - np.arange(out_size)
    edges = [0, *(np.flatnonzero(np.diff(offset)) + 1).tolist(), out_size]
    runs = [(lo, hi, int(offset[lo])) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return runs, weights, precision


def _resize_axis(images: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """One pass of the resize along ``axis`` (-1 or -2) of integer-valued float images,
    rounded to integers as torch's uint8 kernel does. The weights are integers and every
    sum stays below 2**24 (float32 adds them exactly), else the pass runs in float64."""
    in_size = images.shape[axis]
    if in_size == out_size:
        return images
    runs, weights, precision = _resize_plan(in_size, out_size)
    exact32 = 255 * int(weights.sum(axis=1).max()) + (1 << precision) < (1 << 24)
    dtype = np.float32 if exact32 else np.float64
    x = np.moveaxis(images, axis, -1)
    acc = np.full(x.shape[:-1] + (out_size,), 1 << (precision - 1), dtype=dtype)
    w = weights.astype(dtype)
    if len(runs) <= 8:
        for lo, hi, offset in runs:
            for t in range(w.shape[1]):
                acc[..., lo:hi] += x[..., lo + offset + t : hi + offset + t] * w[lo:hi, t]
    else:  # a large reduction: gather each tap
        start = _resize_taps(in_size, out_size)[0]
        for t in range(w.shape[1]):
            acc += x[..., start + t] * w[:, t]
    acc *= dtype(1.0 / (1 << precision))  # a power of two: exact
    np.floor(acc, out=acc)
    np.minimum(acc, 255, out=acc)
    return np.moveaxis(acc.astype(np.float32, copy=False), -1, axis)


def resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """(B, C, H, W) uint8 -> (B, C, size, size) uint8, horizontal pass first (as torch)."""
    x = np.asarray(images, dtype=np.float32)
    return _resize_axis(_resize_axis(x, size, axis=-1), size, axis=-2).astype(np.uint8)


@cache
def _lut_planes() -> np.ndarray:
    return np.ascontiguousarray(JET_LUT.T, dtype=np.float32)  # (3, 256): level -> R, G, B


@cache
def _imagenet_affine() -> tuple[np.ndarray, np.ndarray]:
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    scale = (np.float32(1.0) / (np.float32(255.0) * std)).astype(np.float32)
    return scale, (-mean / std).astype(np.float32)


def blocks_to_model_input(
    blocks: np.ndarray, size: int, out: np.ndarray | None = None
) -> np.ndarray:
    """(B, N) float32 blocks -> (B, 3, size, size) float32 ImageNet-normalised model input.

    ``out``, when given, is a pre-allocated (at least B, 3, size, size) float32 buffer that
    receives the result (its first B rows are returned), so a long analysis reuses one
    buffer instead of allocating a new one per batch."""
    blocks = np.atleast_2d(np.asarray(blocks, dtype=np.float32))
    # highest frequency in row 0 (the flip is a view; np.take copies it into order)
    levels = power_to_levels(power_spectrogram(normalise_peak(blocks)))[:, ::-1, :]
    b = len(blocks)
    if out is None:
        out = np.empty((b, 3, size, size), dtype=np.float32)
    target = out[:b]
    scale, shift = _imagenet_affine()
    for c, plane in enumerate(_lut_planes()):
        # each colour plane on its own: the resize of one (B, 257, 259) plane stays in cache
        colour = np.take(plane, levels)
        resized = _resize_axis(_resize_axis(colour, size, axis=-1), size, axis=-2)
        np.multiply(resized, scale[c], out=target[:, c])
        target[:, c] += shift[c]
    return target


@cache
def reuse_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of handing it back to the kernel.

    This path allocates the same few temporaries of 1-9 MB for every batch. By default glibc
    maps such blocks fresh and unmaps them when freed, so every batch pays page faults again:
    measured here, 308 minor faults per block and a third of its CPU time in the kernel
    (3.6 -> 2.3 ms per block with the thresholds below). Process-wide; called once by the
    analysis (a worker that analyses lectures keeps its ~60 MB of temporaries)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        libc = None
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    ok = libc.mallopt(m_mmap_threshold, 32 << 20) == 1  # glibc's largest allowed value
    return ok and libc.mallopt(m_trim_threshold, 256 << 20) == 1
