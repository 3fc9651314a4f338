"""Fixtures that generate audio for the ML core's tests: nothing is downloaded.

- speech-like: a harmonic voice (gliding f0, formant-shaped harmonics) with syllable-rate
  amplitude modulation, breath noise and pauses;
- recorded-like: that voice as a room microphone hears it (reverberation, mains hum, a pink
  noise floor, a DC offset) quantised to 16-bit;
- coloured noise (white, pink, brown);
- an encoder that writes any container/codec with PyAV (optionally with a video stream).
"""

from __future__ import annotations

import fractions
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.signal import fftconvolve

SR = 16_000


@lru_cache(maxsize=64)
def _speech_like(duration_s: float, sr: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * sr))
    t = np.arange(n) / sr
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) + 10 * rng.standard_normal()
    # harmonics k * f0 by complex rotation (one exp instead of one sin per harmonic), each
    # weighted by a 1/k roll-off and formant-like bumps at 500, 1500 and 2500 Hz
    rotor = np.exp(1j * 2 * np.pi * np.cumsum(f0) / sr)
    harmonic = rotor.copy()
    voice = np.zeros(n)
    for k in range(1, int(0.45 * sr / f0.max()) + 1):
        fk = k * f0.mean()
        formants = sum(np.exp(-(((fk - fc) / 300) ** 2)) for fc in (500, 1500, 2500))
        voice += (1 / k) * (0.3 + formants) * harmonic.imag
        harmonic *= rotor
    syllables = np.sin(np.pi * 4 * t + rng.uniform(0, 3)) ** 2
    breath = 0.05 * rng.standard_normal(n)
    x = (voice + breath) * syllables
    # pauses: a few 150-400 ms gaps with 10 ms fades
    gate = np.ones(n)
    for _ in range(max(1, int(duration_s))):
        start = rng.integers(0, max(1, n - sr // 2))
        gate[start : start + int(rng.uniform(0.15, 0.4) * sr)] = 0.0
    ramp = np.hanning(int(0.02 * sr))
    x *= np.convolve(gate, ramp / ramp.sum(), mode="same")
    x = (0.5 * x / np.max(np.abs(x))).astype(np.float32)
    x.setflags(write=False)
    return x


def speech_like(duration_s: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    return _speech_like(float(duration_s), int(sr), int(seed)).copy()


def coloured_noise(n: int, exponent: float = 1.0, seed: int = 0, rms: float = 0.1) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown)."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(max(n, 2)))
    f = np.arange(spectrum.size, dtype=float)
    f[0] = 1.0
    x = np.fft.irfft(spectrum / f ** (exponent / 2), n=max(n, 2))[:n]
    x -= x.mean()
    return (rms * x / np.sqrt(np.mean(x**2))).astype(np.float32)


@lru_cache(maxsize=16)
def _recorded_like(duration_s: float, sr: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1000)
    dry = speech_like(duration_s, sr, seed).astype(np.float64)
    tail = np.arange(int(0.3 * sr)) / sr
    impulse = rng.standard_normal(tail.size) * np.exp(-tail / 0.06)  # RT60 about 0.4 s
    impulse[0] = 8.0
    wet = fftconvolve(dry, impulse)[: dry.size]
    wet *= 0.3 / np.max(np.abs(wet))
    t = np.arange(dry.size) / sr
    hum = 0.003 * np.sin(2 * np.pi * 50 * t) + 0.001 * np.sin(2 * np.pi * 150 * t)
    floor = coloured_noise(dry.size, 1.0, seed + 7, rms=0.002)
    x = wet + hum + floor + 0.01  # a small DC offset, as cheap interfaces have
    x = (np.round(np.clip(x, -1, 1) * 32767) / 32767).astype(np.float32)
    x.setflags(write=False)
    return x


def recorded_like(duration_s: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    return _recorded_like(float(duration_s), int(sr), int(seed)).copy()


def encode(
    x: np.ndarray,
    sr: int,
    path: Path,
    container_format: str,
    codec: str,
    *,
    video_codec: str | None = None,
    bit_rate: int | None = None,
) -> Path:
    """Write ``x`` (samples, or channels x samples) with PyAV; optionally add a small video
    stream first, as in a recorded lecture video."""
    planes = np.ascontiguousarray(np.atleast_2d(np.asarray(x, dtype=np.float32)))
    layout = "mono" if planes.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=container_format) as container:
        video = None
        if video_codec is not None:
            video = container.add_stream(video_codec, rate=5)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = None
        if codec:
            audio = container.add_stream(codec, rate=sr, layout=layout)
            if bit_rate:
                audio.bit_rate = bit_rate
        if video is not None:
            for i in range(max(1, int(planes.shape[1] / sr * 5))):
                image = np.full((48, 64, 3), (i * 20) % 255, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = i
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
        if audio is not None:
            frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = sr, 0, fractions.Fraction(1, sr)
            container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
    return path


@pytest.fixture
def make_speech() -> Callable[..., np.ndarray]:
    return speech_like


@pytest.fixture
def make_recorded() -> Callable[..., np.ndarray]:
    return recorded_like


@pytest.fixture
def make_noise() -> Callable[..., np.ndarray]:
    return coloured_noise


@pytest.fixture
def encode_audio() -> Callable[..., Path]:
    return encode
