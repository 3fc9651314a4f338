from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
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
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
