"""Lectures API: upload (multipart), list with search, read, segments, CSV, delete."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from emotions import params, selectors
from emotions.api.jobs import JobSerializer
from emotions.models import EmotionModel, Lecture, Segment
from emotions.services import lectures, reports


class SegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Segment
        fields = ["index", "start_s", "end_s", "is_silence", "label", "confidence", "probabilities"]


class LectureSerializer(serializers.ModelSerializer):
    job = JobSerializer(read_only=True)
    model = serializers.SerializerMethodField()

    class Meta:
        model = Lecture
        fields = [
            "id",
            "title",
            "course",
            "recorded_on",
            "original_name",
            "size_bytes",
            "duration_s",
            "model",
            "job",
            "summary",
            "created_at",
        ]
        read_only_fields = fields

    def get_model(self, lecture: Lecture) -> dict | None:
        return reports.model_card(lecture.model)


class LectureEditSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False)
    course = serializers.CharField(max_length=200, required=False, allow_blank=True)
    recorded_on = serializers.DateField(required=False, allow_null=True)


class ReanalyseSerializer(serializers.Serializer):
    model = serializers.IntegerField(required=False, allow_null=True)

    def validate_model(self, value):
        if value is None:
            return None
        try:
            return selectors.models_for(self.context["request"].user).get(pk=value)
        except EmotionModel.DoesNotExist:
            raise serializers.ValidationError("No such model.") from None


class LectureUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    course = serializers.CharField(max_length=200, required=False, allow_blank=True)
    recorded_on = serializers.DateField(required=False, allow_null=True)
    model = serializers.IntegerField(required=False, allow_null=True)

    def validate_model(self, value):
        if value is None:
            return None
        try:
            return selectors.models_for(self.context["request"].user).get(pk=value)
        except EmotionModel.DoesNotExist:
            raise serializers.ValidationError("No such model.") from None


class LectureViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = LectureSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        if self.action != "list":
            return selectors.lectures_for(self.request.user)
        query = self.request.query_params
        return selectors.search_lectures(
            self.request.user,
            q=params.text(query, "q"),
            recorded_from=params.date(query, "from"),
            recorded_to=params.date(query, "to"),
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str),
            OpenApiParameter("from", str),
            OpenApiParameter("to", str),
        ],
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=LectureUploadSerializer, responses={201: LectureSerializer})
    def create(self, request):
        form = LectureUploadSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        lecture = lectures.create_lecture(
            request.user,
            data["file"],
            title=data.get("title", ""),
            course=data.get("course", ""),
            recorded_on=data.get("recorded_on"),
            model=data.get("model"),
        )
        return Response(LectureSerializer(lecture).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        lectures.delete_lecture(instance)

    @extend_schema(request=LectureEditSerializer, responses=LectureSerializer)
    def partial_update(self, request, pk=None):
        """Rename: title, course and date."""
        lecture = self.get_object()
        form = LectureEditSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        lectures.rename_lecture(
            lecture,
            title=data.get("title", lecture.title),
            course=data.get("course"),
            recorded_on=data.get("recorded_on"),
            clear_date="recorded_on" in data and data["recorded_on"] is None,
        )
        return Response(LectureSerializer(lecture).data)

    @extend_schema(request=ReanalyseSerializer, responses={202: LectureSerializer})
    @action(detail=True, methods=["post"])
    def reanalyse(self, request, pk=None):
        """Analyse the recording again (another model, or after a failure)."""
        lecture = self.get_object()
        form = ReanalyseSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        lecture = lectures.reanalyse_lecture(lecture, form.validated_data.get("model"))
        return Response(LectureSerializer(lecture).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[OpenApiParameter("smooth", int)], responses={200: dict})
    @action(detail=True, methods=["get"])
    def report(self, request, pk=None):
        """What the report page draws: per-segment arrays, per-minute band, runs, top
        moments, shares, all at the smoothing asked for (seconds: 1, 5, 15 or 60)."""
        lecture = self.get_object()
        window = reports.smoothing_window(request.query_params.get("smooth"))
        return Response(reports.report_data(lecture, window))

    @extend_schema(responses=SegmentSerializer(many=True))
    @action(detail=True, methods=["get"])
    def segments(self, request, pk=None):
        lecture = self.get_object()
        qs = lecture.segments.order_by("index")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(SegmentSerializer(page, many=True).data)

    @extend_schema(responses={(200, "text/csv"): str})
    @action(detail=True, methods=["get"], url_path="csv")
    def csv(self, request, pk=None):
        lecture = self.get_object()
        response = HttpResponse(lectures.segments_csv(lecture), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="lecture-{lecture.pk}.csv"'
        return response
