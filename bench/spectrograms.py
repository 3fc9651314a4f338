"""Benchmark: spectrogram images the authors' way, a plain torch.stft loop, the product's
two paths, and a bare batched FFT of the same frames (the limit), in one fair run.

On the same speech-like audio (16 kHz, ``--minutes`` long), every side in ONE process with
ONE thread (torch, OpenMP and scipy limited to 1: the same core for all), rounds
INTERLEAVED (A, B, C, D, E, A, B, ...) so load drift hits every side alike, nothing warmed
up outside the timed rounds (first-call costs count), the median round counts:

(A) authors, per block: librosa STFT -> power_to_db -> matplotlib figure drawn with
    ``librosa.display.specshow`` (jet) -> PNG file (``--subset`` blocks per round);
(B) a plain torch loop a user would write, per block: ``torch.stft`` -> power -> dB ->
    matplotlib's jet -> ``F.interpolate`` to 256 x 256 (antialiased) -> ImageNet
    normalisation (``--subset`` blocks per round);
(C) the product on the CPU (the analysis default): ``spectrogram_numpy.blocks_to_model_input``
    in batches of 32 into one reused buffer, ending in model-ready float32 tensors;
(D) the product's torch path (training, CUDA): ``spectrogram.iter_model_input``;
(E) the limit: the same frames, windowed, through one batched real FFT to power and
    nothing else (scipy's and torch's; the faster counts).

Then the memory check: a ``--hours`` long MP3 (44.1 kHz mono, 32 kbit/s) is written to a
temporary folder and streamed from disk through ``iter_blocks`` (decode, resample, split) in
a fresh subprocess, which reports its peak resident memory (VmHWM).

Key lines: ``ratio[product/authors]`` (target >= 100), ``ratio[product/fft_limit]`` (target
>= 0.6), each for both product paths; ``hour_tensors_s``; ``peak_rss_mb``.

    .venv/bin/python bench/spectrograms.py                # 10 min, 5 rounds, 3 h file
    .venv/bin/python bench/spectrograms.py --minutes 2 --rounds 3 --hours 0
"""

from __future__ import annotations

import argparse
import fractions
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread for every side
import torch  # noqa: E402

from emotions.ser.audio import split_blocks  # noqa: E402
from emotions.ser.constants import (  # noqa: E402
    AMIN,
    HOP_LENGTH,
    IMAGE_SIZE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    N_FFT,
    SAMPLE_RATE,
    TOP_DB,
    WIN_LENGTH,
)
from emotions.ser.spectrogram import iter_model_input  # noqa: E402


