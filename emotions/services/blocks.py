"""Clean and noise-mixed 1 s blocks of utterances, generated once and kept in storage.

Each set of blocks is a DerivedBlocks row, keyed by (utterance, SNR, noise, seed), whose
file is an .npz in storage: float16 peak-normalised blocks (16 000 samples each) and the
record that rebuilds them (noise offsets and gains per block, the generator seed). A
second training run on the same data reads these files instead of decoding and mixing
again; a worker on another host reads them through the storage API like any upload.

Clean blocks: the utterance decoded to 16 kHz mono, split into 1 s blocks (tail policy of
the audio core), blocks below the silence threshold dropped (lecture analysis never
classifies such blocks, so training on them only adds label noise), each block divided by
its peak. Mixed blocks: those clean blocks mixed with one noise recording at one SNR
(whole-block RMS definition, see emotions.ser.mixing), then peak-normalised again.
Mixing a peak-normalised block gives the same normalised result as mixing the raw one,
because the SNR gain scales with the block.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from emotions.models import DerivedBlocks, NoiseProfile, Utterance
from emotions.ser.constants import BLOCK_SAMPLES, SAMPLE_RATE, SILENCE_THRESHOLD_DBFS
from emotions.services.errors import ServiceError
from emotions.services.files import local_copy

logger = logging.getLogger(__name__)

# Bump when the way blocks are made changes: older cache files are then rebuilt.
CACHE_FORMAT = 1
CLEAN_SEED = 0  # clean blocks do not depend on the run's seed


class UnreadableAudio(ServiceError):
    """An utterance or noise file that cannot be decoded; training skips the utterance."""


@dataclass
class BlockCache:
    """Reads and makes cached blocks for one job; counts what it generated and reused.

    Decoded noise recordings are kept in memory for the job (a few MB each), the blocks
    themselves are read from storage each time they are needed.
    """

    generated: int = 0
    reused: int = 0
    blocks_generated: int = 0
    seconds_generating: float = 0.0
    _noise: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def clean(self, utterance: Utterance) -> np.ndarray:
        """(n, 16000) float16 peak-normalised speech blocks of ``utterance`` (n may be 0)."""
        key = DerivedBlocks.make_key(utterance.pk, None, None, CLEAN_SEED)
        cached = self._cached(key, utterance)
        if cached is not None:
            return cached
        started = time.perf_counter()
        blocks, record = _make_clean(utterance)
        self._store(utterance, None, None, CLEAN_SEED, key, blocks, record, started)
        return blocks

    def mixed(
        self, utterance: Utterance, noise: NoiseProfile, snr_db: float, seed: int
    ) -> np.ndarray:
        """The clean blocks of ``utterance`` mixed with ``noise`` at ``snr_db`` (float16)."""
        key = DerivedBlocks.make_key(utterance.pk, snr_db, noise.pk, seed)
        cached = self._cached(key, utterance, noise)
        if cached is not None:
            return cached
        clean = self.clean(utterance)
        started = time.perf_counter()
        blocks, record = _make_mixed(
            clean, self._noise_signal(noise), snr_db, mix_seed(seed, utterance.pk, noise.pk, snr_db)
        )
        record |= {"audio": utterance.audio.name, "noise": noise.pk, "noise_file": noise.audio.name}
        self._store(utterance, snr_db, noise, seed, key, blocks, record, started)
        return blocks

    def _noise_signal(self, noise: NoiseProfile) -> np.ndarray:
        if noise.pk not in self._noise:
            from emotions.ser import audio

            with local_copy(noise.audio) as path:
                try:
                    self._noise[noise.pk] = audio.decode(path)
                except audio.AudioDecodeError as exc:
                    raise ServiceError(
                        f"The noise recording “{noise.name}” cannot be read: {exc.reason}"
                    ) from exc
        return self._noise[noise.pk]

    def _cached(
        self, key: str, utterance: Utterance, noise: NoiseProfile | None = None
    ) -> np.ndarray | None:
        row = DerivedBlocks.objects.filter(key=key).first()
        if row is None:
            return None
        record = row.record or {}
        current = (
            record.get("format") == CACHE_FORMAT
            and record.get("audio") == utterance.audio.name
            and (noise is None or record.get("noise_file") == noise.audio.name)
        )
        blocks = _read(row) if current else None
        if blocks is None:
            # The recording was replaced, the cache format changed or the file is gone.
            row.data.delete(save=False)
            row.delete()
            return None
        self.reused += 1
        return blocks

    def _store(
        self,
        utterance: Utterance,
        snr_db: float | None,
        noise: NoiseProfile | None,
        seed: int,
        key: str,
        blocks: np.ndarray,
        record: dict,
        started: float,
    ) -> None:
        record = {"format": CACHE_FORMAT, **record}
        buffer = io.BytesIO()
        np.savez(buffer, blocks=blocks, record=np.array(json.dumps(record)))
        row = DerivedBlocks(
            utterance=utterance,
            snr_db=snr_db,
            noise=noise,
            seed=seed,
            key=key,
            n_blocks=len(blocks),
            record=record,
        )
        row.data.save(key.replace(":", "_") + ".npz", ContentFile(buffer.getvalue()), save=False)
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:
            # Another job made the same blocks meanwhile: keep theirs (they are identical).
            row.data.delete(save=False)
        self.generated += 1
        self.blocks_generated += len(blocks)
        self.seconds_generating += time.perf_counter() - started


def mix_seed(seed: int, utterance_id: int, noise_id: int, snr_db: float) -> int:
    """The noise-offset generator seed of one (utterance, noise, SNR) mixture.

    Derived from the run's seed so that mixtures differ between utterances and SNRs but
    are the same on every rebuild.
    """
    text = f"{seed}:{utterance_id}:{noise_id}:{snr_db:g}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") >> 1


def _make_clean(utterance: Utterance) -> tuple[np.ndarray, dict]:
    from emotions.ser import audio
    from emotions.ser.mixing import normalise_peak

    with local_copy(utterance.audio) as path:
        try:
            signal = audio.decode(path)
        except audio.AudioDecodeError as exc:
            raise UnreadableAudio(exc.reason) from exc
    blocks = audio.split_blocks(signal)
    silent = (
        audio.silence_mask(blocks, SILENCE_THRESHOLD_DBFS) if len(blocks) else np.zeros(0, bool)
    )
    speech = blocks[~silent]
    normalised = normalise_peak(speech).numpy() if len(speech) else speech
    record = {
        "kind": "clean",
        "audio": utterance.audio.name,
        "sample_rate": SAMPLE_RATE,
        "block_samples": BLOCK_SAMPLES,
        "duration_s": round(signal.size / SAMPLE_RATE, 4),
        "n_blocks": int(len(speech)),
        "silent_blocks_dropped": int(silent.sum()),
        "silence_threshold_dbfs": SILENCE_THRESHOLD_DBFS,
    }
    return normalised.astype(np.float16).reshape(-1, BLOCK_SAMPLES), record


def _make_mixed(
    clean: np.ndarray, noise: np.ndarray, snr_db: float, seed: int
) -> tuple[np.ndarray, dict]:
    from emotions.ser.mixing import augment_blocks

    record = {"kind": "mixed", "snr_db": float(snr_db), "seed": seed}
    if len(clean) == 0:
        return clean, record | {"offsets": [], "gains": [], "skipped": []}
    (mix,) = augment_blocks(clean.astype(np.float32), noise, [snr_db], seed=seed)
    record |= {
        "offsets": mix.record.offsets.tolist(),
        "gains": [round(g, 8) for g in mix.record.gains.tolist()],
        "skipped": list(mix.record.reasons),
    }
    return mix.mixed.numpy().astype(np.float16), record


def _read(row: DerivedBlocks) -> np.ndarray | None:
    try:
        with row.data.storage.open(row.data.name, "rb") as fh:
            data = np.load(io.BytesIO(fh.read()), allow_pickle=False)
            blocks = data["blocks"]
    except (OSError, ValueError, KeyError):
        logger.warning("cached blocks %s unreadable; rebuilding", row.key, exc_info=True)
        return None
    if blocks.ndim != 2 or blocks.shape[1] != BLOCK_SAMPLES:
        return None
    return blocks
