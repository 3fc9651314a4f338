"""Pages for datasets and noise recordings: function views calling selectors and services.

Uploads and imports go through the API from small scripts (static/js/datasets.js and
noise.js), which show upload progress; deleting and fetching the noise pack are plain
forms, so they work without scripts too.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from emotions import selectors
from emotions.models import Dataset, NoiseProfile, Visibility
from emotions.services import datasets, noise
from emotions.services.errors import ServiceError
from emotions.services.media import ranged_file_response


def _dataset(request, dataset_id: int) -> Dataset:
    datasets.settle_abandoned_imports()  # a dead worker's half-import shows as failed
    try:
        return selectors.datasets_with_totals(request.user).get(pk=dataset_id)
    except Dataset.DoesNotExist:
        raise Http404("No such dataset.") from None


def duration_text(seconds: float) -> str:
    """1 h 02 min, 3 min 05 s or 12.3 s: what a researcher reads at a glance."""
    seconds = float(seconds or 0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _noise(request, profile_id: int) -> NoiseProfile:
    try:
        return selectors.noise_profile_for(request.user, profile_id)
    except NoiseProfile.DoesNotExist:
        raise Http404("No such noise recording.") from None


@login_required
def dataset_list(request):
    datasets.settle_abandoned_imports()
    rows = list(selectors.datasets_with_totals(request.user)[:500])
    for row in rows:
        row.duration_text = duration_text(row.total_duration_s)
    return render(
        request,
        "emotions/datasets.html",
        {
            "datasets": rows,
            "layouts": datasets.LAYOUT_CHOICES,
            "subsets": datasets.IEMOCAP_SUBSETS,
            "presets": datasets.IEMOCAP_PRESETS,
            "channels": datasets.RAVDESS_CHANNELS,
            "visibilities": Visibility.choices,
        },
    )


@login_required
def dataset_detail(request, dataset_id: int):
    dataset = _dataset(request, dataset_id)
    can_edit = selectors.can_edit(request.user, dataset)
    # The import job (its messages, errors and skipped file paths) is the owner's business:
    # a shared dataset shows others its recordings, not how its import went.
    job = dataset.import_job if can_edit else None
    counts = selectors.dataset_class_counts(dataset)
    return render(
        request,
        "emotions/dataset_detail.html",
        {
            "dataset": dataset,
            "job": job,
            "counts": counts,
            "total_duration": duration_text(counts["totals"]["duration_s"]),
            "speakers": selectors.speaker_counts(dataset)[:200],
            "can_edit": can_edit,
            "layout_name": datasets.LAYOUT_NAMES.get(dataset.layout, dataset.layout),
        },
    )


def _confirm_delete(request, obj, delete, template: str, back, gone, done: str):
    """GET: a page saying what will go, with a confirm button; POST: delete through the
    service. `back` and `gone` are the redirects after a refusal and after success."""
    if request.method == "POST":
        try:
            delete(request.user, obj)
        except ServiceError as exc:
            messages.error(request, exc.message)
            return back
        messages.success(request, done)
        return gone
    if not selectors.can_edit(request.user, obj):
        messages.error(request, "Only its owner or an administrator can delete this.")
        return back
    return render(request, template, {"object": obj})


@login_required
def dataset_delete(request, dataset_id: int):
    dataset = _dataset(request, dataset_id)
    return _confirm_delete(
        request, dataset, datasets.delete_dataset, "emotions/dataset_delete.html",
        back=redirect("dataset-page", dataset_id=dataset.pk), gone=redirect("datasets-page"),
        done=f"The dataset “{dataset.name}” and its recordings were deleted.",
    )  # fmt: skip


@login_required
def noise_list(request):
    profiles = selectors.noise_profiles_for(request.user)
    return render(
        request,
        "emotions/noise.html",
        {
            "profiles": profiles[:500],
            "environments": NoiseProfile.Environment.choices,
            "visibilities": Visibility.choices,
        },
    )


@login_required
def noise_detail(request, profile_id: int):
    profile = _noise(request, profile_id)
    return render(
        request,
        "emotions/noise_detail.html",
        {"profile": profile, "can_edit": selectors.can_edit(request.user, profile)},
    )


@login_required
def noise_delete(request, profile_id: int):
    profile = _noise(request, profile_id)
    return _confirm_delete(
        request, profile, noise.delete_noise_profile, "emotions/noise_delete.html",
        back=redirect("noise-profile-page", profile_id=profile.pk), gone=redirect("noise-page"),
        done=f"The noise recording “{profile.name}” was deleted.",
    )  # fmt: skip


@login_required
@require_GET
def noise_audio(request, profile_id: int):
    """The stored 16 kHz recording, with HTTP ranges so the player can seek."""
    return ranged_file_response(request, _noise(request, profile_id).audio)


@login_required
@require_GET
def noise_spectrogram(request, profile_id: int):
    profile = _noise(request, profile_id)
    try:
        png = noise.spectrogram_png(profile)
    except ServiceError as exc:
        raise Http404(exc.message) from None
    response = HttpResponse(png, content_type="image/png")
    # The stored audio never changes under its name, so neither does its picture.
    response["Cache-Control"] = "private, max-age=86400"
    return response


@login_required
@require_POST
def noise_pack(request):
    """Staff: queue the noise-pack job and follow it on its job page."""
    try:
        job = noise.start_noise_pack(request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("noise-page")
    messages.success(request, "The noise pack is being fetched; this page shows its progress.")
    return redirect("job-detail", job_id=job.pk)
