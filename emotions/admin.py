from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from emotions.models import Dataset, DerivedBlocks, Job, NoiseProfile, SiteSettings, Utterance
from emotions.services import datasets, noise
from emotions.services.errors import ServiceError


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
    readonly_fields = ("audio", "duration_s", "n_blocks", "source_path")
    actions = ("relabel", "exclude_from_training", "include_in_training")

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
