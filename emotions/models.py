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


def job_group(job_id: int) -> str:
    """The channel-layer group that carries one job's events."""
    return f"job.{job_id}"


def user_group(user_id: int) -> str:
    """The group that carries events of every job of one user (the jobs indicator)."""
    return f"user.{user_id}"


class Visibility(models.TextChoices):
    PRIVATE = "private", "Only me"
    SHARED = "shared", "Everyone on this site"


def _dataset_upload(instance: "Utterance", filename: str) -> str:
    return f"datasets/{instance.dataset_id}/{filename}"


def _noise_upload(instance: "NoiseProfile", filename: str) -> str:
    return f"noise/{instance.owner_id}/{filename}"


def _lecture_upload(instance: "Lecture", filename: str) -> str:
    return f"lectures/{instance.owner_id}/{filename}"


def _model_upload(instance: "EmotionModel", filename: str) -> str:
    return f"models/{instance.owner_id}/{filename}"


def _cache_upload(instance: "DerivedBlocks", filename: str) -> str:
    return f"cache/{instance.utterance.dataset_id}/{filename}"


class Dataset(models.Model):
    """A labelled set of emotional speech: a public corpus or the user's own recordings."""

    class Status(models.TextChoices):
        # Usable (listed for training) only when `ready`: an import is all or nothing.
        IMPORTING = "importing", "Importing"
        READY = "ready", "Ready"
        FAILED = "failed", "Import failed"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="datasets"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    layout = models.CharField(max_length=40, blank=True, help_text="corpus layout it came from")
    labels = models.JSONField(default=list, blank=True)
    label_map = models.JSONField(default=dict, blank=True)
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    synthetic = models.BooleanField(default=False, help_text="synthetic speech (demonstration)")
    import_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.READY)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Utterance(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="utterances")
    audio = models.FileField(upload_to=_dataset_upload, max_length=500)
    label = models.CharField(max_length=60)
    speaker = models.CharField(max_length=100, blank=True)
    group = models.CharField(max_length=100, blank=True, help_text="session or other group")
    gender = models.CharField(max_length=10, blank=True)
    duration_s = models.FloatField(default=0.0)
    n_blocks = models.PositiveIntegerField(default=0)
    source_path = models.CharField(max_length=500, blank=True)
    excluded = models.BooleanField(default=False)

    class Meta:
        ordering = ["dataset", "id"]
        indexes = [models.Index(fields=["dataset", "label"]), models.Index(fields=["speaker"])]

    def __str__(self) -> str:
        return f"{self.source_path or self.audio.name} ({self.label})"


class NoiseProfile(models.Model):
    """A recording of an environment's noise, mixed into speech at a chosen SNR."""

    class Environment(models.TextChoices):
        CLASSROOM = "classroom", "Classroom"
        CAFE = "cafe", "Café"
        STREET = "street", "Street / traffic"
        CITY = "city", "City"
        COUNTRYSIDE = "countryside", "Countryside"
        FOREST = "forest", "Forest"
        SWAMP = "swamp", "Swamp"
        RAIN = "rain", "Rain"
        WAVES = "waves", "Waves"
        BIRDS = "birds", "Birds"
        CROWD = "crowd", "Crowd"
        BABBLE = "babble", "Babble"
        FAN = "fan", "Fan"
        AIRCON = "aircon", "Air conditioning"
        OTHER = "other", "Other"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="noise_profiles"
    )
    name = models.CharField(max_length=200)
    environment = models.CharField(
        max_length=20, choices=Environment.choices, default=Environment.OTHER
    )
    audio = models.FileField(upload_to=_noise_upload, max_length=500)
    duration_s = models.FloatField(default=0.0)
    original_sample_rate = models.PositiveIntegerField(default=0)
    rms_dbfs = models.FloatField(null=True, blank=True)
    peak_dbfs = models.FloatField(null=True, blank=True)
    synthetic = models.BooleanField(default=False)
    source_package = models.CharField(max_length=100, blank=True)
    source_path = models.CharField(max_length=500, blank=True)
    licence = models.CharField(max_length=100, blank=True)
    attribution = models.TextField(blank=True)
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["environment", "name", "id"]

    def __str__(self) -> str:
        return self.name


class DerivedBlocks(models.Model):
    """Model-ready blocks of one utterance, clean or mixed with one noise at one SNR.

    Keyed by (utterance, SNR, noise, seed) so generation is never repeated; `record`
    holds the noise offset and gain of every block, so the set can be rebuilt exactly.
    """

    utterance = models.ForeignKey(Utterance, on_delete=models.CASCADE, related_name="derived")
    snr_db = models.FloatField(null=True, blank=True, help_text="empty for clean blocks")
    noise = models.ForeignKey(NoiseProfile, null=True, blank=True, on_delete=models.CASCADE)
    seed = models.IntegerField(default=0)
    data = models.FileField(upload_to=_cache_upload, max_length=500)
    n_blocks = models.PositiveIntegerField(default=0)
    record = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # "utterance:snr:noise:seed" ("clean" and "-" for none): unique even where the
    # database treats NULLs as distinct in a unique constraint.
    key = models.CharField(max_length=100, unique=True)

    class Meta:
        verbose_name = verbose_name_plural = "derived blocks"  # not "derived blockss"

    def __str__(self) -> str:
        return self.key

    @staticmethod
    def make_key(utterance_id: int, snr_db: float | None, noise_id: int | None, seed: int) -> str:
        snr = "clean" if snr_db is None else f"{snr_db:g}"
        return f"{utterance_id}:{snr}:{noise_id or '-'}:{seed}"


