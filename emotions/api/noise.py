"""Noise profiles API: list, read, upload (multipart), rename/share, delete, and (staff)
queue the Debian noise pack. Audio and spectrogram are served by the pages' URLs."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from emotions import params, selectors
from emotions.api.jobs import JobSerializer
from emotions.models import NoiseProfile, Visibility
from emotions.services import noise


class NoiseProfileSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    environment_label = serializers.CharField(source="get_environment_display", read_only=True)
    can_edit = serializers.SerializerMethodField()
    audio_url = serializers.SerializerMethodField()
    spectrogram_url = serializers.SerializerMethodField()

    class Meta:
        model = NoiseProfile
        fields = [
            "id", "name", "environment", "environment_label", "duration_s",
            "original_sample_rate", "rms_dbfs", "peak_dbfs", "synthetic", "source_package",
            "source_path", "licence", "attribution", "visibility", "owner", "can_edit",
            "audio_url", "spectrogram_url", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_can_edit(self, profile: NoiseProfile) -> bool:
        return selectors.can_edit(self.context["request"].user, profile)

    def get_audio_url(self, profile: NoiseProfile) -> str:
        return reverse("noise-audio", args=[profile.pk])

    def get_spectrogram_url(self, profile: NoiseProfile) -> str:
        return reverse("noise-spectrogram", args=[profile.pk])


class NoiseUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, help_text="a recording of the noise")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    environment = serializers.ChoiceField(
        choices=NoiseProfile.Environment.choices, default=NoiseProfile.Environment.OTHER
    )
    visibility = serializers.ChoiceField(choices=Visibility.choices, default=Visibility.PRIVATE)


class NoiseUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    environment = serializers.ChoiceField(choices=NoiseProfile.Environment.choices, required=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


class NoisePackSerializer(serializers.Serializer):
    packages = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="default: the whole pack"
    )


class NoiseProfileViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = NoiseProfileSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        qs = selectors.noise_profiles_for(self.request.user)
        if self.action != "list":
            return qs
        environment = params.choice(
            self.request.query_params, "environment", NoiseProfile.Environment.values
        )
        return qs.filter(environment=environment) if environment else qs

    @extend_schema(request=NoiseUploadSerializer, responses={201: NoiseProfileSerializer})
    def create(self, request):
        """Upload a noise recording: it is decoded, measured and stored as 16 kHz FLAC."""
        form = NoiseUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        profile = noise.create_noise_profile(
            request.user, data["file"], name=data.get("name", ""),
            environment=data["environment"], visibility=data["visibility"],
        )  # fmt: skip
        return Response(self.get_serializer(profile).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=NoiseUpdateSerializer, responses={200: NoiseProfileSerializer})
    def partial_update(self, request, pk=None):
        form = NoiseUpdateSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        profile = noise.update_noise_profile(request.user, self.get_object(), **form.validated_data)
        return Response(self.get_serializer(profile).data)

    def perform_destroy(self, instance):
        noise.delete_noise_profile(self.request.user, instance)

    @extend_schema(request=NoisePackSerializer, responses={201: JobSerializer})
    @action(detail=False, methods=["post"], url_path="fetch-pack")
    def fetch_pack(self, request):
        """Staff: queue the job that imports the Debian noise pack and the synthetic noises."""
        form = NoisePackSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        job = noise.start_noise_pack(request.user, form.validated_data.get("packages"))
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)
