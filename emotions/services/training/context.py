"""What the steps of a training job share: the job's context and the data passed between steps.

Dataclasses, not tuples: each step names what it reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from emotions.models import NoiseProfile, TrainingRun

if TYPE_CHECKING:
    from emotions.ser.splits import Split
    from emotions.services.blocks import BlockCache
    from emotions.services.jobs import Reporter

CLEAN_SET = "clean"  # the name of the test set without added noise


@dataclass
class JobContext:
    """One execution of a run's job: the run, its settings and what the steps record."""

    run: TrainingRun
    reporter: Reporter
    config: dict[str, Any]  # the defaults with the run's settings on top
    cache: BlockCache
    train_noises: list[NoiseProfile]
    test_noises: list[NoiseProfile]
    history: list[dict] = field(default_factory=list)  # one entry per epoch and fold
    timing: dict[str, float] = field(default_factory=dict)  # seconds per step
    last_cancel_check: float = 0.0
    validation: dict = field(default_factory=dict)  # the validation split, when one is carved

    def add_time(self, step: str, seconds: float) -> None:
        self.timing[step] = self.timing.get(step, 0.0) + round(seconds, 3)


@dataclass
class Corpus:
    """The run's usable utterances and their clean blocks, in id order."""

    utterances: list
    labels: list[str]
    y: np.ndarray  # label index per utterance
    clean: list[np.ndarray]  # float16 (n_i, 16000) per utterance
    skipped: list[dict] = field(default_factory=list)

    @property
    def n_blocks(self) -> list[int]:
        return [len(b) for b in self.clean]


@dataclass
class BlockOrigins:
    """Where each block of a set comes from, one entry per block."""

    utterance: np.ndarray  # position of the utterance in the corpus
    block: np.ndarray  # index of the block within its utterance
    noise: list[NoiseProfile | None]  # the noise mixed in, None for clean blocks

    @classmethod
    def concat(cls, parts: list[BlockOrigins]) -> BlockOrigins:
        return cls(
            np.concatenate([p.utterance for p in parts]) if parts else np.zeros(0, np.int64),
            np.concatenate([p.block for p in parts]) if parts else np.zeros(0, np.int64),
            [n for p in parts for n in p.noise],
        )


@dataclass
class Sets:
    """Training blocks and the test sets of one split, as float16 audio blocks."""

    train: np.ndarray
    train_y: np.ndarray
    tests: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (blocks, labels)
    mixtures: dict[str, list[dict]]  # "train"/"test" -> blocks per noise and SNR
    test_origins: dict[str, BlockOrigins] = field(default_factory=dict)  # name -> origins
    test_snrs: dict[str, float | None] = field(default_factory=dict)  # name -> SNR (None: clean)
    train_origins: BlockOrigins | None = None  # where each training block comes from


@dataclass
class Evaluation:
    """The network on every test set: the method's metrics and each block's probabilities."""

    metrics: dict[str, dict]  # test-set name -> metrics
    probabilities: dict[str, np.ndarray]  # test-set name -> (blocks, classes) float32


@dataclass
class FoldResult:
    """One split's outcome. Only the first fold keeps its sets and network: that one is saved."""

    split: Split
    metrics: dict[str, dict]  # test-set name -> the method's metrics
    sets: Sets | None = None
    net: Any = None  # an SERNetwork (torch is imported only by the worker)
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    baselines: dict[str, dict] = field(default_factory=dict)  # kind -> BaselineResult.to_dict()