class EmotionModel(models.Model):
    """A trained classifier: weights, labels, how it was trained and how it scored."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="emotion_models"
    )
    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    backbone = models.CharField(max_length=40)
    labels = models.JSONField(default=list)
    weights = models.FileField(upload_to=_model_upload, max_length=500)
    pretrained = models.BooleanField(default=False)
    provenance = models.CharField(max_length=300, blank=True, help_text="starting weights")
    synthetic_speech = models.BooleanField(default=False)
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL)
    split_fingerprint = models.CharField(max_length=64, blank=True)
    data_fingerprint = models.CharField(max_length=64, blank=True)
    is_active = models.BooleanField(default=False, help_text="used for lecture analysis")
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.SHARED
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.backbone})"


class TrainingRun(models.Model):
    """One training experiment: its choices, its split, its curves and its result."""

    class Preset(models.TextChoices):
        CLEAN = "clean", "Clean speech only"
        MIXUP = "mixup", "Clean + noise mix-up"

    class Protocol(models.TextChoices):
        RANDOM_BLOCKS = "random_blocks", "Random 80/20 over blocks (method; leaks speakers)"
        UTTERANCE = "utterance", "By utterance"
        SPEAKER = "speaker", "Speaker-independent"
        LEAVE_ONE_GROUP = "leave_one_group", "Leave one session out"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_runs"
    )
    name = models.CharField(max_length=200, blank=True)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="training_runs")
    preset = models.CharField(max_length=10, choices=Preset.choices, default=Preset.MIXUP)
    protocol = models.CharField(max_length=20, choices=Protocol.choices, default=Protocol.SPEAKER)
    train_noises = models.ManyToManyField(NoiseProfile, related_name="+", blank=True)
    test_noises = models.ManyToManyField(NoiseProfile, related_name="+", blank=True)
    snrs = models.JSONField(default=list)
    config = models.JSONField(default=dict, blank=True)
    seed = models.IntegerField(default=0)
    split = models.JSONField(default=dict, blank=True)
    history = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # Classical references fitted on the same split and test sets as the network: kind ->
    # name, features, classifier, metrics per test set (the same dicts as ``metrics``).
    baselines = models.JSONField(default=dict, blank=True)
    # The network's prediction for every test block (columns + rows), for the per-item export.
    predictions = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    model = models.ForeignKey(EmotionModel, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"Training run #{self.pk}"


class Lecture(models.Model):
    """A teacher's recording and its per-second emotion analysis."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lectures"
    )
    title = models.CharField(max_length=200)
    course = models.CharField(max_length=200, blank=True)
    recorded_on = models.DateField(null=True, blank=True)
    audio = models.FileField(upload_to=_lecture_upload, max_length=500)
    original_name = models.CharField(max_length=255, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    duration_s = models.FloatField(null=True, blank=True)
    # PROTECT: a model cannot vanish from under the lectures it analysed (their labels,
    # CSV columns and a running analysis need it); delete the lectures first.
    model = models.ForeignKey(EmotionModel, null=True, blank=True, on_delete=models.PROTECT)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL)
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "created_at"])]

    def __str__(self) -> str:
        return self.title


class Segment(models.Model):
    """One block of a lecture: its time span and the model's answer (or silence)."""

    lecture = models.ForeignKey(Lecture, on_delete=models.CASCADE, related_name="segments")
    index = models.PositiveIntegerField()
    start_s = models.FloatField()
    end_s = models.FloatField()
    is_silence = models.BooleanField(default=False)
    label = models.CharField(max_length=60, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    probabilities = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["lecture", "index"]
        constraints = [
            models.UniqueConstraint(fields=["lecture", "index"], name="unique_segment_index")
        ]

    def __str__(self) -> str:
        return f"{self.lecture_id}@{self.start_s:g}s"


class SiteSettings(models.Model):
    """Switches staff turn on and off in the admin; one row (`SiteSettings.current()`)."""

    signup_open = models.BooleanField(
        default=False, help_text="anyone may make an account (as a teacher) on the sign-in page"
    )

    class Meta:
        verbose_name = verbose_name_plural = "site settings"

    def __str__(self) -> str:
        return "Site settings"

    @classmethod
    def current(cls) -> "SiteSettings":
        return cls.objects.get_or_create(pk=1)[0]
