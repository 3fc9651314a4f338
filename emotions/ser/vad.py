"""Voice activity: which 1 s blocks hold speech, with Silero VAD run by ONNX Runtime.

The level threshold (``audio.silence_mask``) finds quiet blocks; it cannot tell a noisy room
without speech from speech. Silero VAD can: its ONNX model ships inside the ``silero-vad``
wheel (no download, no torch: the package's Python side imports torch, so only its data
file is used here). The model reads 512-sample windows at 16 kHz, each with the 64 samples
before it as context, and carries a recurrent state from window to window.

Per block, the detector runs the 32 windows that end at the block's end (the first reaches
384 samples into the block before) after 8 windows of warm-up on the audio before them, so
its state has settled by the block; all blocks of a batch run side by side as one batch
of the model (32 + 8 runs per batch instead of 31 per second). A block is speech when at
least ``MIN_SPEECH_FRACTION`` of the windows inside it have a speech probability of at least
``SPEECH_THRESHOLD`` (Silero's own default). ``bench/vad.py`` measures both errors on
speech alternating with real noise at 15 dB.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .constants import BLOCK_SAMPLES, SAMPLE_RATE

WINDOW = 512  # samples per model step at 16 kHz
CONTEXT = 64  # samples of the previous window each step sees
WARMUP_WINDOWS = 8  # 0.26 s of audio before a block's windows, to settle the state
SPEECH_THRESHOLD = 0.5  # Silero's default
# A block with speech in fewer of its windows than this is "no speech" (~200 ms of 1 s).
# Chosen on bench/vad.py's recordings (seed 0, 22 real noises at 15 dB): 0.1 let Silero's
# hangover after speech label 7 % of noise-only seconds; 0.2 gives 2 % and loses no speech;
# 0.3 starts losing speech seconds.
MIN_SPEECH_FRACTION = 0.2
MODEL_FILE = "silero_vad.onnx"


class VadUnavailable(RuntimeError):
    """The Silero VAD model file is not installed."""


def model_path() -> Path:
    """The ONNX file inside the installed silero-vad wheel (found without importing it)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise VadUnavailable("the silero-vad package is not installed")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / MODEL_FILE
        if path.is_file():
            return path
    raise VadUnavailable(f"silero-vad is installed without its {MODEL_FILE}")


