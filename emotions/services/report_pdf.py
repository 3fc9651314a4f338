"""The PDF report of a lecture: its data from the report service, drawn by the ML core's
Django-free PDF module."""

from django.utils import timezone

from emotions.models import Lecture
from emotions.ser.report import DEFAULT_SMOOTHING
from emotions.ser.report_pdf import PdfHeader, report_pdf
from emotions.services.reports import model_card, timeline_for


def lecture_pdf(lecture: Lecture) -> bytes:
    header = PdfHeader(
        title=lecture.title,
        course=lecture.course,
        recorded_on=lecture.recorded_on.isoformat() if lecture.recorded_on else "",
        original_name=lecture.original_name,
        created=timezone.now().date().isoformat(),
    )
    return report_pdf(header, model_card(lecture.model), timeline_for(lecture, DEFAULT_SMOOTHING))
