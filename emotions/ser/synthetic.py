"""Synthetic emotional speech for a demonstration a new install can run offline.

No emotional-speech corpus installs from a package index (see the project's data
notes), so the demonstration speaks neutral sentences with Debian's espeak-ng and
changes prosody per emotion through SSML <prosody> (rate, pitch, range, volume):
labelled by construction. Anything trained on it must say "synthetic speech".
"""

import csv
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import torch

from emotions.ser import audio, mixing
from emotions.ser.constants import SAMPLE_RATE

# Prosody per emotion, after the acoustic correlates reported for acted speech:
# anger loud, fast, wide pitch range; happiness high and varied; sadness slow, low,
# flat and soft; neutral the voice's defaults.
EMOTION_PROSODY: dict[str, dict[str, str]] = {
    "anger": {"rate": "130%", "pitch": "+10%", "range": "+90%", "volume": "+60%"},
    "happy": {"rate": "115%", "pitch": "+50%", "range": "+70%", "volume": "+20%"},
    "neutral": {"rate": "100%", "pitch": "+0%", "range": "+0%", "volume": "+0%"},
    "sad": {"rate": "75%", "pitch": "-35%", "range": "-70%", "volume": "-40%"},
}
# Speakers: espeak-ng voices with different variants (male and female, several accents).
VOICES: tuple[str, ...] = (
    "en-us+m3", "en-us+f2", "en-gb+m1", "en-gb+f4", "en-gb-scotland+m4", "en-gb-x-rp+f3",
)  # fmt: skip
SENTENCES: tuple[str, ...] = (
    "The lecture starts at nine tomorrow morning.",
    "Please hand in your reports before the end of the week.",
    "We will look at the results of the experiment together.",
    "The library is open until late in the evening.",
    "Turn to page forty two and read the first paragraph.",
    "Everyone in the group has to present one slide.",
    "The train was late again this morning.",
    "I have checked the numbers three times now.",
)


class SpeechSynthesisError(RuntimeError):
    """espeak-ng is missing or failed; the message says what to do."""


@dataclass(frozen=True)
class SyntheticUtterance:
    path: Path
    label: str
    speaker: str
    sentence: int


def espeak_binary() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise SpeechSynthesisError(
            "espeak-ng is not installed: install the distribution's package "
            "(sudo apt-get install espeak-ng) and run this again."
        )
    return binary


def ssml(text: str, emotion: str) -> str:
    attrs = " ".join(f'{k}="{v}"' for k, v in EMOTION_PROSODY[emotion].items())
    return f"<speak><prosody {attrs}>{escape(text)}</prosody></speak>"


def synthesize(
    text: str, emotion: str, voice: str, path: Path, runner: Callable = subprocess.run
) -> Path:
    """Speak `text` with `emotion`'s prosody into a WAV file at `path`."""
    cmd = [espeak_binary(), "-m", "-v", voice, "-w", str(path), ssml(text, emotion)]
    done = runner(cmd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0 or not path.exists():
        raise SpeechSynthesisError(f"espeak-ng failed for voice {voice}: {done.stderr.strip()}")
    return path


def build_corpus(
    dest: Path,
    *,
    emotions: Sequence[str] = tuple(EMOTION_PROSODY),
    voices: Sequence[str] = VOICES,
    sentences: Sequence[str] = SENTENCES,
    runner: Callable = subprocess.run,
) -> list[SyntheticUtterance]:
    """Write dest/<emotion>/<speaker>_<n>.wav for every combination, plus a manifest.csv
    (path,label,speaker) that the CSV-manifest importer reads."""
    dest.mkdir(parents=True, exist_ok=True)
    items = []
    for emotion in emotions:
        (dest / emotion).mkdir(exist_ok=True)
        for voice in voices:
            speaker = voice.replace("+", "_")
            for n, text in enumerate(sentences):
                path = dest / emotion / f"{speaker}_{n:02d}.wav"
                synthesize(text, emotion, voice, path, runner)
                items.append(SyntheticUtterance(path, emotion, speaker, n))
    with open(dest / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "speaker"])
        for item in items:
            writer.writerow([item.path.relative_to(dest).as_posix(), item.label, item.speaker])
    return items


def sample_lecture(
    utterances: Sequence[SyntheticUtterance],
    noise: np.ndarray | None,
    *,
    snr_db: float = 20.0,
    pause_s: float = 1.5,
    seed: int = 0,
) -> np.ndarray:
    """A lecture-like recording: utterances in a seeded order with pauses (digital
    silence), with `noise` mixed in over the speech at `snr_db` when given."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    parts = []
    for i in rng.permutation(len(utterances)):
        speech = torch.from_numpy(audio.decode(utterances[i].path))
        if noise is not None and len(noise):
            segment, _ = mixing.noise_segments(noise, 1, speech.numel(), generator)
            speech = mixing.mix_at_snr(speech[None], segment, snr_db).mixed[0]
        parts += [speech.float().numpy(), np.zeros(int(pause_s * SAMPLE_RATE), np.float32)]
    signal = np.concatenate(parts)
    return signal / max(float(np.max(np.abs(signal))), 1e-9) * 0.9
