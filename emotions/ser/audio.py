"""Decoding any audio or video file to 16 kHz mono, and splitting it into blocks.

Decoding goes through PyAV (which bundles FFmpeg), so WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3,
M4A/AAC and the audio track of MP4/MKV/WebM videos all take the same path:

    demux -> decode packet by packet -> gather about 0.5 s -> resample to ``sr``
    -> average the channels to mono -> clean and clip -> emit fixed-size chunks

The file is streamed: at any moment only one chunk (``chunk_seconds``, 30 s = 2 MB by
default) of decoded audio and half a second of codec output are held, so
:func:`iter_blocks` walks a 3-hour lecture in a few tens of megabytes (see
``bench/spectrograms.py``). :func:`decode` is the convenience that returns the whole signal;
it fills one pre-sized array instead of concatenating a list, so the signal is held once,
not twice.

Sample conventions (the "defined results" for unusual input):

- Mono is the plain mean of all channels (FFmpeg's own stereo downmix scales by 1/sqrt(2),
  which can exceed full scale and makes levels depend on the channel count).
- NaN and +/-Inf samples become 0. Codecs that store float samples (float WAV/AIFF,
  WavPack) are cleaned frame by frame *before* resampling, so a bad sample cannot smear into
  its neighbours through the resampling filter; every chunk is checked again after.
- Samples are clipped to [-1, 1] after resampling: float sources may exceed full scale and the
  resampler can overshoot on clipped input; the dBFS silence threshold assumes full scale 1.
- Any failure to read the file (missing, empty, not audio, truncated header, no audio stream,
  nothing decodable) raises :class:`AudioDecodeError` naming the file. Packets that fail to
  decode in the middle of an otherwise good file are skipped with a warning, like FFmpeg's
  command line does, so one damaged second does not lose a whole lecture (the audio after
  it moves earlier by the skipped packets' duration).

Nothing here imports torch: a process that only decodes stays light.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from .constants import (
    BLOCK_SAMPLES,
    MIN_TAIL_FRACTION,
    SAMPLE_RATE,
    SILENCE_THRESHOLD_DBFS,
)

log = logging.getLogger(__name__)

# 30 s of 16 kHz float32 is under 2 MB: large enough that Python overhead per chunk is
# negligible, small enough that streaming a long lecture costs almost no memory.
DEFAULT_CHUNK_SECONDS = 30.0
# Blocks per batch yielded by iter_blocks: 64 x 1 s x 4 bytes = 4 MB (a model batch).
DEFAULT_BATCH_BLOCKS = 64
# decode() trusts a header's duration up to this many seconds when sizing its array.
MAX_PREALLOCATED_S = 6 * 3600


class AudioDecodeError(ValueError):
    """A file could not be read as audio. ``path`` is the file, ``reason`` says why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot decode audio from '{self.path.name}': {reason}")


@dataclass(frozen=True)
class AudioInfo:
    """What :func:`probe` finds in a file's first audio stream (before any resampling)."""

    duration_s: float
    sample_rate: int
    channels: int
    codec: str


# --- opening and decoding -------------------------------------------------------------------


def _check_file(path: Path) -> None:
    # FFmpeg says "Invalid data found" for a missing or empty file; say what is really wrong.
    if not path.exists():
        raise AudioDecodeError(path, "file not found")
    if not path.is_file():
        raise AudioDecodeError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise AudioDecodeError(path, "file is empty")


def _open(path: Path) -> av.container.InputContainer:
    _check_file(path)
    try:
        return av.open(str(path), mode="r")
    except av.error.InvalidDataError as exc:
        raise AudioDecodeError(path, "not a recognised audio or video file") from exc
    except (av.error.FFmpegError, OSError) as exc:
        raise AudioDecodeError(path, f"cannot open the file ({exc})") from exc


def _audio_stream(container: av.container.InputContainer, path: Path) -> av.audio.AudioStream:
    if not container.streams.audio:
        kinds = sorted({s.type for s in container.streams}) or ["nothing"]
        raise AudioDecodeError(path, f"no audio stream (the file holds: {', '.join(kinds)})")
    return container.streams.audio[0]


def _decoded_frames(
    container: av.container.InputContainer, stream: av.audio.AudioStream, path: Path
) -> Iterator[av.AudioFrame]:
    bad_packets = 0
    try:
        # demux() ends with an empty packet per stream, whose decode() flushes the decoder.
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                bad_packets += 1
                continue
            yield from frames
    except av.error.FFmpegError as exc:
        raise AudioDecodeError(path, f"the file is damaged ({exc})") from exc
    if bad_packets:
        log.warning("%s: skipped %d undecodable packet(s)", path.name, bad_packets)


