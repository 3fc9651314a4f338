"""Data and its invariants. Writes go through emotions.services, reads through selectors."""

from django.conf import settings
from django.db import models


class Job(models.Model):
    """One unit of background work (analysis, import, training) owned by a user."""

    class Kind(models.TextChoices):
        DIAGNOSTIC = "diagnostic", "Self-test"
        ANALYSIS = "analysis", "Lecture analysis"
        IMPORT = "import", "Dataset import"
        TRAINING = "training", "Training"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TERMINAL_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=60, blank=True)
    message = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    device = models.CharField(max_length=60, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "state"]), models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL_STATES

    @property
    def group_name(self) -> str:
        return job_group(self.pk)


def job_group(job_id: int) -> str:
    """The channel-layer group that carries one job's events."""
    return f"job.{job_id}"


def user_group(user_id: int) -> str:
    """The group that carries events of every job of one user (the jobs indicator)."""
    return f"user.{user_id}"
