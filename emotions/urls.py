from django.urls import path

from emotions import views

urlpatterns = [
    path("", views.home, name="home"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/<int:job_id>/", views.job_detail, name="job-detail"),
    path("lectures/", views.lecture_list, name="lecture-list"),
    path("lectures/<int:lecture_id>/", views.lecture_detail, name="lecture-detail"),
    path("lectures/<int:lecture_id>/audio", views.lecture_audio, name="lecture-audio"),
    path("lectures/<int:lecture_id>/edit/", views.lecture_edit, name="lecture-edit"),
    path("lectures/<int:lecture_id>/delete/", views.lecture_delete, name="lecture-delete"),
    path("lectures/<int:lecture_id>/reanalyse/", views.lecture_reanalyse, name="lecture-reanalyse"),
    path("lectures/<int:lecture_id>/report.pdf", views.lecture_report_pdf, name="lecture-pdf"),
    path("lectures/<int:lecture_id>/report.json", views.lecture_report_json, name="lecture-json"),
    path("healthz", views.healthz, name="healthz"),
]
