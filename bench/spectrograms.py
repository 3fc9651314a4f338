"""Benchmark: spectrogram images the authors' way against our batched tensors, in one run.

On the same synthetic lecture audio (speech-like, 16 kHz, ``--minutes`` long):

(a) the authors' way, per block: librosa STFT -> power_to_db -> matplotlib figure with
    ``librosa.display.specshow`` (jet) -> PNG file. Measured on ``--subset`` blocks and
    extrapolated. Also with ``imshow`` instead of ``specshow`` (a faster way to draw it).
(b) ours: ``emotions.ser.spectrogram.iter_model_input`` on every block, i.e. peak
    normalisation, STFT, dB, jet lookup, 256 x 256 resize and ImageNet normalisation as
    batched tensors, ending in model-ready float32 tensors (the authors' PNGs still have to
    be read back, resized and normalised before a model can use them).

Then the memory check: a ``--hours`` long MP3 (44.1 kHz mono, 32 kbit/s) is written to a
temporary folder and streamed from disk through ``iter_blocks`` (decode, resample, split) in
a fresh subprocess, which reports its peak resident memory (ru_maxrss).

Prints human-readable lines and machine-readable ``key: value`` lines (ratio, rates, the
time to turn one hour of lecture into model-ready tensors, peak memory).

    .venv/bin/python bench/spectrograms.py                # 10 min, 60-block subset, 3 h file
    .venv/bin/python bench/spectrograms.py --minutes 2 --hours 0.5
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from emotions.ser.audio import split_blocks  # noqa: E402
from emotions.ser.constants import (  # noqa: E402
    AMIN,
    HOP_LENGTH,
    N_FFT,
    SAMPLE_RATE,
    TOP_DB,
    WIN_LENGTH,
)
from emotions.ser.device import choose_device  # noqa: E402
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


# --- (a) the authors' way ------------------------------------------------------------------------


def authors_rate(blocks: np.ndarray, out_dir: Path, draw: str, repeats: int) -> float:
    """Blocks per second for STFT + dB + matplotlib figure + PNG, one block at a time: the
    blocks are cut into ``repeats`` runs and the fastest run counts, as for (b)."""
    import librosa
    import librosa.display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def one(i: int, block: np.ndarray) -> None:
        stft = librosa.stft(
            block, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window="hamming"
        )
        db = librosa.power_to_db(np.abs(stft) ** 2, ref=np.max, amin=AMIN, top_db=TOP_DB)
        fig = plt.figure(figsize=(2.59, 2.57), dpi=100)  # a 259 x 257 pixel image
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        if draw == "specshow":
            librosa.display.specshow(db, sr=SAMPLE_RATE, hop_length=HOP_LENGTH, cmap="jet", ax=ax)
        else:
            ax.imshow(db, cmap="jet", origin="lower", aspect="auto")
        fig.savefig(out_dir / f"{draw}-{i:05d}.png", dpi=100)
        plt.close(fig)

    one(0, blocks[0])  # warm-up: imports, font cache, first figure
    best = 0.0
    for run in np.array_split(np.arange(len(blocks)), repeats):
        start = time.perf_counter()
        for i in run:
            one(int(i), blocks[i])
        best = max(best, len(run) / (time.perf_counter() - start))
    return best


# --- (b) ours ----------------------------------------------------------------------------------


def _consume(blocks: np.ndarray, device: torch.device, batch: int | None) -> float:
    checksum = 0.0
    for images in iter_model_input(blocks, device=device, batch=batch):
        checksum += float(images[:, :, 0, 0].sum())  # use the result (and sync on CUDA)
    return checksum


def our_rate(
    blocks: np.ndarray, device: torch.device, batch: int | None, repeats: int, workers: int = 1
) -> float:
    """Blocks per second of iter_model_input, best of ``repeats`` runs (the machine is shared).

    ``workers`` > 1: that many threads each convert their share of the blocks with one torch
    thread, as the same number of single-threaded worker processes would.
    """

    def one_worker(part: np.ndarray) -> float:
        torch.set_num_threads(1)  # this thread's OpenMP setting; the bench owns the process
        return _consume(part, device, batch)

    parts = np.array_split(blocks, workers)
    _consume(blocks[:64], device, batch)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        if workers == 1:
            _consume(blocks, device, batch)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(one_worker, parts))
        best = min(best, time.perf_counter() - start)
    return len(blocks) / best


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
    parser.add_argument("--minutes", type=float, default=10.0, help="audio for (a) and (b)")
    parser.add_argument("--subset", type=int, default=60, help="blocks measured for (a)")
    parser.add_argument("--batch", type=int, default=None, help="blocks per batch for (b)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of (a) and (b), best kept")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads to use, at most")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if any)")
    parser.add_argument("--hours", type=float, default=3.0, help="file for the memory check")
    args = parser.parse_args()

    device = choose_device(args.device)
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, (b) on {device}")

    audio = lecture_like(args.minutes * 60)
    blocks = split_blocks(audio)
    subset = blocks[: args.subset]
    print(f"audio: {args.minutes:g} min = {len(blocks)} blocks of 1 s")

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        rate_a = authors_rate(subset, tmp, "specshow", args.repeats)
        rate_a_imshow = authors_rate(subset, tmp, "imshow", args.repeats)
        # (b) in each way of using the CPU threads; the best one counts. On a shared machine
        # intra-op threads can stall each other at every op's barrier (ops here are short),
        # while one thread per worker never waits for another.
        modes = [(1, 1)] if device.type == "cuda" else [(t, 1) for t in range(1, args.threads + 1)]
        if device.type != "cuda" and args.threads > 1:
            modes.append((1, args.threads))
        rates = {}
        for threads, workers in modes:
            torch.set_num_threads(threads)
            rate = our_rate(blocks, device, args.batch, args.repeats, workers)
            rates[(threads, workers)] = rate
            label = (
                f"{workers} workers x {threads} thread" if workers > 1 else f"{threads} thread(s)"
            )
            print(
                f"(b) ours, batched model-ready tensors, {len(blocks)} blocks, {label}: "
                f"{rate:.0f} blocks/s"
            )
        (threads, workers), rate_b = max(rates.items(), key=lambda item: item[1])
        ratio = rate_b / rate_a
        hour_tensors_s = 3600 / rate_b
        print(f"(a) authors, specshow + PNG, {len(subset)} blocks: {rate_a:.1f} blocks/s")
        print(f"(a') authors, imshow + PNG: {rate_a_imshow:.1f} blocks/s")
        print(f"    one hour of blocks to tensors: {hour_tensors_s:.1f} s (target < 30 s)")
        print(f"authors_blocks_per_s: {rate_a:.2f}")
        print(f"authors_imshow_blocks_per_s: {rate_a_imshow:.2f}")
        for (t, w), rate in rates.items():
            print(f"ours_blocks_per_s_{w}x{t}: {rate:.1f}")
        print(f"ours_blocks_per_s: {rate_b:.1f}")
        print(f"ours_mode: {workers}x{threads}")
        print(f"ratio: {ratio:.1f}")
        print(f"ratio_vs_imshow: {rate_b / rate_a_imshow:.1f}")
        print(f"hour_tensors_s: {hour_tensors_s:.2f}")

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
