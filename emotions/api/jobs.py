"""Jobs API: list, read, start a self-test, cancel, delete — the owner's jobs only."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from emotions import selectors
from emotions.models import Job
from emotions.services import diagnostics, jobs


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "state",
            "progress",
            "stage",
            "message",
            "error",
            "params",
            "result",
            "device",
            "cancel_requested",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Job) -> dict:
        # The fields above describe the schema; the payload itself comes from the one
        # function the live events use too.
        return jobs.serialize_job(instance)


class SelfTestSerializer(serializers.Serializer):
    queue = serializers.ChoiceField(choices=["cpu", "gpu"], default="cpu")
    steps = serializers.IntegerField(min_value=1, max_value=diagnostics.MAX_STEPS, default=5)
    delay = serializers.FloatField(min_value=0, max_value=diagnostics.MAX_DELAY_S, default=0.2)
    fail_at = serializers.IntegerField(min_value=1, required=False, allow_null=True)


class JobViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = JobSerializer

    def get_queryset(self):
        # A job left running by a worker that died ends here when its owner looks, even
        # when no worker is left to reap it.
        if self.request.user.is_authenticated:
            jobs.reap_stale_jobs(owner=self.request.user)
        return selectors.jobs_for(self.request.user)

    @extend_schema(request=SelfTestSerializer, responses={201: JobSerializer})
    def create(self, request):
        """Start a self-test job (the other kinds start from lectures, imports, training)."""
        form = SelfTestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        params = dict(form.validated_data)
        queue = params.pop("queue")
        job = jobs.create_job(request.user, Job.Kind.DIAGNOSTIC, params, queue=queue)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = jobs.request_cancel(self.get_object())
        return Response(JobSerializer(job).data)

    def perform_destroy(self, instance):
        jobs.delete_job(instance)
