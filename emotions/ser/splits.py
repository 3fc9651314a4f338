"""Train/test split protocols over utterances and their 1 s blocks.

Which protocol a number was measured under matters more than the model: random
splits score 6-7 points higher than speaker-independent ones on IEMOCAP, and the
method's own random split over blocks puts blocks of one utterance in both train
and test. Every split therefore records its protocol and seed, and has a
fingerprint that a trained model stores so its evaluation can be reproduced.

Indices refer to positions in the sequence the caller passed (utterances), or to
blocks numbered utterance by utterance for `random_blocks`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from sklearn.model_selection import (
    GroupShuffleSplit,
    LeaveOneGroupOut,
    ShuffleSplit,
    StratifiedShuffleSplit,
)

RANDOM_BLOCKS = "random_blocks"
BY_UTTERANCE = "by_utterance"
SPEAKER_INDEPENDENT = "speaker_independent"
LEAVE_ONE_GROUP_OUT = "leave_one_group_out"

DEFAULT_TEST_FRACTION = 0.2  # the method's 80/20


class SplitError(ValueError):
    """A split cannot be made as asked (too few items, speakers or groups)."""


class LabelledItem(Protocol):
    """What the protocols read from an item; CorpusItem satisfies it."""

    @property
    def label(self) -> str: ...

    @property
    def speaker(self) -> str: ...

    @property
    def group(self) -> str: ...


@dataclass(frozen=True)
class Split:
    """Sorted train and test indices with the protocol and seed that made them."""

    train: list[int]
    test: list[int]
    protocol: str
    seed: int | None
    meta: dict = field(default_factory=dict, hash=False)

    def fingerprint(self) -> str:
        """sha256 over protocol, seed and the sorted indices: equal splits, equal prints."""
        payload = json.dumps(
            {
                "protocol": self.protocol,
                "seed": self.seed,
                "train": sorted(self.train),
                "test": sorted(self.test),
            },
            separators=(",", ":"),
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode("ascii")).hexdigest()


def random_blocks(
    n_blocks_per_item: Sequence[int],
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
) -> Split:
    """The method's protocol: 80/20 at random over all blocks of all utterances.

    Kept to reproduce the published numbers. It leaks: blocks of one utterance,
    and so its speaker, its words and its recording, land in both train and test,
    which overstates accuracy. Prefer `speaker_independent` for real estimates.
    """
    _check_fraction(test_fraction)
    offsets = _block_offsets(n_blocks_per_item)
    n_blocks = int(offsets[-1])
    if n_blocks < 2:
        raise SplitError("need at least two blocks to split")
    splitter = ShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    train, test = next(splitter.split(np.zeros(n_blocks)))
    return _make(
        train,
        test,
        RANDOM_BLOCKS,
        seed,
        unit="block",
        leaks_speakers=True,
        note="blocks of one utterance can be in both train and test",
    )


def by_utterance(
    items: Sequence[LabelledItem],
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
    stratify: bool = True,
) -> Split:
    """Utterances at random, each wholly in train or test; label shares kept when stratified.

    Speakers still appear on both sides. Stratification needs two utterances of
    every label and a test set at least as large as the number of labels; when
    that fails the split is made unstratified and meta says so, because a small
    hand-made set should still train.
    """
    _check_fraction(test_fraction)
    n = _check_count(items)
    labels = [item.label for item in items]
    reason = _cannot_stratify(labels, test_fraction) if stratify else "not requested"
    if reason is None:
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
        train, test = next(splitter.split(np.zeros(n), labels))
    else:
        splitter = ShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
        train, test = next(splitter.split(np.zeros(n)))
    meta: dict[str, object] = {"stratified": reason is None, "leaks_speakers": True}
    if reason is not None:
        meta["not_stratified_because"] = reason
    return _make(train, test, BY_UTTERANCE, seed, unit="utterance", **meta)


def speaker_independent(
    items: Sequence[LabelledItem],
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
) -> Split:
    """Whole speakers in train or test, never both.

    `test_fraction` is the share of speakers (rounded up) held out, as in
    scikit-learn's GroupShuffleSplit; the share of utterances follows from it.
    """
    _check_fraction(test_fraction)
    n = _check_count(items)
    speakers = [item.speaker for item in items]
    distinct = sorted(set(speakers))
    if len(distinct) < 2:
        raise SplitError(
            f"a speaker-independent split needs at least two speakers, found {distinct}; "
            "give the corpus speaker names (e.g. a speaker column or pattern)"
        )
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    try:
        train, test = next(splitter.split(np.zeros(n), groups=speakers))
    except ValueError as exc:
        raise SplitError(
            f"cannot hold out {test_fraction:.0%} of {len(distinct)} speakers: {exc}"
        ) from exc
    test_speakers = sorted({speakers[i] for i in test})
    _assert_disjoint(speakers, train, test)
    return _make(
        train,
        test,
        SPEAKER_INDEPENDENT,
        seed,
        unit="utterance",
        test_speakers=test_speakers,
        n_speakers=len(distinct),
    )


def held_out_speakers(items: Sequence[LabelledItem], test_speakers: Sequence[str]) -> Split:
    """The named speakers in test, every other speaker in train: a speaker-independent split
    whose held-out voices the researcher chose (e.g. to match a published protocol)."""
    _check_count(items)
    speakers = [item.speaker for item in items]
    known = sorted(set(speakers))
    wanted = sorted(set(test_speakers))
    if not wanted:
        raise SplitError("name at least one speaker to hold out")
    missing = [s for s in wanted if s not in known]
    if missing:
        raise SplitError(f"no speaker {', '.join(missing)} in the data; speakers are {known}")
    if len(wanted) == len(known):
        raise SplitError("every speaker would be held out: keep at least one for training")
    held_out = set(wanted)
    test = [i for i, s in enumerate(speakers) if s in held_out]
    train = [i for i, s in enumerate(speakers) if s not in held_out]
    _assert_disjoint(speakers, train, test)
    return _make(
        train,
        test,
        SPEAKER_INDEPENDENT,
        None,
        unit="utterance",
        test_speakers=wanted,
        n_speakers=len(known),
        named=True,
    )


def leave_one_group_out(items: Sequence[LabelledItem], test_group: str) -> Split:
    """Every item of `test_group` (e.g. IEMOCAP session "Ses05") in test, the rest in train."""
    groups = [item.group for item in items]
    known = sorted(set(groups))
    if test_group not in known:
        raise SplitError(f"group {test_group!r} not in the data; groups are {known}")
    if len(known) < 2:
        raise SplitError("leave-one-group-out needs at least two groups")
    test = [i for i, g in enumerate(groups) if g == test_group]
    train = [i for i, g in enumerate(groups) if g != test_group]
    _assert_disjoint(groups, train, test)
    return _make(train, test, LEAVE_ONE_GROUP_OUT, None, unit="utterance", test_group=test_group)


def leave_one_group_out_folds(items: Sequence[LabelledItem]) -> list[Split]:
    """One split per group, in group order: the full cross-validation (e.g. 5 IEMOCAP folds)."""
    groups = [item.group for item in items]
    if len(set(groups)) < 2:
        raise SplitError("leave-one-group-out needs at least two groups")
    folds = []
    for train, test in LeaveOneGroupOut().split(np.zeros(len(groups)), groups=groups):
        test_group = groups[int(test[0])]
        folds.append(
            _make(train, test, LEAVE_ONE_GROUP_OUT, None, unit="utterance", test_group=test_group)
        )
    return folds


PROTOCOLS: tuple[str, ...] = (RANDOM_BLOCKS, BY_UTTERANCE, SPEAKER_INDEPENDENT, LEAVE_ONE_GROUP_OUT)


def make_splits(
    protocol: str,
    items: Sequence[LabelledItem],
    y: Sequence[int] | np.ndarray,
    n_blocks_per_item: Sequence[int],
    *,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    seed: int = 0,
    k: int | None = None,
    test_group: str = "",
    test_speakers: Sequence[str] = (),
) -> list[Split]:
    """The split of ``protocol`` (one of PROTOCOLS), or its ``k`` folds when ``k`` is given.

    ``y`` is the label index of each item (the folds are stratified on it). Leave-one-group-out
    without ``test_group`` holds out the last group in sorted order; with ``k`` it makes one
    fold per group whatever ``k`` is. ``test_speakers`` names the held-out speakers of a
    speaker-independent split (otherwise the seed picks them).
    """
    if protocol not in PROTOCOLS:
        raise SplitError(f"unknown protocol {protocol!r}; protocols are {list(PROTOCOLS)}")
    if test_speakers:
        if protocol != SPEAKER_INDEPENDENT or k:
            raise SplitError("held-out speakers are named for one speaker-independent split only")
        return [held_out_speakers(items, test_speakers)]
    if k:
        return kfold_splits(protocol, items, y, n_blocks_per_item, k=k, seed=seed)
    if protocol == RANDOM_BLOCKS:
        return [random_blocks(n_blocks_per_item, test_fraction, seed)]
    if protocol == BY_UTTERANCE:
        return [by_utterance(items, test_fraction, seed)]
    if protocol == SPEAKER_INDEPENDENT:
        return [speaker_independent(items, test_fraction, seed)]
    group = test_group or sorted({item.group for item in items})[-1]
    return [leave_one_group_out(items, group)]


def kfold_splits(
    protocol: str,
    items: Sequence[LabelledItem],
    y: Sequence[int] | np.ndarray,
    n_blocks_per_item: Sequence[int],
    *,
    k: int,
    seed: int = 0,
) -> list[Split]:
    """k stratified folds under ``protocol``: over blocks, utterances or whole speakers.

    scikit-learn refusing a split (too few items per class) raises ValueError.
    """
    from emotions.ser.training import kfold_indices  # torch, only when folds are asked for

    if protocol == LEAVE_ONE_GROUP_OUT:
        return leave_one_group_out_folds(items)
    y = np.asarray(y)
    if protocol == RANDOM_BLOCKS:
        pairs, unit = kfold_indices(np.repeat(y, n_blocks_per_item), k, seed), "block"
    elif protocol == SPEAKER_INDEPENDENT:
        pairs = kfold_indices(y, k, seed, groups=[item.speaker for item in items])
        unit = "utterance"
    else:  # by utterance: each utterance its own group
        pairs, unit = kfold_indices(y, k, seed, groups=np.arange(len(y))), "utterance"
    leaks = protocol != SPEAKER_INDEPENDENT
    return [
        _make(train, test, protocol, seed, unit=unit, fold=f + 1, k=k, leaks_speakers=leaks)
        for f, (train, test) in enumerate(pairs)
    ]


def _make(train, test, protocol: str, seed: int | None, **meta: object) -> Split:
    return Split(
        train=sorted(int(i) for i in train),
        test=sorted(int(i) for i in test),
        protocol=protocol,
        seed=seed,
        meta=dict(meta),
    )


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise SplitError(f"test_fraction must be between 0 and 1, not {test_fraction}")


def _check_count(items: Sequence[LabelledItem]) -> int:
    if len(items) < 2:
        raise SplitError(f"need at least two items to split, got {len(items)}")
    return len(items)


def _cannot_stratify(labels: list[str], test_fraction: float) -> str | None:
    counts = Counter(labels)
    rare = sorted(label for label, count in counts.items() if count < 2)
    if rare:
        return f"labels with a single utterance: {rare}"
    n_test = int(np.ceil(test_fraction * len(labels)))
    if n_test < len(counts) or len(labels) - n_test < len(counts):
        return "too few utterances for every label on both sides"
    return None


def _assert_disjoint(keys: Sequence[str], train, test) -> None:
    # A guarantee, not a hope: a leak here would silently inflate every reported score.
    overlap = {keys[i] for i in train} & {keys[i] for i in test}
    if overlap:
        raise SplitError(f"split leaks {sorted(overlap)} into both train and test")


def _block_offsets(n_blocks_per_item: Sequence[int]) -> np.ndarray:
    counts = np.asarray(n_blocks_per_item, dtype=np.int64)
    if counts.ndim != 1 or (counts < 0).any():
        raise SplitError("n_blocks_per_item must be a flat sequence of non-negative counts")
    return np.concatenate([[0], np.cumsum(counts)])
