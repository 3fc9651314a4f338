"""Pages: function views that read top to bottom, calling selectors and services."""

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from emotions import params, selectors
from emotions.models import Job, Lecture
from emotions.services import health
from emotions.services.media import ranged_file_response


@login_required
def home(request):
    recent = selectors.jobs_for(request.user)[:10]
    return render(request, "emotions/home.html", {"recent_jobs": recent})


@login_required
def job_list(request):
    return render(request, "emotions/jobs.html", {"jobs": selectors.jobs_for(request.user)[:200]})


@login_required
def job_detail(request, job_id: int):
    try:
        job = selectors.job_for(request.user, job_id)
    except Job.DoesNotExist:
        raise Http404("No such job.") from None
    return render(request, "emotions/job_detail.html", {"job": job})


@never_cache
@require_GET
def healthz(request):
    """200 when the database, Redis and at least one worker answer; 503 otherwise."""
    report = health.overall()
    return JsonResponse(report, status=200 if report["ok"] else 503)


@login_required
def lecture_list(request):
    try:
        q = params.text(request.GET, "q")
    except params.BadParameter as exc:
        return params.bad_request_page(request, exc.message)
    lectures = selectors.lectures_for(request.user)
    if q:
        lectures = lectures.filter(Q(title__icontains=q) | Q(course__icontains=q))
    return render(
        request,
        "emotions/lectures.html",
        {
            "lectures": lectures[:500],
            "q": q,
            "active_model": selectors.active_model_for(request.user),
            "models": selectors.models_for(request.user),
        },
    )


@login_required
def lecture_detail(request, lecture_id: int):
    try:
        lecture = selectors.lecture_for(request.user, lecture_id)
    except Lecture.DoesNotExist:
        raise Http404("No such lecture.") from None
    return render(request, "emotions/lecture_detail.html", {"lecture": lecture})


@login_required
def lecture_audio(request, lecture_id: int):
    """The recording, owner only, with HTTP range support so the player can seek."""
    try:
        lecture = selectors.lecture_for(request.user, lecture_id)
    except Lecture.DoesNotExist:
        raise Http404("No such lecture.") from None
    return ranged_file_response(request, lecture.audio)
