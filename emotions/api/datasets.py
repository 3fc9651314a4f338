"""Datasets API: list, read, start an import (create), rename/share, delete; their
utterances (filter, relabel, exclude) and import jobs."""

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from emotions import params, selectors
from emotions.api.jobs import JobSerializer
from emotions.models import Dataset, Job, Utterance, Visibility
from emotions.services import datasets


class DatasetSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    import_job = serializers.SerializerMethodField()
    can_edit = serializers.SerializerMethodField()
    n_utterances = serializers.IntegerField(read_only=True, default=None)
    n_speakers = serializers.IntegerField(read_only=True, default=None)
    total_duration_s = serializers.FloatField(read_only=True, default=None)
    n_blocks = serializers.IntegerField(read_only=True, default=None)

    class Meta:
        model = Dataset
        fields = [
            "id", "name", "description", "layout", "labels", "label_map", "visibility",
            "synthetic", "status", "owner", "can_edit", "import_job", "n_utterances", "n_speakers",
            "total_duration_s", "n_blocks", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_can_edit(self, dataset: Dataset) -> bool:
        return selectors.can_edit(self.context["request"].user, dataset)

    @extend_schema_field(JobSerializer(allow_null=True))
    def get_import_job(self, dataset: Dataset) -> dict | None:
        # How the import went (messages, errors, skipped file paths) is for those who can
        # edit the dataset; a shared dataset shows others its recordings only.
        if dataset.import_job is None or not self.get_can_edit(dataset):
            return None
        return JobSerializer(dataset.import_job, context=self.context).data


class ImportSerializer(serializers.Serializer):
    file = serializers.FileField(
        required=False, allow_empty_file=True, help_text="zip or tar archive of the corpus"
    )
    directory = serializers.CharField(
        required=False, allow_blank=True, help_text="staff only: a corpus folder on the server"
    )
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    layout = serializers.ChoiceField(choices=datasets.LAYOUT_CHOICES, default="auto")
    subset = serializers.ChoiceField(choices=datasets.IEMOCAP_SUBSETS, default="all")
    preset = serializers.ChoiceField(choices=datasets.IEMOCAP_PRESETS, default="", allow_blank=True)
    channel = serializers.ChoiceField(choices=datasets.RAVDESS_CHANNELS, default="speech")
    speaker_pattern = serializers.CharField(required=False, allow_blank=True)
    label_map = serializers.JSONField(
        required=False, help_text='{"old": "new"} to rename or merge, {"old": null} to drop'
    )
    label_map_text = serializers.CharField(
        required=False, allow_blank=True, help_text='lines "old = new", or "old =" to drop'
    )
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PRIVATE)


class DatasetUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


def start_import(request) -> Dataset:
    form = ImportSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    label_map = data.get("label_map") or {}
    if data.get("label_map_text"):
        label_map = {**datasets.parse_label_map(data["label_map_text"]), **label_map}
    return datasets.start_import(
        request.user,
        upload=data.get("file"),
        directory=data.get("directory", ""),
        name=data.get("name", ""),
        description=data.get("description", ""),
        layout=data["layout"],
        options={k: data.get(k) for k in ("subset", "preset", "channel", "speaker_pattern")},
        label_map=label_map,
        visibility=data["visibility"],
    )


class DatasetViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = DatasetSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        if not getattr(self, "swagger_fake_view", False):  # the schema reads no data
            datasets.settle_abandoned_imports()  # a dead worker's half-import shows failed
        return selectors.datasets_with_totals(self.request.user)

    @extend_schema(request=ImportSerializer, responses={201: DatasetSerializer})
    def create(self, request):
        """Start an import: the dataset is created at once and filled by an import job."""
        dataset = start_import(request)
        data = self.get_serializer(self.get_queryset().get(pk=dataset.pk)).data
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=DatasetUpdateSerializer, responses={200: DatasetSerializer})
    def partial_update(self, request, pk=None):
        form = DatasetUpdateSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        datasets.update_dataset(request.user, self.get_object(), **form.validated_data)
        return Response(self.get_serializer(self.get_object()).data)

    def perform_destroy(self, instance):
        datasets.delete_dataset(self.request.user, instance)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        """Per class: utterances, duration, 1 s blocks and noisy blocks per SNR."""
        dataset = self.get_object()
        counts = selectors.dataset_class_counts(dataset)
        for row in counts["classes"]:
            row.pop("by_snr")
        return Response(counts)


class UtteranceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Utterance
        fields = [
            "id", "dataset", "label", "speaker", "group", "gender", "duration_s", "n_blocks",
            "source_path", "excluded",
        ]  # fmt: skip
        read_only_fields = fields


class UtteranceUpdateSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=datasets.MAX_LABEL_LENGTH, required=False)
    excluded = serializers.BooleanField(required=False)


class UtteranceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = UtteranceSerializer

    def get_queryset(self):
        qs = selectors.utterances_for(self.request.user)
        if self.action != "list":
            return qs
        query = self.request.query_params
        dataset = params.integer(query, "dataset", minimum=1)
        if dataset is not None:
            qs = qs.filter(dataset_id=dataset)
        for name in ("label", "speaker"):
            value = params.text(query, name)
            if value:
                qs = qs.filter(**{name: value})
        excluded = params.boolean(query, "excluded")
        if excluded is not None:
            qs = qs.filter(excluded=excluded)
        q = params.text(query, "q")
        if q:
            qs = qs.filter(Q(source_path__icontains=q))
        return qs

    @extend_schema(
        parameters=[OpenApiParameter("dataset", int), OpenApiParameter("label", str),
                    OpenApiParameter("speaker", str), OpenApiParameter("excluded", bool),
                    OpenApiParameter("q", str, description="part of the file's path")],
    )  # fmt: skip
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=UtteranceUpdateSerializer, responses={200: UtteranceSerializer})
    def partial_update(self, request, pk=None):
        """Relabel or exclude one utterance (its dataset's owner or staff)."""
        form = UtteranceUpdateSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        utterance = datasets.update_utterance(
            request.user, self.get_object(), **form.validated_data
        )
        return Response(self.get_serializer(utterance).data)


class ImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The user's import jobs (datasets and the noise pack); create starts a dataset import."""

    serializer_class = JobSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        return selectors.jobs_for(self.request.user).filter(kind=Job.Kind.IMPORT)

    @extend_schema(request=ImportSerializer, responses={201: JobSerializer})
    def create(self, request):
        dataset = start_import(request)
        return Response(JobSerializer(dataset.import_job).data, status=status.HTTP_201_CREATED)
