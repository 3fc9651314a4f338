"""Training API: runs (create, list, read, results as CSV/JSON, per-item test predictions as
CSV, delete) and trained models (list, read, delete, staff `activate`). Runs are their owner's
only; models are the user's own and those shared. Cancel a run through
/api/jobs/<job id>/cancel/."""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from emotions import selectors
from emotions.api.jobs import JobSerializer
from emotions.models import Dataset, EmotionModel, TrainingRun
from emotions.ser.constants import BACKBONES, DEFAULT_BACKBONE, DEFAULT_SNRS_DB
from emotions.services import training


class _NoiseList(serializers.ListField):
    """Noise recording ids the user may use, resolved to NoiseProfile rows."""

    child = serializers.IntegerField(min_value=1)

    def to_internal_value(self, data):
        ids = super().to_internal_value(data)
        user = self.context["request"].user
        found = {n.pk: n for n in selectors.noise_profiles_for(user).filter(pk__in=ids)}
        missing = [str(pk) for pk in ids if pk not in found]
        if missing:
            raise serializers.ValidationError(f"No such noise recording: {', '.join(missing)}.")
        return [found[pk] for pk in ids]


@extend_schema_field(OpenApiTypes.INT)
class _KFoldField(serializers.Field):
    """null/false: one split; true: 5 folds; a number 2-10: that many folds."""

    def to_internal_value(self, data):
        if data in (None, False, "", 0):
            return None
        if data is True:
            return training.DEFAULT_KFOLD
        try:
            k = int(data)
        except (TypeError, ValueError):
            raise serializers.ValidationError("Give a number of folds (2-10) or true.") from None
        if not 2 <= k <= 10:
            raise serializers.ValidationError("Between 2 and 10 folds.")
        return k

    def to_representation(self, value):
        return value


class TrainingRunCreateSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    preset = serializers.ChoiceField(choices=TrainingRun.Preset.choices, default="mixup")
    protocol = serializers.ChoiceField(choices=TrainingRun.Protocol.choices, default="speaker")
    backbone = serializers.ChoiceField(choices=BACKBONES, default=DEFAULT_BACKBONE)
    noises = _NoiseList(required=False, default=list)
    train_noises = _NoiseList(required=False, default=list)
    test_noises = _NoiseList(required=False, default=list)
    snrs = serializers.ListField(
        child=serializers.FloatField(), required=False, default=lambda: list(DEFAULT_SNRS_DB)
    )
    config = serializers.DictField(required=False, default=dict)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    kfold = _KFoldField(required=False, default=None, allow_null=True)

    def validate_dataset(self, value):
        try:
            return selectors.datasets_for(self.context["request"].user).get(pk=value)
        except Dataset.DoesNotExist:
            raise serializers.ValidationError("No such dataset.") from None


def _noises(run: TrainingRun, which: str) -> list[dict]:
    return [{"id": n.pk, "name": n.name} for n in getattr(run, which).order_by("pk")]


class TrainingRunSerializer(serializers.ModelSerializer):
    job = JobSerializer(read_only=True)
    dataset = serializers.SerializerMethodField()
    backbone = serializers.SerializerMethodField()
    kfold = serializers.SerializerMethodField()
    train_noises = serializers.SerializerMethodField()
    test_noises = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()
    leaks_speakers = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "name",
            "dataset",
            "preset",
            "protocol",
            "leaks_speakers",
            "backbone",
            "kfold",
            "snrs",
            "seed",
            "config",
            "train_noises",
            "test_noises",
            "job",
            "model",
            "split",
            "history",
            "metrics",
            "baselines",
            "created_at",
        ]
        read_only_fields = fields

    def get_dataset(self, run) -> dict:
        return {"id": run.dataset_id, "name": run.dataset.name, "synthetic": run.dataset.synthetic}

    def get_backbone(self, run) -> str:
        return run.config.get("backbone", DEFAULT_BACKBONE)

    def get_kfold(self, run) -> int | None:
        return run.config.get("kfold")

    def get_train_noises(self, run) -> list[dict]:
        return _noises(run, "train_noises")

    def get_test_noises(self, run) -> list[dict]:
        return _noises(run, "test_noises")

    def get_leaks_speakers(self, run) -> bool:
        return run.protocol in (TrainingRun.Protocol.RANDOM_BLOCKS, TrainingRun.Protocol.UTTERANCE)

    def get_model(self, run) -> dict | None:
        m = run.model
        if m is None:
            return None
        return {"id": m.pk, "name": m.name, "version": m.version, "provenance": m.provenance}


