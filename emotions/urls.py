from django.urls import path

from emotions import views

urlpatterns = [
    path("", views.home, name="home"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/<int:job_id>/", views.job_detail, name="job-detail"),
    path("lectures/", views.lecture_list, name="lecture-list"),
    path("lectures/<int:lecture_id>/", views.lecture_detail, name="lecture-detail"),
    path("lectures/<int:lecture_id>/audio", views.lecture_audio, name="lecture-audio"),
    path("healthz", views.healthz, name="healthz"),
]
