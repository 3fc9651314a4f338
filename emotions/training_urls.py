from django.urls import path

from emotions import training_views

urlpatterns = [
    path("train/", training_views.train, name="train"),
    path("train/runs/<int:run_id>/", training_views.run_detail, name="training-run"),
    path("train/compare/", training_views.run_compare, name="training-compare"),
    path("models/", training_views.model_list, name="model-list"),
    path("models/<int:model_id>/activate", training_views.model_activate, name="model-activate"),
    path("models/<int:model_id>/delete", training_views.model_delete, name="model-delete"),
]