class TrainingRunListSerializer(TrainingRunSerializer):
    """Without the split record and the curves, which can be long."""

    class Meta(TrainingRunSerializer.Meta):
        fields = [
            f
            for f in TrainingRunSerializer.Meta.fields
            if f not in ("split", "history", "baselines")
        ]
        read_only_fields = fields


class TrainingRunViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    def get_queryset(self):
        return selectors.training_runs_for(self.request.user)

    def get_serializer_class(self):
        return TrainingRunListSerializer if self.action == "list" else TrainingRunSerializer

    @extend_schema(request=TrainingRunCreateSerializer, responses={201: TrainingRunSerializer})
    def create(self, request):
        """Queue a training run; 409 when an identical one of yours is queued or running."""
        form = TrainingRunCreateSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        run = training.create_training_run(
            request.user,
            data["dataset"],
            preset=data["preset"],
            protocol=data["protocol"],
            noises=data["noises"],
            train_noises=data["train_noises"],
            test_noises=data["test_noises"],
            snrs=data["snrs"],
            backbone=data["backbone"],
            config=data["config"],
            seed=data["seed"],
            kfold=data["kfold"],
            name=data.get("name", ""),
        )
        body = {**TrainingRunSerializer(run).data, "warnings": training.run_warnings(run)}
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        training.delete_run(instance)

    @extend_schema(responses={(200, "text/csv"): str})
    @action(detail=True, methods=["get"], url_path="csv")
    def csv(self, request, pk=None):
        """The method's results table (test set × accuracy/precision/recall/F1/UAR, %)."""
        run = self.get_object()
        response = HttpResponse(training.results_csv(run), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="training-run-{run.pk}.csv"'
        return response

    @extend_schema(responses={(200, "text/csv"): str})
    @action(detail=True, methods=["get"])
    def predictions(self, request, pk=None):
        """The network's prediction for every test block: test set, SNR, utterance, item,
        speaker, block, noise, true and predicted emotion, one probability per class."""
        run = self.get_object()
        response = HttpResponse(training.predictions_csv(run), content_type="text/csv")
        disposition = f'attachment; filename="training-run-{run.pk}-predictions.csv"'
        response["Content-Disposition"] = disposition
        return response

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"])
    def results(self, request, pk=None):
        """Table, metrics with confusion matrices, split record and curves, as JSON."""
        run = self.get_object()
        response = Response(training.results_json(run))
        if request.query_params.get("download"):
            disposition = f'attachment; filename="training-run-{run.pk}.json"'
            response["Content-Disposition"] = disposition
        return response


class EmotionModelSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    dataset = serializers.SerializerMethodField()
    is_owner = serializers.SerializerMethodField()

    class Meta:
        model = EmotionModel
        fields = [
            "id",
            "name",
            "version",
            "owner",
            "is_owner",
            "backbone",
            "labels",
            "pretrained",
            "provenance",
            "synthetic_speech",
            "config",
            "metrics",
            "dataset",
            "split_fingerprint",
            "data_fingerprint",
            "is_active",
            "visibility",
            "created_at",
        ]
        read_only_fields = fields

    def get_dataset(self, model) -> dict | None:
        if model.dataset_id is None:
            return None
        return {"id": model.dataset_id, "name": model.dataset.name}

    def get_is_owner(self, model) -> bool:
        request = self.context.get("request")
        return bool(request and request.user.pk == model.owner_id)


class EmotionModelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = EmotionModelSerializer

    def get_queryset(self):
        return selectors.models_for(self.request.user).select_related("owner", "dataset")

    def perform_destroy(self, instance):
        training.delete_model(self.request.user, instance)

    @extend_schema(request=None, responses={200: EmotionModelSerializer})
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        """Make this the one active model (staff only); lectures use it by default."""
        model = training.activate_model(request.user, self.get_object())
        return Response(self.get_serializer(model).data)
