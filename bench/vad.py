"""Voice activity in noise: are noise-only seconds kept out of the emotion timeline, and is
speech kept in?

A recording alternates stretches of synthetic speech (espeak-ng, several voices and
emotions) with noise-only stretches; one real noise recording plays under all of it at
``--snr`` dB below the speech (active-speech RMS over noise RMS). The product's own decision
(``inference.block_kinds``: level threshold, then Silero VAD) labels every 1 s block;
the truth comes from the clean speech (``vad.block_truth``). Printed per noise and overall:
the share of noise-only seconds that would get an emotion (target < 5 %) and of speech
seconds lost (target < 5 %).

    .venv/bin/python bench/vad.py --noise-dir DIR   # e.g. the noise pack's folder
    .venv/bin/python bench/vad.py --stretches 6 --snr 15 --seed 1
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emotions.ser import audio, inference, synthetic  # noqa: E402
from emotions.ser.constants import SAMPLE_RATE  # noqa: E402
from emotions.ser.noisepack import synthetic_noise  # noqa: E402
from emotions.ser.vad import SpeechDetector, block_truth, error_rates  # noqa: E402

NOISE_SUFFIXES = {".wav", ".ogg", ".flac", ".mp3"}


def speech_stretches(folder: Path, n: int, seconds: int, seed: int) -> list[np.ndarray]:
    """``n`` stretches of ``seconds`` s, each utterances of random voices and emotions."""
    rng = np.random.default_rng(seed)
    emotions = list(synthetic.EMOTION_PROSODY)
    out = []
    k = 0
    for _ in range(n):
        parts, total = [], 0
        while total < seconds * SAMPLE_RATE:
            voice = synthetic.VOICES[rng.integers(len(synthetic.VOICES))]
            emotion = emotions[rng.integers(len(emotions))]
            text = synthetic.SENTENCES[rng.integers(len(synthetic.SENTENCES))]
            wav = synthetic.synthesize(text, emotion, voice, folder / f"u{k}.wav")
            k += 1
            x = audio.decode(wav)
            parts += [x, np.zeros(int(rng.uniform(0.1, 0.5) * SAMPLE_RATE), np.float32)]
            total += sum(len(p) for p in parts[-2:])
        out.append(np.concatenate(parts)[: seconds * SAMPLE_RATE])
    return out


def alternating(stretches: list[np.ndarray], gap_s: int) -> np.ndarray:
    """Speech, gap_s s without speech, speech, ... (the clean speech track)."""
    gap = np.zeros(gap_s * SAMPLE_RATE, np.float32)
    return np.concatenate([p for s in stretches for p in (s, gap)])


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """``noise`` looped under all of ``clean`` at ``snr_db`` below the active speech."""
    rng = np.random.default_rng(seed)
    reps = -(-len(clean) // len(noise)) + 1
    looped = np.tile(noise, reps)
    start = rng.integers(0, len(noise))
    bed = looped[start : start + len(clean)].astype(np.float64)
    active = clean[np.abs(clean) > 1e-4].astype(np.float64)
    speech_rms = np.sqrt(np.mean(active**2))
    bed *= speech_rms / 10 ** (snr_db / 20) / max(np.sqrt(np.mean(bed**2)), 1e-12)
    mixed = clean + bed
    return (mixed / max(1.0, np.abs(mixed).max() / 0.99)).astype(np.float32)


def noises(noise_dir: Path | None) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    if noise_dir is not None:
        for path in sorted(noise_dir.rglob("*")):
            if path.suffix.lower() in NOISE_SUFFIXES and path.stat().st_size > 0:
                x = audio.decode(path)
                if len(x) >= SAMPLE_RATE * 5 and np.sqrt(np.mean(x**2)) > 1e-4:
                    found[path.stem] = x
    if not found:  # no noise pack here: coloured noise, labelled as such
        found = {
            "pink (synthetic)": synthetic_noise("pink", 60.0, seed=1),
            "brown (synthetic)": synthetic_noise("brown", 60.0, seed=2),
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--noise-dir", type=Path, help="folder of noise recordings")
    parser.add_argument("--stretches", type=int, default=5, help="speech stretches")
    parser.add_argument("--seconds", type=int, default=8, help="seconds per stretch and gap")
    parser.add_argument("--snr", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-vad-"))
    try:
        clean = alternating(
            speech_stretches(tmp, args.stretches, args.seconds, args.seed), args.seconds
        )
        truth = block_truth(clean)
        detector = SpeechDetector()
        totals = {"noise": 0, "noise_labelled": 0, "speech": 0, "speech_lost": 0}
        print(f"{len(clean) / SAMPLE_RATE:.0f} s per recording, SNR {args.snr:g} dB")
        for name, noise in noises(args.noise_dir).items():
            mixed = mix(clean, noise, args.snr, args.seed)
            blocks = audio.split_blocks(mixed, min_tail_fraction=1.0)
            detector.reset()
            start = time.perf_counter()
            kinds = inference.block_kinds(blocks, detector=detector)
            took = time.perf_counter() - start
            rates = error_rates(kinds == inference.SPEECH, truth)
            totals["noise"] += rates["noise_blocks"]
            totals["noise_labelled"] += round(rates["noise_labelled"] * rates["noise_blocks"])
            totals["speech"] += rates["speech_blocks"]
            totals["speech_lost"] += round(rates["speech_lost"] * rates["speech_blocks"])
            print(
                f"  {name:24s} noise-only seconds labelled {100 * rates['noise_labelled']:5.1f} % "
                f"of {rates['noise_blocks']}, speech seconds lost "
                f"{100 * rates['speech_lost']:5.1f} % of {rates['speech_blocks']} "
                f"({len(blocks) / took:.0f} blocks/s)"
            )
        noise_rate = totals["noise_labelled"] / max(totals["noise"], 1)
        lost_rate = totals["speech_lost"] / max(totals["speech"], 1)
        print(f"noise_labelled: {noise_rate:.4f}")
        print(f"speech_lost: {lost_rate:.4f}")
        # target over measured (> 1 meets it; a perfect score is shown as 0.05 / 0.001)
        print(f"ratio[noise_labelled]: {0.05 / max(noise_rate, 1e-3):.2f}")
        print(f"ratio[speech_lost]: {0.05 / max(lost_rate, 1e-3):.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
