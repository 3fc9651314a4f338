"""Classify a recording block by block: stream, split, skip silence and noise without
speech, batch, predict.

Pure ML core (no Django): the lecture service, `manage.py analyse` and the benchmarks
share it. Results come out batch by batch so callers can save and publish them while the
rest is still being computed.

Two runtimes, one interface (:class:`Classifier`):

- **ONNX Runtime** on the CPU (the default where there is no GPU): the network exported by
  :mod:`emotions.ser.onnx_runtime` (int8 when it agrees with PyTorch, else fp32), fed by
  the numpy spectrogram path. Neither imports torch, so a worker that only analyses stays
  small. While ONNX Runtime classifies one batch (one thread, GIL released), the next
  batch is decoded and turned into spectrograms on the other core, in pre-allocated
  buffers reused batch after batch.
- **PyTorch**: the reference, used on CUDA, and on the CPU when a network cannot be
  exported.

Blocks below the level threshold are "silence"; with the voice-activity detector on,
louder blocks without speech are "no speech". Neither is spectrogrammed or classified.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emotions.ser import audio, onnx_runtime, spectrogram_numpy
from emotions.ser.constants import BLOCK_SAMPLES, IMAGE_SIZE, SAMPLE_RATE
from emotions.ser.report import NO_SPEECH, SegmentResult

log = logging.getLogger(__name__)

# The first batch is small so the first results reach the page within seconds. Later ones:
# ONNX Runtime on one thread ran MobileNetV2 at 152 images/s in batches of 8 against 127 in
# batches of 32 (smaller activations stay in cache), and its memory arena grows with the
# batch (peak RSS 959 MB at 32 on 5 min of speech); 16 is the compromise.
FIRST_BATCH_BLOCKS = 8
BATCH_BLOCKS = 16
# How many blocks of a recording calibrate a model that has no export yet (memory: 128
# images of 3 x 256 x 256 float32 are 100 MB, held only while exporting).
LECTURE_CALIBRATION_BLOCKS = 128
LECTURE_CALIBRATION_SOURCE = "blocks of the first lecture analysed (no training blocks here)"

SPEECH, SILENCE, NO_SPEECH_KIND = 0, 1, 2


@dataclass
class Classifier:
    """A trained model ready to classify blocks, whatever runs it."""

    labels: list[str]
    image_size: int = IMAGE_SIZE  # the size the model was trained at
    runtime: str = "torch fp32 cpu"  # what produced the report ("onnxruntime int8", ...)
    net: Any = None  # the PyTorch network (torch runtimes)
    device: Any = None  # its torch.device
    onnx: onnx_runtime.OnnxModel | None = None
    card: dict[str, Any] | None = None  # the export's card (ONNX runtimes)
    _buffers: list[np.ndarray] = field(default_factory=list, repr=False)

    @classmethod
    def from_checkpoint(cls, path: Path | str, device: str | None = None) -> Classifier:
        """The PyTorch reference, on ``device`` (default: the ML core's device choice)."""
        from emotions.ser import networks
        from emotions.ser.device import choose_device

        dev = choose_device(device)
        net, extra = networks.load_checkpoint(path, map_location=dev)
        labels = list(extra.get("labels") or [])
        if len(labels) != net.num_classes:
            raise ValueError(f"checkpoint {path} has {net.num_classes} outputs but labels {labels}")
        net.to(dev).eval()
        size = int(extra.get("image_size") or IMAGE_SIZE)
        return cls(
            labels=labels,
            image_size=size,
            runtime=f"torch fp32 {dev.type}",
            net=networks.for_inference(net),
            device=dev,
        )

    @classmethod
    def from_export(
        cls,
        folder: Path | str,
        labels: Sequence[str],
        threads: int = onnx_runtime.DEFAULT_THREADS,
    ) -> Classifier:
        """The ONNX export in ``folder`` (see :func:`onnx_runtime.export_for_inference`)."""
        model, card = onnx_runtime.load(folder, threads=threads)
        spectrogram_numpy.reuse_freed_memory()  # no page faults per batch (see there)
        if not onnx_runtime.labels_match(card, labels):
            raise ValueError(f"the export in {folder} has {card.get('num_classes')} outputs")
        return cls(
            labels=list(labels),
            image_size=int(card["image_size"]),
            runtime=onnx_runtime.runtime_label(card),
            onnx=model,
            card=card,
        )

    def model_input(self, blocks: np.ndarray, slot: int = 0) -> Any:
        """Model input for ``blocks``: numpy into buffer ``slot`` (ONNX), a tensor (torch)."""
        if self.onnx is None:
            from emotions.ser import spectrogram

            return spectrogram.blocks_to_model_input(
                blocks, device=self.device, size=self.image_size
            )
        while len(self._buffers) <= slot:
            self._buffers.append(np.empty((0, 3, self.image_size, self.image_size), np.float32))
        if len(self._buffers[slot]) < len(blocks):
            shape = (max(len(blocks), BATCH_BLOCKS), 3, self.image_size, self.image_size)
            self._buffers[slot] = np.empty(shape, dtype=np.float32)
        return spectrogram_numpy.blocks_to_model_input(
            blocks, self.image_size, out=self._buffers[slot]
        )

    def predict_images(self, images: Any) -> np.ndarray:
        """Model input -> (n, classes) float32 probabilities."""
        if len(images) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        if self.onnx is not None:
            return self.onnx.predict_proba(images)
        from emotions.ser import training

        return training.predict_proba(self.net, images, device=self.device)

    def predict_blocks(self, blocks: np.ndarray) -> np.ndarray:
        """(n, BLOCK_SAMPLES) float32 -> (n, classes) probabilities."""
        if len(blocks) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return self.predict_images(self.model_input(blocks))


def wants_torch(device: str | None = None) -> bool:
    """Whether this process should run models with PyTorch on CUDA. Answered without
    importing torch where no GPU can exist: ``SERSITE_DEVICE=cpu``, or no NVIDIA driver."""
    wanted = (device or os.environ.get("SERSITE_DEVICE", "") or "auto").strip().lower()
    if wanted == "cpu":
        return False
    if wanted == "auto" and not (
        Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidiactl").exists()
    ):
        return False
    from emotions.ser.device import choose_device

    return choose_device(device).type == "cuda"


def load_classifier(
    checkpoint: Path | str,
    export_dir: Path | str,
    labels: Sequence[str],
    *,
    recording: Path | str | None = None,
    device: str | None = None,
) -> Classifier:
    """The classifier this process should use for the model in ``checkpoint``.

    On CUDA: PyTorch. On the CPU: the ONNX export in ``export_dir``; a model without one is
    exported now, calibrated on the first blocks of ``recording`` (and the card says so),
    or, when export fails, PyTorch on the CPU.
    """
    if wants_torch(device):
        return Classifier.from_checkpoint(checkpoint, device)
    export_dir = Path(export_dir)
    if onnx_runtime.read_card(export_dir) is None:
        try:
            export_checkpoint(checkpoint, export_dir, recording)
        except Exception as exc:  # the reference still works: slower, but a report
            log.warning("no ONNX export for %s (%s): running PyTorch", checkpoint, exc)
            return Classifier.from_checkpoint(checkpoint, "cpu")
    return Classifier.from_export(export_dir, labels)


def export_checkpoint(
    checkpoint: Path | str, export_dir: Path | str, recording: Path | str | None
) -> dict[str, Any]:
    """Export a saved model, calibrated on the first blocks of ``recording`` that hold
    sound: the lazy path for models trained before exports existed (imports torch)."""
    from emotions.ser import networks

    if recording is None:
        raise ValueError("a model without an export needs a recording to calibrate on")
    net, extra = networks.load_checkpoint(checkpoint, map_location="cpu")
    size = int(extra.get("image_size") or IMAGE_SIZE)
    blocks = calibration_blocks(recording, LECTURE_CALIBRATION_BLOCKS)
    if not len(blocks):
        raise ValueError("the recording holds no sound to calibrate on")
    images = spectrogram_numpy.blocks_to_model_input(blocks, size)
    return onnx_runtime.export_for_inference(
        net, images, export_dir, calibration_source=LECTURE_CALIBRATION_SOURCE
    )


def calibration_blocks(path: Path | str, limit: int) -> np.ndarray:
    """Up to ``limit`` blocks of ``path`` above the silence threshold, from its start."""
    kept: list[np.ndarray] = []
    n = 0
    for batch in audio.block_batches(path, BATCH_BLOCKS):
        loud = batch.blocks[~audio.silence_mask(batch.blocks)]
        kept.append(loud[: limit - n])
        n += len(kept[-1])
        if n >= limit:
            break
    return np.concatenate(kept) if kept else np.zeros((0, BLOCK_SAMPLES), np.float32)


def block_kinds(
    blocks: np.ndarray,
    *,
    silence_threshold_dbfs: float = audio.SILENCE_THRESHOLD_DBFS,
    detector: Any = None,
) -> np.ndarray:
    """(n,) SPEECH, SILENCE or NO_SPEECH_KIND per block. The detector (a
    vad.SpeechDetector) sees every block, so its state follows the recording."""
    kinds = np.where(audio.silence_mask(blocks, threshold_dbfs=silence_threshold_dbfs), 1, 0)
    if detector is not None:
        if (kinds == SPEECH).any():
            voiced = detector.speech_mask(blocks)
            kinds[(kinds == SPEECH) & ~voiced] = NO_SPEECH_KIND
        else:  # a silent batch costs nothing: the detector only keeps its end as history
            detector.skip(blocks)
    return kinds


def classify_file(
    path: Path | str,
    classifier: Classifier,
    *,
    silence_threshold_dbfs: float = audio.SILENCE_THRESHOLD_DBFS,
    vad: bool = True,
) -> Iterator[tuple[list[SegmentResult], float]]:
    """Yield (segments of one batch, seconds decoded so far) until the file ends.

    Segments tile the recording exactly: block i spans [i, i+1) s and the last one
    ends at the recording's true end (its tail zero-padded for the model). With ``vad``
    (the default), blocks without speech are "no speech" and get no emotion.
    """
    detector = None
    if vad:
        from emotions.ser.vad import SpeechDetector

        detector = SpeechDetector()
    batches = audio.block_batches(
        path, BATCH_BLOCKS, first_batch_blocks=FIRST_BATCH_BLOCKS, min_tail_fraction=0.0
    )
    decoded = 0
    pending: tuple[audio.BlockBatch, np.ndarray, Future | None, int] | None = None
    # One thread runs the model while this one decodes and computes the next batch's input.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="classify") as pool:
        for slot, batch in enumerate(batches):
            kinds = block_kinds(
                batch.blocks, silence_threshold_dbfs=silence_threshold_dbfs, detector=detector
            )
            speech = kinds == SPEECH
            future = None
            if speech.any():
                images = classifier.model_input(batch.blocks[speech], slot % 2)
                future = pool.submit(classifier.predict_images, images)
            if pending is not None:
                rows, decoded = _segments(*pending, classifier.labels)
                yield rows, decoded / SAMPLE_RATE
            pending = (batch, kinds, future, decoded)
        if pending is not None:
            rows, decoded = _segments(*pending, classifier.labels)
            yield rows, decoded / SAMPLE_RATE


def _segments(
    batch: audio.BlockBatch,
    kinds: np.ndarray,
    future: Future | None,
    decoded: int,
    labels: Sequence[str],
) -> tuple[list[SegmentResult], int]:
    probs = future.result() if future is not None else np.zeros((0, len(labels)))
    rows, k = [], 0
    for i, kind in enumerate(kinds):
        index = batch.first + i
        start = index * BLOCK_SAMPLES
        end = min(start + BLOCK_SAMPLES, decoded + batch.samples)
        segment_start, segment_end = start / SAMPLE_RATE, end / SAMPLE_RATE
        if kind != SPEECH:
            label = NO_SPEECH if kind == NO_SPEECH_KIND else ""
            rows.append(SegmentResult(index, segment_start, segment_end, True, label, None, {}))
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
                labels[top],
                float(p[top]),
                {lab: float(v) for lab, v in zip(labels, p, strict=False)},
            )
        )
    return rows, decoded + batch.samples
