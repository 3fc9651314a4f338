"""Pages: function views that read top to bottom, calling selectors and services."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_date
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from emotions import params, selectors
from emotions.models import EmotionModel, Job, Lecture
from emotions.ser.report import DEFAULT_SMOOTHING, SMOOTHING_WINDOWS, clock
from emotions.services import health, jobs, lectures, reports
from emotions.services.errors import ServiceError
from emotions.services.media import ranged_file_response


@login_required
def home(request):
    jobs.reap_stale_jobs(owner=request.user)  # orphans end when their owner looks
    recent = selectors.jobs_for(request.user)[:10]
    return render(request, "emotions/home.html", {"recent_jobs": recent})


@login_required
def job_list(request):
    jobs.reap_stale_jobs(owner=request.user)
    return render(request, "emotions/jobs.html", {"jobs": selectors.jobs_for(request.user)[:200]})


@login_required
def job_detail(request, job_id: int):
    jobs.reap_stale_jobs(owner=request.user)
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
    rows = list(selectors.search_lectures(request.user, q=q)[:500])
    for row in rows:
        row.length_text = clock(row.duration_s) if row.duration_s else ""
        row.dominant = (row.summary or {}).get("dominant")
    return render(
        request,
        "emotions/lectures.html",
        {
            "lectures": rows,
            "q": q,
            "active_model": selectors.active_model_for(request.user),
            "models": selectors.models_for(request.user),
        },
    )


def _lecture(request, lecture_id: int) -> Lecture:
    try:
        return selectors.lecture_for(request.user, lecture_id)
    except Lecture.DoesNotExist:
        raise Http404("No such lecture.") from None


@login_required
def lecture_detail(request, lecture_id: int):
    lecture = _lecture(request, lecture_id)
    return render(
        request,
        "emotions/lecture_detail.html",
        {
            "lecture": lecture,
            "length_text": clock(lecture.duration_s) if lecture.duration_s else "",
            "card": reports.model_card(lecture.model),
            "models": selectors.models_for(request.user),
            "windows": SMOOTHING_WINDOWS,
            "default_window": DEFAULT_SMOOTHING,
            "can_reanalyse": lecture.job is None or lecture.job.is_terminal,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def lecture_edit(request, lecture_id: int):
    """Rename: title, course and date, as a plain form."""
    lecture = _lecture(request, lecture_id)
    error = ""
    if request.method == "POST":
        raw_date = request.POST.get("recorded_on", "").strip()
        try:
            recorded_on = _form_date(raw_date)
            lectures.rename_lecture(
                lecture,
                title=request.POST.get("title", ""),
                course=request.POST.get("course", ""),
                recorded_on=recorded_on,
                clear_date=not raw_date,
            )
        except ServiceError as exc:
            error = exc.message
        else:
            messages.success(request, "Saved.")
            return redirect("lecture-detail", lecture.pk)
    return render(
        request,
        "emotions/lecture_edit.html",
        {"lecture": lecture, "error": error, "form": request.POST or None},
        status=400 if error else 200,
    )


def _form_date(raw: str):
    if not raw:
        return None
    try:
        value = parse_date(raw)
    except ValueError:
        value = None
    if value is None:
        raise ServiceError("The date is not a date: use YYYY-MM-DD.")
    return value


@login_required
@require_http_methods(["GET", "POST"])
def lecture_delete(request, lecture_id: int):
    """Confirm, then remove the recording, its segments and its finished job."""
    lecture = _lecture(request, lecture_id)
    if request.method == "POST":
        title = lecture.title
        lectures.delete_lecture(lecture)
        messages.success(request, f"“{title}” and its recording were deleted.")
        return redirect("lecture-list")
    return render(
        request,
        "emotions/lecture_delete.html",
        {
            "lecture": lecture,
            "length_text": clock(lecture.duration_s) if lecture.duration_s else "",
            "segments": lecture.segments.count(),
        },
    )


@login_required
@require_POST
def lecture_reanalyse(request, lecture_id: int):
    """Analyse again, with the model chosen on the report page (or the same one)."""
    lecture = _lecture(request, lecture_id)
    model = None
    if request.POST.get("model"):
        try:
            model = selectors.models_for(request.user).get(pk=int(request.POST["model"]))
        except (EmotionModel.DoesNotExist, ValueError):
            messages.error(request, "That model is not available to you.")
            return redirect("lecture-detail", lecture.pk)
    try:
        lectures.reanalyse_lecture(lecture, model)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The analysis starts again; results fill in below.")
    return redirect("lecture-detail", lecture.pk)


# Reports are the owner's only, like the lecture itself: class recordings are private,
# and staff reach lectures through the admin, where access is logged.
@login_required
@require_GET
def lecture_report_json(request, lecture_id: int):
    """The whole report as one JSON document."""
    lecture = _lecture(request, lecture_id)
    body = json.dumps(reports.export_document(lecture), ensure_ascii=False, indent=1)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="lecture-{lecture.pk}.json"'
    return response


@login_required
@require_GET
def lecture_report_pdf(request, lecture_id: int):
    """The printable report, drawn on the server."""
    from emotions.services.report_pdf import lecture_pdf

    lecture = _lecture(request, lecture_id)
    response = HttpResponse(lecture_pdf(lecture), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="lecture-{lecture.pk}.pdf"'
    return response


@login_required
def lecture_audio(request, lecture_id: int):
    """The recording, owner only, with HTTP range support so the player can seek."""
    lecture = _lecture(request, lecture_id)
    return ranged_file_response(request, lecture.audio)
