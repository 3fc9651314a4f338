"""Creating a training run (checked, recorded, queued as a job) and deleting one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count

from emotions import selectors
from emotions.models import Dataset, Job, NoiseProfile, TrainingRun
from emotions.ser.constants import BACKBONES, DEFAULT_BACKBONE, DEFAULT_SNRS_DB
from emotions.services import datasets, jobs
from emotions.services.errors import Conflict, NotFound, ServiceError
from emotions.services.training.config import (
    choice,
    clean_config,
    clean_kfold,
    clean_seed,
    clean_snrs,
)

Preset = TrainingRun.Preset
Protocol = TrainingRun.Protocol

ACTIVE_STATES = (Job.State.QUEUED, Job.State.RUNNING)
LEAK_WARNING = (
    "Random splits over blocks put blocks of one utterance, and so its speaker, in both "
    "training and test: scores come out higher than on unseen speakers."
)


def create_training_run(
    owner,
    dataset: Dataset,
    *,
    preset: str = Preset.MIXUP,
    protocol: str = Protocol.SPEAKER,
    noises: Iterable[NoiseProfile] = (),
    train_noises: Iterable[NoiseProfile] = (),
    test_noises: Iterable[NoiseProfile] = (),
    snrs: Sequence[float] = DEFAULT_SNRS_DB,
    backbone: str = DEFAULT_BACKBONE,
    config: dict | None = None,
    seed: int = 0,
    kfold: int | bool | None = None,
    name: str = "",
    dispatch: bool = True,
) -> TrainingRun:
    """Check a training request and queue it as a gpu job; returns the run.

    Noises: either one list (``noises``, or only one of ``train_noises``/``test_noises``),
    split deterministically into training and test noises, or both lists, which must not
    share a recording. Raises ServiceError (400), NotFound (404) or Conflict (409, an
    identical run of this user is queued or running) with a message for the user.
    ``dispatch=False`` saves the job without sending it (``manage.py train`` runs it itself).
    """
    if not selectors.datasets_for(owner).filter(pk=dataset.pk).exists():
        raise NotFound("No such dataset.")
    preset = choice(preset, Preset.values, "preset")
    protocol = choice(protocol, Protocol.values, "protocol")
    backbone = choice(backbone, BACKBONES, "backbone")
    snrs = clean_snrs(snrs)
    config = clean_config(config or {})
    seed = clean_seed(seed)
    kfold = clean_kfold(kfold)
    noises, train_noises, test_noises = list(noises), list(train_noises), list(test_noises)
    visible = set(selectors.noise_profiles_for(owner).values_list("pk", flat=True))
    hidden = sorted({n.pk for n in [*noises, *train_noises, *test_noises]} - visible)
    if hidden:
        raise NotFound(f"No such noise recording: {', '.join(f'#{pk}' for pk in hidden)}.")
    train_list, test_list = split_noises(preset, noises, train_noises, test_noises)
    _check_dataset(dataset, protocol, config, kfold)
    config = {**config, "backbone": backbone, "kfold": kfold}
    params = {
        "dataset": dataset.pk,
        "preset": preset,
        "protocol": protocol,
        "train_noises": sorted(n.pk for n in train_list),
        "test_noises": sorted(n.pk for n in test_list),
        "snrs": snrs,
        "config": config,
        "seed": seed,
    }
    fingerprint = fingerprint_of(params)
    with transaction.atomic():
        # One submit at a time per user, so a double click cannot queue two identical runs.
        get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
        _refuse_duplicate(owner, fingerprint)
        run = TrainingRun.objects.create(
            owner=owner,
            name=(name or "").strip()[:200],
            dataset=dataset,
            preset=preset,
            protocol=protocol,
            snrs=snrs,
            config=config,
            seed=seed,
        )
        run.train_noises.set(train_list)
        run.test_noises.set(test_list)
        job_params = {"run": run.pk, "fingerprint": fingerprint}
        run.job = jobs.create_job(owner, Job.Kind.TRAINING, job_params, dispatch=dispatch)
        run.save(update_fields=["job"])
    return run


def split_noises(
    preset: str,
    noises: list[NoiseProfile],
    train_noises: list[NoiseProfile],
    test_noises: list[NoiseProfile],
) -> tuple[list[NoiseProfile], list[NoiseProfile]]:
    """(training noises, test noises); test noises are never training noises.

    One list is split by id order: even positions train, odd positions test, so the
    same list gives the same split for both presets (and their runs compare fairly). The
    clean preset mixes nothing into training, so its training list is always empty.
    """
    if noises and (train_noises or test_noises):
        raise ServiceError(
            "Give either one list of noises (split into training and test noises for you) "
            "or separate training and test noises, not both."
        )
    if train_noises and test_noises:
        both = {n.pk for n in train_noises} & {n.pk for n in test_noises}
        if both:
            names = sorted(n.name for n in test_noises if n.pk in both)
            raise ServiceError(
                f"{', '.join(names)} cannot be both a training and a test noise: noise used "
                "in training would overstate robustness on the test sets."
            )
        train, test = _unique(train_noises), _unique(test_noises)
    else:
        one = _unique(noises or train_noises or test_noises)
        if len(one) == 1:
            train, test = [], one
        else:
            train, test = one[0::2], one[1::2]
    if preset == Preset.MIXUP and not train:
        raise ServiceError(
            "Noise mix-up needs at least two noise recordings: some to mix into training "
            "and different ones for the noisy test sets (test noises are never used in "
            "training). Add noise recordings, or choose the clean-only preset."
        )
    if preset == Preset.CLEAN:
        train = []
    return train, test


def run_warnings(run: TrainingRun) -> list[str]:
    """Sentences about what a run will not measure; nothing here refuses the run.

    A run without test noises (the clean preset with no noises chosen) scores only the
    clean test set: its rows at the SNRs are missing from the results, shown as "—"
    where runs are compared.
    """
    if run.test_noises.exists():
        return []
    snrs = ", ".join(f"{snr:g}" for snr in run.snrs) + " dB" if run.snrs else "the SNRs"
    missing = "are missing" if run.metrics else "will be missing"
    return [
        f"No test noises were chosen, so this run has no noisy test sets: its results at "
        f"{snrs} {missing} (shown as “—” when runs are compared); only the clean test "
        "set is scored. Choose test noises to measure robustness to noise."
    ]


def delete_run(run: TrainingRun) -> None:
    """Delete a finished run's record (its model stays); a running one must be cancelled."""
    job = run.job
    if job is not None and not job.is_terminal:
        raise Conflict("This run is still going: cancel it first, then delete it.")
    with transaction.atomic():
        run.delete()
        if job is not None:
            job.delete()


