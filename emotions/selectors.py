"""Every read of user data, always scoped to the requesting user."""

import datetime

from django.db.models import Count, Q, QuerySet, Sum

from emotions.models import (
    Dataset,
    DerivedBlocks,
    EmotionModel,
    Job,
    Lecture,
    NoiseProfile,
    TrainingRun,
    Utterance,
    Visibility,
)


def jobs_for(user) -> QuerySet[Job]:
    if not user.is_authenticated:
        return Job.objects.none()
    return Job.objects.filter(owner=user)


def job_for(user, job_id: int) -> Job:
    """The user's job; raises Job.DoesNotExist for other users' jobs too (no leak)."""
    return jobs_for(user).get(pk=job_id)


def active_model_for(user) -> EmotionModel | None:
    """The model lecture analysis uses by default: the newest active one the user may use."""
    return models_for(user).filter(is_active=True).first()


def models_for(user) -> QuerySet[EmotionModel]:
    if not user.is_authenticated:
        return EmotionModel.objects.none()
    return EmotionModel.objects.filter(Q(owner=user) | Q(visibility=Visibility.SHARED))


def lectures_for(user) -> QuerySet[Lecture]:
    if not user.is_authenticated:
        return Lecture.objects.none()
    return Lecture.objects.filter(owner=user).select_related("job", "model")


def lecture_for(user, lecture_id: int) -> Lecture:
    return lectures_for(user).get(pk=lecture_id)


def search_lectures(
    user,
    q: str = "",
    recorded_from: datetime.date | None = None,
    recorded_to: datetime.date | None = None,
) -> QuerySet[Lecture]:
    """The user's lectures whose title or course contains `q`, recorded within the dates
    given (each bound inclusive, either may be left open); the page and the API both list
    through here."""
    lectures = lectures_for(user)
    if q:
        lectures = lectures.filter(Q(title__icontains=q) | Q(course__icontains=q))
    if recorded_from is not None:
        lectures = lectures.filter(recorded_on__gte=recorded_from)
    if recorded_to is not None:
        lectures = lectures.filter(recorded_on__lte=recorded_to)
    return lectures


# ---------------------------------------------------------------- datasets and noise


def datasets_for(user) -> QuerySet[Dataset]:
    """The user's own datasets and those shared with everyone."""
    if not user.is_authenticated:
        return Dataset.objects.none()
    return Dataset.objects.filter(Q(owner=user) | Q(visibility=Visibility.SHARED)).select_related(
        "owner", "import_job"
    )


def ready_datasets_for(user) -> QuerySet[Dataset]:
    """datasets_for, only those whose import finished: what training may use."""
    return datasets_for(user).filter(status=Dataset.Status.READY)


def datasets_with_totals(user) -> QuerySet[Dataset]:
    """datasets_for, each with n_utterances, n_speakers, duration_s and n_blocks."""
    return datasets_for(user).annotate(
        n_utterances=Count("utterances", filter=Q(utterances__excluded=False)),
        n_speakers=Count(
            "utterances__speaker", filter=Q(utterances__excluded=False), distinct=True
        ),
        total_duration_s=Sum("utterances__duration_s", filter=Q(utterances__excluded=False)),
        n_blocks=Sum("utterances__n_blocks", filter=Q(utterances__excluded=False)),
    )


def utterances_for(user) -> QuerySet[Utterance]:
    """Utterances of the datasets the user may see."""
    return Utterance.objects.filter(dataset__in=datasets_for(user)).select_related("dataset")


def dataset_class_counts(dataset: Dataset) -> dict:
    """Per class, over the utterances not excluded: utterances, duration, clean 1 s blocks,
    the blocks the method's noise mix-up makes from them (clean + one noisy copy per default
    SNR: Tables 2 and 3), and the noisy blocks really generated so far, per SNR."""
    from emotions.ser.stats import class_table

    kept = dataset.utterances.filter(excluded=False)
    table = class_table(kept.values_list("label", "n_blocks"))
    mixup = {row.label: row.generated_blocks for row in table.rows}
    rows = {
        r["label"]: {
            "label": r["label"],
            "utterances": r["n"],
            "duration_s": r["duration"] or 0.0,
            "blocks": r["blocks"] or 0,
            "by_snr": {},
        }
        for r in kept.values("label")
        .annotate(n=Count("id"), duration=Sum("duration_s"), blocks=Sum("n_blocks"))
        .order_by("label")
    }
    derived = (
        DerivedBlocks.objects.filter(utterance__in=kept, snr_db__isnull=False)
        .values("utterance__label", "snr_db")
        .annotate(blocks=Sum("n_blocks"))
    )
    snrs = set()
    for r in derived:
        snrs.add(r["snr_db"])
        rows[r["utterance__label"]]["by_snr"][r["snr_db"]] = r["blocks"] or 0
    snrs = sorted(snrs)
    for row in rows.values():
        row["snr_blocks"] = [row["by_snr"].get(snr, 0) for snr in snrs]
        row["mixup_blocks"] = mixup[row["label"]]
    classes = list(rows.values())
    totals = {
        "utterances": sum(r["utterances"] for r in classes),
        "duration_s": sum(r["duration_s"] for r in classes),
        "blocks": sum(r["blocks"] for r in classes),
        "snr_blocks": [sum(r["by_snr"].get(snr, 0) for r in classes) for snr in snrs],
        "mixup_blocks": table.total.generated_blocks,
    }
    speakers = kept.exclude(speaker="").values("speaker").distinct().count()
    excluded = dataset.utterances.filter(excluded=True).count()
    return {
        "classes": classes, "snrs": snrs, "totals": totals, "speakers": speakers,
        "excluded": excluded, "mixup_snrs": [f"{snr:g}" for snr in table.snrs_db],
    }  # fmt: skip


def speaker_counts(dataset: Dataset) -> list[dict]:
    """Per speaker: gender, group and utterances (the basis of speaker-independent splits)."""
    return list(
        dataset.utterances.filter(excluded=False)
        .values("speaker", "gender", "group")
        .annotate(utterances=Count("id"), duration_s=Sum("duration_s"))
        .order_by("speaker", "group")
    )


def noise_profiles_for(user) -> QuerySet[NoiseProfile]:
    """The user's own noise recordings and those shared with everyone."""
    if not user.is_authenticated:
        return NoiseProfile.objects.none()
    return NoiseProfile.objects.filter(
        Q(owner=user) | Q(visibility=Visibility.SHARED)
    ).select_related("owner")


def noise_profile_for(user, profile_id: int) -> NoiseProfile:
    return noise_profiles_for(user).get(pk=profile_id)


# ---------------------------------------------------------------- training


def training_runs_for(user) -> QuerySet[TrainingRun]:
    """The user's own training runs; other users' runs do not exist for them."""
    if not user.is_authenticated:
        return TrainingRun.objects.none()
    return TrainingRun.objects.filter(owner=user).select_related("dataset", "job", "model")


def can_edit(user, obj) -> bool:
    """Whether the user may change or delete `obj` (a dataset, noise profile or model):
    its owner or staff. The one place this rule is written."""
    return user.is_authenticated and (user.is_staff or obj.owner_id == user.pk)
