from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from emotions.models import (
    Dataset,
    DerivedBlocks,
    EmotionModel,
    Job,
    Lecture,
    NoiseProfile,
    SiteSettings,
    TrainingRun,
    Utterance,
)
from emotions.services import datasets, lectures, noise, training
from emotions.services.errors import ServiceError
from emotions.services.media import ranged_file_response


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "owner", "state", "progress", "device", "created_at")
    list_filter = ("kind", "state", "device")
    search_fields = ("owner__username", "message", "error")
    readonly_fields = ("created_at", "started_at", "finished_at", "heartbeat_at", "celery_task_id")


# ---------------------------------------------------------------- datasets and noise
# Deletes go through the services, so stored files leave with their rows.


def _delete_each(model_admin, request, objects, delete) -> None:
    """Delete through the service; a refusal (e.g. used by a training run) is shown."""
    for obj in list(objects):
        try:
            delete(request.user, obj)
        except ServiceError as exc:
            model_admin.message_user(request, f"{obj}: {exc.message}", level=messages.ERROR)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "layout", "visibility", "synthetic", "created_at")
    list_filter = ("layout", "visibility", "synthetic")
    search_fields = ("name", "description", "owner__username")
    readonly_fields = ("import_job", "labels", "created_at")

    def delete_model(self, request, obj):
        _delete_each(self, request, [obj], datasets.delete_dataset)

    def delete_queryset(self, request, queryset):
        _delete_each(self, request, queryset, datasets.delete_dataset)


class RelabelForm(forms.Form):
    label = forms.CharField(
        max_length=datasets.MAX_LABEL_LENGTH,
        help_text="The new emotion label of every selected recording.",
    )


@admin.register(Utterance)
class UtteranceAdmin(admin.ModelAdmin):
    list_display = (
        "source_path", "dataset", "label", "speaker", "group", "gender", "duration_s",
        "n_blocks", "excluded",
    )  # fmt: skip
    list_filter = ("label", "excluded", "dataset", "speaker")
    search_fields = ("source_path", "speaker", "label")
    list_select_related = ("dataset",)
    readonly_fields = ("player", "audio", "duration_s", "n_blocks", "source_path")
    actions = ("relabel", "exclude_from_training", "include_in_training")

    # Relabelling needs ears: the change page plays the recording, served by the admin's
    # own view below (staff only, HTTP ranges so the player can seek; no script needed).
    @admin.display(description="Listen")
    def player(self, obj: Utterance) -> str:
        if obj.pk is None or not obj.audio:
            return "—"
        url = reverse("admin:emotions_utterance_audio", args=[obj.pk])
        return format_html('<audio controls preload="none" src="{}"></audio>', url)

    def get_urls(self):
        audio = path(
            "<int:object_id>/audio",
            self.admin_site.admin_view(self.audio_view),
            name="emotions_utterance_audio",
        )
        return [audio, *super().get_urls()]

    def audio_view(self, request, object_id: int):
        utterance = Utterance.objects.filter(pk=object_id).first()
        if utterance is None or not utterance.audio:
            raise Http404("No such recording.")
        if not self.has_view_permission(request, utterance):
            raise PermissionDenied
        return ranged_file_response(request, utterance.audio)

    @admin.action(description="Change the emotion label of the selected recordings…")
    def relabel(self, request, queryset):
        form = RelabelForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            count = datasets.relabel(queryset, form.cleaned_data["label"])
            label = form.cleaned_data["label"]
            self.message_user(request, f"{count} recording(s) relabelled “{label}”.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Relabel recordings",
            "form": form,
            "queryset": queryset,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "emotions/dataset_relabel.html", context)

    @admin.action(description="Exclude the selected recordings from training")
    def exclude_from_training(self, request, queryset):
        count = datasets.set_excluded(queryset, True)
        self.message_user(request, f"{count} recording(s) excluded.")

    @admin.action(description="Include the selected recordings in training again")
    def include_in_training(self, request, queryset):
        count = datasets.set_excluded(queryset, False)
        self.message_user(request, f"{count} recording(s) included.")


