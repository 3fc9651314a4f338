from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from emotions.api.datasets import DatasetViewSet, ImportViewSet, UtteranceViewSet
from emotions.api.jobs import JobViewSet
from emotions.api.lectures import LectureViewSet
from emotions.api.noise import NoiseProfileViewSet
from emotions.api.training import EmotionModelViewSet, TrainingRunViewSet

router = DefaultRouter()
router.register("jobs", JobViewSet, basename="job")
router.register("lectures", LectureViewSet, basename="lecture")
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("utterances", UtteranceViewSet, basename="utterance")
router.register("imports", ImportViewSet, basename="import")
router.register("noise", NoiseProfileViewSet, basename="noise")
router.register("training-runs", TrainingRunViewSet, basename="training-run")
router.register("models", EmotionModelViewSet, basename="emotion-model")

urlpatterns = [
    path("", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's own script comes from a URL (the split view), so script-src stays 'self';
    # its page template and the UI itself style elements inline, allowed on this page only.
    path(
        "docs/",
        csp_update({"style-src": [UNSAFE_INLINE]})(
            SpectacularSwaggerSplitView.as_view(url_name="schema")
        ),
        name="api-docs",
    ),
]