def _finite_frame(frame: av.AudioFrame) -> av.AudioFrame:
    """Return ``frame`` with NaN/Inf samples set to 0."""
    samples = frame.to_ndarray()
    if np.isfinite(samples).all():
        return frame
    cleaned = av.AudioFrame.from_ndarray(
        np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0),
        format=frame.format.name,
        layout=frame.layout.name,
    )
    cleaned.sample_rate = frame.sample_rate
    cleaned.pts = frame.pts
    cleaned.time_base = frame.time_base
    return cleaned


def _may_hold_non_finite(stream: av.audio.AudioStream) -> bool:
    # Only stored float samples (float WAV/AIFF/CAF, WavPack float) can be NaN or Inf; lossy
    # decoders compute bounded output. Checking every MP3 frame would cost a fifth of the
    # decoding time, so the other codecs get the cheaper per-chunk check in iter_decode.
    name = stream.codec_context.name
    return name.startswith("pcm_f") or name == "wavpack"


def _mono(frame: av.AudioFrame) -> np.ndarray:
    channels = frame.layout.nb_channels
    samples = frame.to_ndarray().reshape(-1, channels)  # packed float: samples x channels
    if channels == 1:
        return samples[:, 0]
    # The plain mean, as a matrix-vector product: 20x faster than mean(axis=1) on rows this short.
    return samples @ np.full(channels, 1.0 / channels, dtype=np.float32)


def _mono_pieces(
    container: av.container.InputContainer, stream: av.audio.AudioStream, path: Path, sr: int
) -> Iterator[np.ndarray]:
    """Yield mono float32 pieces at ``sr`` (not yet clipped), about 0.5 s each."""
    check = _may_hold_non_finite(stream)
    # Codec frames are small (1152 samples for MP3): gathering about half a second in a FIFO
    # before each resampler call makes decoding 3-4 times faster than frame by frame.
    fifo, resampler, setup = av.AudioFifo(), None, None
    try:
        for frame in _decoded_frames(container, stream, path):
            frame_setup = (frame.format.name, frame.layout.name, frame.sample_rate)
            if frame_setup != setup:  # first frame, or the stream changed mid-way
                if resampler is not None:
                    yield from _drain(fifo, resampler)
                # layout=None keeps every channel, so that the downmix is a plain mean.
                # Packed ("flt", one interleaved buffer), not planar: PyAV 18 miscounts the
                # planes of a planar frame with 8 or more channels (9 for 8, 48 for 12) and
                # crashes the process reading them (an 8-channel WAV killed the worker).
                fifo = av.AudioFifo()
                resampler = av.AudioResampler(format="flt", layout=None, rate=sr)
                setup = frame_setup
            frame.pts = None  # the FIFO needs no timestamps (and damaged files have gaps)
            fifo.write(_finite_frame(frame) if check else frame)
            if fifo.samples >= frame.sample_rate // 2:
                for out in resampler.resample(fifo.read()):
                    yield _mono(out)
        if resampler is not None:
            yield from _drain(fifo, resampler)
    except (av.error.FFmpegError, ValueError) as exc:
        if isinstance(exc, AudioDecodeError):
            raise
        raise AudioDecodeError(path, f"cannot convert the audio ({exc})") from exc


def _drain(fifo: av.AudioFifo, resampler: av.AudioResampler) -> Iterator[np.ndarray]:
    if fifo.samples:
        for out in resampler.resample(fifo.read()):
            yield _mono(out)
    for out in resampler.resample(None):  # the resampler's own delay line
        yield _mono(out)