class SpeechDetector:
    """Streaming voice activity per block. Call :meth:`speech_fraction` on consecutive
    batches of one recording (it keeps the end of the previous batch as the next one's
    warm-up); :meth:`reset` before another recording."""

    def __init__(self, threads: int = 1, block_samples: int = BLOCK_SAMPLES) -> None:
        import onnxruntime as ort

        if block_samples < WINDOW:
            raise ValueError(f"blocks must hold at least {WINDOW} samples")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.block_samples = block_samples
        self.windows = -(-block_samples // WINDOW)  # windows that cover a block (32 for 1 s)
        # each row: context, warm-up windows, then the block's windows (ending at its end)
        self._history = CONTEXT + (WARMUP_WINDOWS + self.windows) * WINDOW - block_samples
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        self._previous = np.zeros(self._history, dtype=np.float32)

    def skip(self, blocks: np.ndarray) -> None:
        """Take ``blocks`` as history for the next batch without running the model."""
        blocks = np.atleast_2d(np.asarray(blocks, dtype=np.float32))
        stream = np.concatenate([self._previous, blocks.reshape(-1)])
        self._previous = stream[-self._history :].copy()

    def speech_probabilities(self, blocks: np.ndarray) -> np.ndarray:
        """(n, block_samples) float32 -> (n, windows) speech probability per window."""
        blocks = np.atleast_2d(np.asarray(blocks, dtype=np.float32))
        n = len(blocks)
        if n == 0:
            return np.zeros((0, self.windows), dtype=np.float32)
        if blocks.shape[1] != self.block_samples:
            raise ValueError(f"expected blocks of {self.block_samples} samples")
        stream = np.concatenate([self._previous, blocks.reshape(-1)])
        self._previous = stream[-self._history :].copy()
        # row i: the `history` samples before block i, then block i
        starts = np.arange(n) * self.block_samples
        span = self._history + self.block_samples
        rows = np.lib.stride_tricks.sliding_window_view(stream, span)[starts]
        state = np.zeros((2, n, 128), dtype=np.float32)
        probabilities = np.empty((n, self.windows), dtype=np.float32)
        for step in range(WARMUP_WINDOWS + self.windows):
            x = np.ascontiguousarray(rows[:, step * WINDOW : step * WINDOW + CONTEXT + WINDOW])
            out, state = self._session.run(None, {"input": x, "state": state, "sr": self._sr})
            if step >= WARMUP_WINDOWS:
                probabilities[:, step - WARMUP_WINDOWS] = out[:, 0]
        return probabilities

    def speech_fraction(self, blocks: np.ndarray) -> np.ndarray:
        """(n,) share of the windows lying wholly inside each block that hold speech (the
        first window reaches into the block before, whose speech it would carry over)."""
        probabilities = self.speech_probabilities(blocks)
        if self.windows * WINDOW > self.block_samples:
            probabilities = probabilities[:, 1:]
        return (probabilities >= SPEECH_THRESHOLD).mean(axis=1)

    def speech_mask(self, blocks: np.ndarray) -> np.ndarray:
        """(n,) True where a block holds speech (see module notes)."""
        return self.speech_fraction(blocks) >= MIN_SPEECH_FRACTION


# --- measuring the detector (bench/vad.py and its test) ---------------------------------------

TRUTH_SPEECH, TRUTH_NOISE, TRUTH_UNSURE = 1, 0, -1
# A block counts as speech when its clean speech is active (10 ms frames within 35 dB of the
# recording's loudest frame) for at least this long; as noise-only when it holds no speech.
TRUTH_MIN_SPEECH_S = 0.2
_FRAME = SAMPLE_RATE // 100


def block_truth(clean_speech: np.ndarray, block_samples: int = BLOCK_SAMPLES) -> np.ndarray:
    """Per block of a recording whose speech alone is ``clean_speech`` (zeros where only
    noise plays): TRUTH_SPEECH, TRUTH_NOISE (not one speech sample) or TRUTH_UNSURE (a
    little speech: neither counted as lost nor as a false alarm)."""
    x = np.asarray(clean_speech, dtype=np.float64)
    n_blocks = len(x) // block_samples
    frames = x[: n_blocks * block_samples].reshape(-1, _FRAME)
    energy = np.mean(frames**2, axis=1)
    active = energy > energy.max() * 10 ** (-35 / 10) if energy.max() > 0 else energy > 0
    per_block = active.reshape(n_blocks, -1).sum(axis=1) * _FRAME / SAMPLE_RATE
    any_sound = (np.abs(x[: n_blocks * block_samples]).reshape(n_blocks, -1) > 0).any(axis=1)
    truth = np.full(n_blocks, TRUTH_UNSURE)
    truth[per_block >= TRUTH_MIN_SPEECH_S] = TRUTH_SPEECH
    truth[~any_sound] = TRUTH_NOISE
    return truth


def error_rates(classified: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """``classified``: True where a block was given an emotion. Returns the share of
    noise-only blocks given an emotion and of speech blocks given none, with the counts."""
    classified = np.asarray(classified, dtype=bool)[: len(truth)]
    noise, speech = truth == TRUTH_NOISE, truth == TRUTH_SPEECH
    return {
        "noise_labelled": float(classified[noise].mean()) if noise.any() else 0.0,
        "speech_lost": float((~classified[speech]).mean()) if speech.any() else 0.0,
        "noise_blocks": int(noise.sum()),
        "speech_blocks": int(speech.sum()),
    }
