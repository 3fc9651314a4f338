"""Classify a recording block by block: stream, split, skip silence, batch, predict.

Pure ML core (no Django): the lecture service, `manage.py analyse` and the
benchmarks share it. Results come out batch by batch so callers can save and
publish them while the rest is still being computed.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emotions.ser import audio, networks, spectrogram, training
from emotions.ser.constants import BLOCK_SAMPLES, IMAGE_SIZE, SAMPLE_RATE
from emotions.ser.report import SegmentResult

# The first batch is small so the first results reach the page within seconds;
# later batches are larger for throughput.
FIRST_BATCH_BLOCKS = 8
BATCH_BLOCKS = 64


@dataclass
class Classifier:
    net: torch.nn.Module
    labels: list[str]
    device: torch.device
    image_size: int = IMAGE_SIZE  # the size the model was trained at

    @classmethod
    def from_checkpoint(cls, path: Path | str, device: str | None = None) -> "Classifier":
        dev = torch.device(device or spectrogram.pick_device())
        net, extra = networks.load_checkpoint(path, map_location=dev)
        labels = list(extra.get("labels") or [])
        if len(labels) != net.num_classes:
            raise ValueError(f"checkpoint {path} has {net.num_classes} outputs but labels {labels}")
        net.to(dev).eval()
        size = int(extra.get("image_size") or IMAGE_SIZE)
        return cls(net=networks.for_inference(net), labels=labels, device=dev, image_size=size)

    def predict_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """(n, BLOCK_SAMPLES) float32 → (n, classes) probabilities."""
        if len(blocks) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        x = spectrogram.blocks_to_model_input(
            torch.from_numpy(blocks), device=self.device, size=self.image_size
        )
        return training.predict_proba(self.net, x, device=self.device)


def classify_file(
    path: Path | str,
    classifier: Classifier,
    *,
    silence_threshold_dbfs: float = audio.SILENCE_THRESHOLD_DBFS,
) -> Iterator[tuple[list[SegmentResult], float]]:
    """Yield (segments of one batch, seconds decoded so far) until the file ends.

    Segments tile the recording exactly: block i spans [i, i+1) s and the last one
    ends at the recording's true end (its tail zero-padded for the model).
    """
    batch_sizes = iter([FIRST_BATCH_BLOCKS])
    decoded = 0
    for first, blocks, n_samples in _blocks_with_lengths(path, batch_sizes):
        silent = audio.silence_mask(blocks, threshold_dbfs=silence_threshold_dbfs)
        probs = classifier.predict_blocks(blocks[~silent])
        rows, k = [], 0
        for i in range(len(blocks)):
            index = first + i
            start = index * BLOCK_SAMPLES
            end = min(start + BLOCK_SAMPLES, decoded + n_samples)
            segment_start, segment_end = start / SAMPLE_RATE, end / SAMPLE_RATE
            if silent[i]:
                rows.append(SegmentResult(index, segment_start, segment_end, True, "", None, {}))
                continue
            p = probs[k]
            k += 1
            top = int(np.argmax(p))
            rows.append(
                SegmentResult(
                    index,
                    segment_start,
                    segment_end,
                    False,
                    classifier.labels[top],
                    float(p[top]),
                    {lab: float(v) for lab, v in zip(classifier.labels, p, strict=False)},
                )
            )
        decoded += n_samples
        yield rows, decoded / SAMPLE_RATE


def _blocks_with_lengths(path, first_sizes) -> Iterator[tuple[int, np.ndarray, int]]:
    """Blocks of the streamed file, with how many real (unpadded) samples each batch holds."""
    size = next(first_sizes, BATCH_BLOCKS)
    pending = np.zeros(0, dtype=np.float32)
    index = 0
    for chunk in audio.iter_decode(path):
        pending = np.concatenate([pending, chunk])
        while len(pending) >= size * BLOCK_SAMPLES:
            take = size * BLOCK_SAMPLES
            yield index, pending[:take].reshape(size, BLOCK_SAMPLES), take
            pending = pending[take:]
            index += size
            size = next(first_sizes, BATCH_BLOCKS)
    if len(pending):
        n_full = -(-len(pending) // BLOCK_SAMPLES)
        padded = np.zeros(n_full * BLOCK_SAMPLES, dtype=np.float32)
        padded[: len(pending)] = pending
        yield index, padded.reshape(n_full, BLOCK_SAMPLES), len(pending)