def _finish(samples: np.ndarray) -> np.ndarray:
    """The per-chunk part of the conventions: finite, within [-1, 1]."""
    if not np.isfinite(samples).all():
        np.nan_to_num(samples, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(samples, -1.0, 1.0, out=samples)


def iter_decode(
    path: str | Path, sr: int = SAMPLE_RATE, chunk_seconds: float = DEFAULT_CHUNK_SECONDS
) -> Iterator[np.ndarray]:
    """Stream ``path`` as mono float32 at ``sr`` Hz in chunks of ``chunk_seconds``.

    Every chunk has exactly ``round(chunk_seconds * sr)`` samples except the last, which is
    shorter (never empty). Concatenating the chunks gives the same samples whatever the chunk
    size. Errors surface as :class:`AudioDecodeError` on the first ``next()``; a file with no
    decodable sample at all raises too.
    """
    path = Path(path)
    chunk = max(1, round(chunk_seconds * sr))
    total = 0
    with _open(path) as container:
        stream = _audio_stream(container, path)
        pending: list[np.ndarray] = []
        pending_n = 0
        for piece in _mono_pieces(container, stream, path, sr):
            pending.append(piece)
            pending_n += piece.size
            if pending_n < chunk:
                continue
            joined = _finish(np.concatenate(pending))
            start = 0
            while joined.size - start >= chunk:
                yield joined[start : start + chunk]
                start += chunk
            pending = [joined[start:]] if start < joined.size else []
            pending_n = joined.size - start
            total += start
        if pending_n:
            total += pending_n
            yield _finish(np.concatenate(pending))
    if total == 0:
        raise AudioDecodeError(path, "no audio samples could be decoded")


def _header_info(path: Path) -> AudioInfo:
    """What the container header says; ``duration_s`` is 0 when the header does not know."""
    with _open(path) as container:
        stream = _audio_stream(container, path)
        ctx = stream.codec_context
        duration_s = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration_s = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration_s = container.duration / av.time_base
        return AudioInfo(
            duration_s=max(duration_s, 0.0),
            sample_rate=int(ctx.sample_rate or 0),
            channels=int(ctx.channels or 0),
            codec=ctx.name,
        )


def decode(path: str | Path, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the whole of ``path`` to mono float32 at ``sr`` Hz (see module notes)."""
    path = Path(path)
    # Fill one array sized from the container's duration (plus a margin for codec padding)
    # rather than concatenating a list of chunks, which would hold the signal twice.
    # The estimate is capped so that a header claiming days cannot allocate gigabytes.
    expected = math.ceil(min(_header_info(path).duration_s, MAX_PREALLOCATED_S) * sr)
    buffer = np.empty(expected + sr, dtype=np.float32)
    n = 0
    for chunk in iter_decode(path, sr):
        if n + chunk.size > buffer.size:  # the header under-stated the duration
            buffer = np.resize(buffer, max(2 * buffer.size, n + chunk.size))
        buffer[n : n + chunk.size] = chunk
        n += chunk.size
    return buffer[:n].copy() if buffer.size - n > 10 * sr else buffer[:n]


def probe(path: str | Path, *, decode_if_unknown: bool = True) -> AudioInfo:
    """Describe the first audio stream of ``path`` (rate and channels before resampling).

    The duration comes from the header; when the header does not know it (some streamed or
    headerless formats), the stream is decoded once to count its samples, unless
    ``decode_if_unknown`` is false (a cheap check): ``duration_s`` is then 0.
    """
    path = Path(path)
    info = _header_info(path)
    if info.duration_s > 0 or not decode_if_unknown:
        return info
    rate = info.sample_rate or SAMPLE_RATE
    n = sum(chunk.size for chunk in iter_decode(path, sr=rate))
    return AudioInfo(n / rate, info.sample_rate, info.channels, info.codec)


# --- blocks -----------------------------------------------------------------------------------


def count_blocks(
    n_samples: int,
    block_samples: int = BLOCK_SAMPLES,
    min_tail_fraction: float = MIN_TAIL_FRACTION,
) -> int:
    """Number of blocks :func:`split_blocks` makes from ``n_samples`` samples.

    Tail policy: the full blocks, plus one zero-padded block for a tail of at least
    ``min_tail_fraction * block_samples`` samples (a shorter tail is dropped). With
    ``min_tail_fraction=0`` any non-empty tail is kept; with 1 only full blocks are.
    """
    if block_samples <= 0:
        raise ValueError("block_samples must be positive")
    if not 0.0 <= min_tail_fraction <= 1.0:
        raise ValueError("min_tail_fraction must be within [0, 1]")
    full, tail = divmod(int(n_samples), block_samples)
    keep_tail = tail > 0 and tail >= min_tail_fraction * block_samples
    return full + int(keep_tail)


def split_blocks(
    x: np.ndarray,
    block_samples: int = BLOCK_SAMPLES,
    min_tail_fraction: float = MIN_TAIL_FRACTION,
) -> np.ndarray:
    """Split a 1-D signal into an ``(n, block_samples)`` float32 array (tail policy of
    :func:`count_blocks`). When no padding is needed the result is a view of ``x``."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D signal, got shape {x.shape}")
    n = count_blocks(x.size, block_samples, min_tail_fraction)
    full = x.size // block_samples
    if n == full:
        return x[: full * block_samples].reshape(full, block_samples)
    blocks = np.zeros((n, block_samples), dtype=np.float32)
    blocks.reshape(-1)[: x.size] = x  # the last block keeps its zero padding
    return blocks


@dataclass(frozen=True)
class BlockBatch:
    """Consecutive blocks of a recording: ``blocks[i]`` is block ``first + i``; ``samples``
    counts the real (not zero-padded) samples in the batch, so the last block's true end
    is known."""

    first: int
    blocks: np.ndarray  # (n, block_samples) float32, a fresh copy the caller may keep
    samples: int


def block_batches(
    path: str | Path,
    batch_blocks: int = DEFAULT_BATCH_BLOCKS,
    *,
    first_batch_blocks: int | None = None,
    block_samples: int = BLOCK_SAMPLES,
    min_tail_fraction: float = MIN_TAIL_FRACTION,
    sr: int = SAMPLE_RATE,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
) -> Iterator[BlockBatch]:
    """Stream ``path`` as :class:`BlockBatch` es: the one block iterator of the product.

    The first batch holds ``first_batch_blocks`` (default ``batch_blocks``) so that a caller
    can show first results early; every later batch but the last holds ``batch_blocks``;
    the last one ends with the tail handled as in :func:`split_blocks`.
    """
    sizes = [first_batch_blocks or batch_blocks, batch_blocks]
    if min(sizes) <= 0:
        raise ValueError("batch_blocks must be positive")
    size = sizes[0]
    first = 0
    carry = np.empty(0, dtype=np.float32)
    for chunk in iter_decode(path, sr=sr, chunk_seconds=chunk_seconds):
        carry = np.concatenate([carry, chunk]) if carry.size else chunk
        start = 0
        while carry.size - start >= size * block_samples:
            take = size * block_samples
            batch = carry[start : start + take].reshape(size, block_samples)
            yield BlockBatch(first, batch.copy(), take)
            first += size
            start += take
            size = batch_blocks
        carry = carry[start:]
    tail = split_blocks(carry, block_samples, min_tail_fraction)
    if len(tail):
        yield BlockBatch(first, tail.copy(), min(carry.size, tail.size))


def iter_blocks(
    path: str | Path,
    batch_blocks: int = DEFAULT_BATCH_BLOCKS,
    block_samples: int = BLOCK_SAMPLES,
    min_tail_fraction: float = MIN_TAIL_FRACTION,
    sr: int = SAMPLE_RATE,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
) -> Iterator[tuple[int, np.ndarray]]:
    """Stream ``path`` as batches ``(index of first block, array (n, block_samples))``.

    Every batch but the last holds exactly ``batch_blocks`` blocks; the last one ends with the
    tail handled as in :func:`split_blocks`, so concatenating the batches equals
    ``split_blocks(decode(path))``. Each yielded array is a fresh copy the caller may keep.
    (:func:`block_batches` with only the index and the blocks.)
    """
    for batch in block_batches(
        path,
        batch_blocks,
        block_samples=block_samples,
        min_tail_fraction=min_tail_fraction,
        sr=sr,
        chunk_seconds=chunk_seconds,
    ):
        yield batch.first, batch.blocks


def block_rms_dbfs(blocks: np.ndarray) -> np.ndarray:
    """RMS level of each block in dBFS (full-scale square wave = 0 dB); -inf for silence.

    A zero-padded tail block is measured over the whole block, padding included (at most
    3 dB lower than its audio alone with the default tail policy).
    """
    blocks = np.atleast_2d(np.asarray(blocks, dtype=np.float32))
    power = np.empty(blocks.shape[0], dtype=np.float64)
    # float64 accumulation, a few hundred rows at a time so a whole lecture is never doubled.
    for i in range(0, blocks.shape[0], 256):
        rows = blocks[i : i + 256]
        power[i : i + 256] = np.mean(np.square(rows, dtype=np.float64), axis=-1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(power)


def silence_mask(blocks: np.ndarray, threshold_dbfs: float = SILENCE_THRESHOLD_DBFS) -> np.ndarray:
    """True for each block whose RMS level (see :func:`block_rms_dbfs`) is below
    ``threshold_dbfs``: such blocks are reported as silence rather than classified."""
    return block_rms_dbfs(blocks) < threshold_dbfs


def write_wav(
    path: str | Path, x: np.ndarray, sr: int = SAMPLE_RATE, subtype: str = "PCM_16"
) -> Path:
    """Write ``x`` (samples, or samples x channels) as a WAV file; returns the path."""
    path = Path(path)
    sf.write(str(path), np.asarray(x), sr, subtype=subtype, format="WAV")
    return path