def fingerprint_of(params: dict) -> str:
    """sha256 of ``params`` as canonical JSON: equal requests, equal prints."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _unique(noises: list[NoiseProfile]) -> list[NoiseProfile]:
    return sorted({n.pk: n for n in noises}.values(), key=lambda n: n.pk)


def _check_dataset(dataset: Dataset, protocol: str, config: dict, kfold: int | None) -> None:
    datasets.require_ready(dataset)  # a failed or unfinished import never trains
    kept = dataset.utterances.filter(excluded=False)
    counts = dict(kept.values_list("label").annotate(n=Count("id")).values_list("label", "n"))
    if len(counts) < 2:
        have = ", ".join(f"{label} ({n})" for label, n in counts.items()) or "none"
        raise ServiceError(
            f"“{dataset}” needs utterances of at least two emotions to train a classifier; "
            f"it has {have} (excluded utterances do not count)."
        )
    if protocol == Protocol.SPEAKER:
        speakers = kept.exclude(speaker="").values("speaker").distinct().count()
        need = max(2, kfold or 0)
        if speakers < need:
            raise ServiceError(
                f"A speaker-independent split needs at least {need} speakers; “{dataset}” "
                f"has {speakers}. Give the utterances speaker names, or choose another protocol."
            )
        if kept.filter(speaker="").exists():
            raise ServiceError(
                "Some utterances have no speaker, so they cannot be kept out of the training "
                "speakers: name their speakers, exclude them, or choose another protocol."
            )
        _check_test_speakers(dataset, kept, config["test_speakers"], kfold)
    elif config["test_speakers"]:
        raise ServiceError(
            "Held-out speakers can be named for a speaker-independent split only; choose "
            "that protocol or leave the held-out speakers empty."
        )
    if protocol == Protocol.LEAVE_ONE_GROUP:
        groups = set(kept.values_list("group", flat=True))
        if len(groups) < 2:
            raise ServiceError(
                f"Leave-one-session-out needs at least two sessions (groups); “{dataset}” has "
                f"{len(groups)}."
            )
        if config["test_group"] and config["test_group"] not in groups:
            raise ServiceError(
                f"There is no session {config['test_group']!r}; "
                f"sessions: {', '.join(sorted(groups))}."
            )
    if protocol in (Protocol.UTTERANCE, Protocol.RANDOM_BLOCKS) and kfold:
        if min(counts.values()) < 2 or sum(counts.values()) < kfold:
            raise ServiceError(f"{kfold}-fold cross-validation needs more utterances per emotion.")


def _check_test_speakers(dataset: Dataset, kept, named: list[str], kfold: int | None) -> None:
    if not named:
        return
    if kfold:
        raise ServiceError(
            "Named held-out speakers make one split; k-fold cross-validation chooses its own. "
            "Leave one of them out."
        )
    speakers = set(kept.values_list("speaker", flat=True))
    missing = [s for s in named if s not in speakers]
    if missing:
        raise ServiceError(
            f"“{dataset}” has no speaker {', '.join(missing)}; its speakers are "
            f"{', '.join(sorted(speakers))}."
        )
    if set(named) >= speakers:
        raise ServiceError(
            "Every speaker would be held out: keep at least one speaker for training."
        )


def _refuse_duplicate(owner, fingerprint: str) -> None:
    same = Job.objects.filter(
        owner=owner,
        kind=Job.Kind.TRAINING,
        state__in=ACTIVE_STATES,
        params__fingerprint=fingerprint,
    ).first()
    if same is not None:
        run = TrainingRun.objects.filter(job=same).first()
        which = f" (run #{run.pk})" if run else ""
        raise Conflict(
            f"An identical training run is already {same.state}{which}: wait for it or cancel it."
        )