def lecture_like(seconds: float, sr: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """Speech-like audio: a gliding harmonic voice, syllable modulation, pauses, room noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f0 = 130 + 35 * np.sin(2 * np.pi * 0.3 * t) + 15 * np.sin(2 * np.pi * 2.1 * t)
    rotor = np.exp(2j * np.pi * np.cumsum(f0) / sr).astype(np.complex64)
    harmonic = rotor.copy()
    voice = np.zeros(n, np.float32)
    for k in range(1, 30):
        voice += (1.0 / k) * harmonic.imag
        harmonic *= rotor
    syllables = np.sin(2 * np.pi * 2.0 * t).astype(np.float32) ** 2
    pauses = (np.sin(2 * np.pi * 0.13 * t + rng.uniform(0, 6)) > -0.6).astype(np.float32)
    room = 0.01 * rng.standard_normal(n).astype(np.float32)
    x = voice * syllables * pauses + room
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


# --- the sides -----------------------------------------------------------------------------


def authors(blocks: np.ndarray, out_dir: Path) -> None:
    """(A) STFT + dB + matplotlib figure + PNG, one block at a time."""
    import librosa
    import librosa.display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for i, block in enumerate(blocks):
        stft = librosa.stft(
            block, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window="hamming"
        )
        db = librosa.power_to_db(np.abs(stft) ** 2, ref=np.max, amin=AMIN, top_db=TOP_DB)
        fig = plt.figure(figsize=(2.59, 2.57), dpi=100)  # a 259 x 257 pixel image
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        librosa.display.specshow(db, sr=SAMPLE_RATE, hop_length=HOP_LENGTH, cmap="jet", ax=ax)
        fig.savefig(out_dir / f"a-{i:05d}.png", dpi=100)
        plt.close(fig)


def plain_torch(blocks: np.ndarray, size: int = IMAGE_SIZE) -> float:
    """(B) what a user would write with torch.stft, one block at a time."""
    import matplotlib
    import torch.nn.functional as F

    jet = matplotlib.colormaps["jet"]
    window = torch.hamming_window(WIN_LENGTH)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    checksum = 0.0
    for block in blocks:
        x = torch.from_numpy(block)
        x = x / x.abs().max().clamp_min(1e-12)
        spec = torch.stft(
            x, N_FFT, HOP_LENGTH, WIN_LENGTH, window, center=True, return_complex=True
        )
        power = spec.abs() ** 2
        db = 10 * torch.log10(power.clamp_min(AMIN) / power.max().clamp_min(AMIN))
        db = db.clamp_min(-TOP_DB).flip(0)
        rgb = jet(((db + TOP_DB) / TOP_DB).numpy(), bytes=True)[..., :3]
        image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
        image = F.interpolate(image, (size, size), mode="bilinear", antialias=True)
        checksum += float(((image[0] / 255 - mean) / std)[:, 0, 0].sum())
    return checksum


def product_numpy(blocks: np.ndarray, batch: int = 32) -> float:
    """(C) the CPU analysis path: numpy into one reused buffer."""
    from emotions.ser import spectrogram_numpy

    spectrogram_numpy.reuse_freed_memory()  # as the analysis does (process-wide, once)
    buffer = np.empty((batch, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    checksum = 0.0
    for start in range(0, len(blocks), batch):
        images = spectrogram_numpy.blocks_to_model_input(blocks[start : start + batch], 256, buffer)
        checksum += float(images[:, :, 0, 0].sum())
    return checksum


def product_torch(blocks: np.ndarray) -> float:
    """(D) the torch path (training, CUDA)."""
    checksum = 0.0
    for images in iter_model_input(blocks, device="cpu"):
        checksum += float(images[:, :, 0, 0].sum())
    return checksum


def fft_scipy(blocks: np.ndarray, batch: int = 32) -> float:
    """(E) the same frames through one batched real FFT to power: the least any path does."""
    import scipy.fft

    from emotions.ser import spectrogram_numpy

    window = spectrogram_numpy._window()
    checksum = 0.0
    for start in range(0, len(blocks), batch):
        frames = spectrogram_numpy._frames(blocks[start : start + batch]) * window
        spec = scipy.fft.rfft(frames, n=N_FFT, axis=-1)
        checksum += float((spec.real**2 + spec.imag**2)[:, 0, 0].sum())
    return checksum


def fft_torch(blocks: np.ndarray, batch: int = 32) -> float:
    window = torch.hamming_window(WIN_LENGTH)
    checksum = 0.0
    for start in range(0, len(blocks), batch):
        x = torch.from_numpy(blocks[start : start + batch])
        spec = torch.stft(
            x, N_FFT, HOP_LENGTH, WIN_LENGTH, window, center=True, return_complex=True
        )
        checksum += float(torch.view_as_real(spec).square().sum(-1)[:, 0, 0].sum())
    return checksum


# --- (c) decoding memory -----------------------------------------------------------------------

# Run in a fresh interpreter. Peak memory is the kernel's high-water mark of this process's
# resident set (VmHWM): ru_maxrss would also count the parent's memory at fork time, which
# Linux carries across exec.
MEMORY_PROBE = r"""
import json, resource, sys, time

def peak_kb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

from emotions.ser.audio import iter_blocks
baseline = peak_kb()
start = time.perf_counter()
n = 0
for first, blocks in iter_blocks(sys.argv[1]):
    n += len(blocks)
seconds = time.perf_counter() - start
print(json.dumps({"blocks": n, "seconds": seconds, "baseline_kb": baseline, "peak_kb": peak_kb()}))
"""


def write_long_mp3(path: Path, hours: float, source_minutes: float = 2.0) -> None:
    """Encode a few minutes of lecture-like audio at 44.1 kHz, then repeat its packets until
    the file lasts ``hours`` (encoding three hours would take minutes)."""
    import av

    sr = 44_100
    x = lecture_like(source_minutes * 60, sr=sr, seed=1)
    with av.open(str(path), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=sr, layout="mono")
        stream.bit_rate = 32_000
        packets = []
        step = 10 * sr
        for i in range(0, x.size, step):
            frame = av.AudioFrame.from_ndarray(x[None, i : i + step], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = sr, i, fractions.Fraction(1, sr)
            packets.extend(stream.encode(frame))
        packets.extend(stream.encode(None))
        saved = [(bytes(p), p.pts, p.dts, p.duration, p.time_base) for p in packets]
        period = saved[-1][1] + saved[-1][3] - saved[0][1]
        repeats = max(1, round(hours * 60 / source_minutes))
        for r in range(repeats):
            for data, pts, dts, duration, time_base in saved:
                packet = av.Packet(data)
                packet.pts, packet.dts = pts + r * period, dts + r * period
                packet.duration, packet.time_base, packet.stream = duration, time_base, stream
                container.mux(packet)


def decode_memory(hours: float, tmp: Path) -> dict:
    path = tmp / "lecture.mp3"
    start = time.perf_counter()
    write_long_mp3(path, hours)
    made_s = time.perf_counter() - start
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.update(file_mb=path.stat().st_size / 1e6, made_s=made_s)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="audio for the batched sides")
    parser.add_argument("--subset", type=int, default=30, help="blocks per round for A and B")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--hours", type=float, default=3.0, help="file for the memory check")
    args = parser.parse_args()

    torch.set_num_threads(1)
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, every side 1 thread")
    audio = lecture_like(args.minutes * 60)
    blocks = split_blocks(audio)
    subset = blocks[: args.subset]
    print(f"audio: {args.minutes:g} min = {len(blocks)} blocks; A and B on {len(subset)} per round")

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sides = {
            "authors": (lambda: authors(subset, tmp), len(subset)),
            "plain_torch": (lambda: plain_torch(subset), len(subset)),
            "product_numpy": (lambda: product_numpy(blocks), len(blocks)),
            "product_torch": (lambda: product_torch(blocks), len(blocks)),
            "fft_scipy": (lambda: fft_scipy(blocks), len(blocks)),
            "fft_torch": (lambda: fft_torch(blocks), len(blocks)),
        }
        rates: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, (run, n) in sides.items():  # interleaved: every side once per round
                start = time.perf_counter()
                run()
                rates[name].append(n / (time.perf_counter() - start))
        median = {name: float(np.median(r)) for name, r in rates.items()}
        for name, rate in median.items():
            spread = f"{min(rates[name]):.1f}-{max(rates[name]):.1f}"
            print(f"{name:14s} {rate:9.1f} blocks/s (median of {args.rounds}, range {spread})")
            print(f"blocks_per_s[{name}]: {rate:.2f}")
        limit = max(median["fft_scipy"], median["fft_torch"])
        for product in ("product_numpy", "product_torch"):
            print(f"ratio[{product}/authors]: {median[product] / median['authors']:.1f}")
            print(f"ratio[{product}/plain_torch]: {median[product] / median['plain_torch']:.1f}")
            print(f"ratio[{product}/fft_limit]: {median[product] / limit:.2f}")
        best = max(median["product_numpy"], median["product_torch"])
        hour_tensors_s = 3600 / median["product_numpy"]
        print(f"hour_tensors_s: {hour_tensors_s:.2f}  (numpy path; torch path {3600 / best:.2f})")

        if args.hours > 0:
            mem = decode_memory(args.hours, tmp)
            peak_mb = mem["peak_kb"] / 1024
            base_mb = mem["baseline_kb"] / 1024
            held_mb = args.hours * 3600 * SAMPLE_RATE * 4 / 2**20
            hour_decode_s = mem["seconds"] / args.hours
            print(
                f"(c) {args.hours:g} h MP3 ({mem['file_mb']:.0f} MB, 44.1 kHz, made in "
                f"{mem['made_s']:.0f} s) streamed through iter_blocks: {mem['blocks']} blocks "
                f"in {mem['seconds']:.1f} s; peak RSS {peak_mb:.0f} MB (after imports "
                f"{base_mb:.0f} MB); the decoded signal alone would be {held_mb:.0f} MB"
            )
            print(f"decode_blocks: {mem['blocks']}")
            print(f"decode_s: {mem['seconds']:.2f}")
            print(f"peak_rss_mb: {peak_mb:.1f}")
            print(f"baseline_rss_mb: {base_mb:.1f}")
            print(f"decoded_signal_mb: {held_mb:.1f}")
            print(f"hour_decode_s: {hour_decode_s:.2f}")
            print(f"hour_total_s: {hour_decode_s + hour_tensors_s:.2f}")


if __name__ == "__main__":
    main()
