"""Lecture management services: rename rules, analysing again and its refusals."""

import pytest

from emotions.models import Job, Lecture
from emotions.services import lectures
from emotions.services.errors import Conflict, ServiceError
from tests.lecture_factory import make_lecture

pytestmark = pytest.mark.django_db


@pytest.fixture
def lecture(make_user, emotion_model):
    return make_lecture(make_user("teacher"), emotion_model, 30)


def test_rename_keeps_what_is_not_given(lecture):
    lectures.rename_lecture(lecture, title=" New title ")
    lecture.refresh_from_db()
    assert (lecture.title, lecture.course) == ("New title", "Physics 101")
    with pytest.raises(ServiceError, match="needs a title"):
        lectures.rename_lecture(lecture, title="")


def test_analyse_again_replaces_results_and_starts_one_job(lecture, emotion_model):
    again = lectures.reanalyse_lecture(lecture, dispatch=False)
    assert again.segments.count() == 0 and again.summary == {}
    assert again.job.state == Job.State.QUEUED and again.model == emotion_model
    with pytest.raises(Conflict, match="still running"):
        lectures.reanalyse_lecture(again, dispatch=False)


def test_analyse_again_needs_the_recording(lecture):
    lecture.audio.storage.delete(lecture.audio.name)
    with pytest.raises(Conflict, match="no longer stored"):
        lectures.reanalyse_lecture(lecture, dispatch=False)
    assert lecture.segments.count() == 30  # nothing was thrown away


def test_analyse_again_without_any_model(lecture):
    from emotions.models import EmotionModel

    # The model was retired (no longer active) and unlinked: nothing to analyse with.
    Lecture.objects.filter(pk=lecture.pk).update(model=None)
    lecture.refresh_from_db()
    EmotionModel.objects.update(is_active=False)
    with pytest.raises(Conflict, match="No trained model"):
        lectures.reanalyse_lecture(lecture, dispatch=False)
