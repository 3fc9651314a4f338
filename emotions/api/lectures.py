"""Lectures API: upload (multipart), list with search, read, segments, CSV, delete."""

from django.db.models import Q
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from emotions import params, selectors
from emotions.api.jobs import JobSerializer
from emotions.models import EmotionModel, Lecture, Segment
from emotions.services import lectures


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
        m = lecture.model
        if m is None:
            return None
        return {
            "id": m.pk,
            "name": m.name,
            "version": m.version,
            "backbone": m.backbone,
            "labels": m.labels,
            "pretrained": m.pretrained,
            "provenance": m.provenance,
            "synthetic_speech": m.synthetic_speech,
            "metrics": m.metrics,
        }


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
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        qs = selectors.lectures_for(self.request.user)
        if self.action != "list":
            return qs
        query = self.request.query_params
        q = params.text(query, "q")
        if q:
            qs = qs.filter(Q(title__icontains=q) | Q(course__icontains=q))
        for param, lookup in (("from", "recorded_on__gte"), ("to", "recorded_on__lte")):
            day = params.date(query, param)
            if day is not None:
                qs = qs.filter(**{lookup: day})
        return qs

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
