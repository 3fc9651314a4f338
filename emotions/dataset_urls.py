from django.urls import path

from emotions import dataset_views as views

# Names end in "-page" where the API router already uses the plain name (dataset-list…).
urlpatterns = [
    path("datasets/", views.dataset_list, name="datasets-page"),
    path("datasets/<int:dataset_id>/", views.dataset_detail, name="dataset-page"),
    path("datasets/<int:dataset_id>/delete/", views.dataset_delete, name="dataset-delete-page"),
    path("noise/", views.noise_list, name="noise-page"),
    path("noise/fetch-pack/", views.noise_pack, name="noise-pack-page"),
    path("noise/<int:profile_id>/", views.noise_detail, name="noise-profile-page"),
    path("noise/<int:profile_id>/delete/", views.noise_delete, name="noise-delete-page"),
    path("noise/<int:profile_id>/audio", views.noise_audio, name="noise-audio"),
    path(
        "noise/<int:profile_id>/spectrogram.png",
        views.noise_spectrogram,
        name="noise-spectrogram",
    ),
]