@admin.register(NoiseProfile)
class NoiseProfileAdmin(admin.ModelAdmin):
    list_display = (
        "name", "environment", "owner", "duration_s", "rms_dbfs", "synthetic", "source_package",
        "visibility",
    )  # fmt: skip
    list_filter = ("environment", "synthetic", "visibility", "source_package")
    search_fields = ("name", "source_path", "source_package")
    readonly_fields = (
        "audio", "duration_s", "original_sample_rate", "rms_dbfs", "peak_dbfs", "created_at",
    )  # fmt: skip

    def delete_model(self, request, obj):
        _delete_each(self, request, [obj], noise.delete_noise_profile)

    def delete_queryset(self, request, queryset):
        _delete_each(self, request, queryset, noise.delete_noise_profile)


@admin.register(DerivedBlocks)
class DerivedBlocksAdmin(admin.ModelAdmin):
    """Generated data: looked at, never edited here."""

    list_display = ("key", "utterance", "snr_db", "noise", "seed", "n_blocks", "created_at")
    list_filter = ("snr_db",)
    search_fields = ("key",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    """One row of switches: it can be changed, not added twice or deleted."""

    list_display = ["__str__", "signup_open"]

    def has_add_permission(self, request) -> bool:
        return not SiteSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# ---------------------------------------------------------------- models, lectures, runs
# Made by the site (uploads, training jobs), never added here; the fields that tie a row
# to its files, its job or its results are shown, not edited; deletes go through the
# services, so weights and recordings leave with their rows.


@admin.register(EmotionModel)
class EmotionModelAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "visibility", "is_active", "pretrained", "created_at")
    list_filter = ("visibility", "is_active", "backbone", "synthetic_speech")
    search_fields = ("name", "owner__username")
    readonly_fields = (
        "owner", "version", "backbone", "labels", "weights", "pretrained", "provenance",
        "synthetic_speech", "config", "metrics", "dataset", "split_fingerprint",
        "data_fingerprint", "is_active", "created_at",
    )  # fmt: skip
    actions = ("make_active",)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Make the selected model the active one (used for lectures)")
    def make_active(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one model.", level=messages.ERROR)
            return
        model = training.activate_model(request.user, queryset.get())
        self.message_user(request, f"“{model}” is now the active model.")

    def delete_model(self, request, obj):
        _delete_each(self, request, [obj], training.delete_model)

    def delete_queryset(self, request, queryset):
        _delete_each(self, request, queryset, training.delete_model)


@admin.register(Lecture)
class LectureAdmin(admin.ModelAdmin):
    list_display = ("title", "course", "owner", "duration_s", "model", "created_at")
    search_fields = ("title", "course", "owner__username", "original_name")
    list_select_related = ("owner", "model")
    readonly_fields = (
        "owner", "audio", "original_name", "size_bytes", "duration_s", "model", "job",
        "summary", "created_at",
    )  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False

    def delete_model(self, request, obj):
        lectures.delete_lecture(obj)

    def delete_queryset(self, request, queryset):
        for lecture in list(queryset):
            lectures.delete_lecture(lecture)


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "dataset", "preset", "protocol", "created_at")
    list_filter = ("preset", "protocol")
    search_fields = ("name", "owner__username", "dataset__name")
    list_select_related = ("owner", "dataset")
    readonly_fields = (
        "owner", "dataset", "preset", "protocol", "train_noises", "test_noises", "snrs",
        "config", "seed", "split", "history", "metrics", "baselines", "job", "model",
        "created_at",
    )  # fmt: skip
    # The per-block predictions can run to megabytes: kept out of the change page.
    exclude = ("predictions",)

    def has_add_permission(self, request) -> bool:
        return False

    def delete_model(self, request, obj):
        _delete_each(self, request, [obj], lambda user, run: training.delete_run(run))

    def delete_queryset(self, request, queryset):
        _delete_each(self, request, queryset, lambda user, run: training.delete_run(run))
