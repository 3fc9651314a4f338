"""Managing a lecture from the site and the API: rename, delete (confirmed, recording and
rows gone), analyse again with another model or after a failure; the list shows h:mm:ss
and the dominant emotion. Only the owner may do any of it."""

import pytest

from emotions.models import EmotionModel, Job, Lecture, Segment
from tests.lecture_factory import make_lecture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def no_dispatch(monkeypatch):
    sent = []
    monkeypatch.setattr("emotions.services.jobs._dispatch", lambda *a: sent.append(a))
    return sent


@pytest.fixture
def owned(client_for, emotion_model):
    teacher = client_for("teacher")
    return teacher, make_lecture(teacher.user, emotion_model, 125, angry=(10, 100))


def test_list_shows_length_as_clock_and_dominant_emotion(owned):
    teacher, lecture = owned
    page = teacher.get("/lectures/").content.decode()
    assert "0:02:05" in page and "125 s" not in page
    assert lecture.summary["dominant"] == "anger"
    assert "<td>anger</td>" in page


def test_rename_from_the_page(owned):
    teacher, lecture = owned
    form = teacher.get(f"/lectures/{lecture.pk}/edit/")
    assert form.status_code == 200 and lecture.title in form.content.decode()
    answer = teacher.post(
        f"/lectures/{lecture.pk}/edit/",
        {"title": "  Optics, week 4 ", "course": "PHY-101", "recorded_on": "2026-11-30"},
    )
    assert answer.status_code == 302 and answer["Location"] == f"/lectures/{lecture.pk}/"
    lecture.refresh_from_db()
    assert (lecture.title, lecture.course, str(lecture.recorded_on)) == (
        "Optics, week 4",
        "PHY-101",
        "2026-11-30",
    )


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"title": "   "}, "needs a title"),
        ({"title": "x" * 201}, "at most 200"),
        ({"title": "ok", "recorded_on": "2026-13-45"}, "not a date"),
        ({"title": "ok", "recorded_on": "yesterday"}, "not a date"),
    ],
)
def test_rename_refusals_are_readable(owned, form, message):
    teacher, lecture = owned
    answer = teacher.post(f"/lectures/{lecture.pk}/edit/", form)
    assert answer.status_code == 400 and message in answer.content.decode()
    assert Lecture.objects.get(pk=lecture.pk).title == "Waves and optics"


def test_rename_through_the_api(owned):
    teacher, lecture = owned
    answer = teacher.patch(
        f"/api/lectures/{lecture.pk}/", {"title": "Renamed", "recorded_on": None}, format="json"
    )
    assert answer.status_code == 200 and answer.json()["title"] == "Renamed"
    assert (
        teacher.patch(f"/api/lectures/{lecture.pk}/", {"title": ""}, format="json").status_code
        == 400
    )


def test_delete_asks_first_then_removes_recording_and_rows(owned):
    teacher, lecture = owned
    storage, name = lecture.audio.storage, lecture.audio.name
    confirm = teacher.get(f"/lectures/{lecture.pk}/delete/")
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "Waves and optics" in text and "125 analysed seconds" in text and "0:02:05" in text
    assert Lecture.objects.filter(pk=lecture.pk).exists() and storage.exists(name)
    answer = teacher.post(f"/lectures/{lecture.pk}/delete/")
    assert answer.status_code == 302 and answer["Location"] == "/lectures/"
    assert not Lecture.objects.filter(pk=lecture.pk).exists()
    assert not Segment.objects.filter(lecture_id=lecture.pk).exists()
    assert not Job.objects.filter(pk=lecture.job_id).exists()
    assert not storage.exists(name)
    assert "were deleted" in teacher.get("/lectures/").content.decode()


def test_analyse_again_with_another_model(owned, emotion_model, no_dispatch):
    teacher, lecture = owned
    other_model = EmotionModel.objects.create(
        owner=emotion_model.owner,
        name="second model",
        backbone="mobilenet_v3_small",
        labels=emotion_model.labels,
        weights=emotion_model.weights.name,
    )
    old_job = lecture.job_id
    answer = teacher.post(f"/lectures/{lecture.pk}/reanalyse/", {"model": other_model.pk})
    assert answer.status_code == 302
    lecture.refresh_from_db()
    assert lecture.model_id == other_model.pk and lecture.job_id != old_job
    assert lecture.job.state == Job.State.QUEUED and lecture.job.params == {"lecture": lecture.pk}
    assert lecture.segments.count() == 0 and lecture.summary == {}
    assert len(no_dispatch) == 1
    # While that analysis runs, a second one is refused (409 in the API, a message on the page).
    answer = teacher.post(f"/api/lectures/{lecture.pk}/reanalyse/", {}, format="json")
    assert answer.status_code == 409 and "still running" in answer.json()["detail"]
    page = teacher.post(f"/lectures/{lecture.pk}/reanalyse/", follow=True).content.decode()
    assert "still running" in page
    assert Job.objects.filter(kind=Job.Kind.ANALYSIS).count() == 2


def test_a_failed_analysis_can_be_run_again_from_its_page(client_for, emotion_model, no_dispatch):
    teacher = client_for("teacher")
    lecture = make_lecture(teacher.user, emotion_model, 5, state=Job.State.FAILED)
    page = teacher.get(f"/lectures/{lecture.pk}/").content.decode()
    assert "Run the analysis again with" in page
    answer = teacher.post(f"/api/lectures/{lecture.pk}/reanalyse/", {}, format="json")
    assert answer.status_code == 202 and answer.json()["job"]["state"] == "queued"
    assert answer.json()["model"]["id"] == emotion_model.pk


def test_analyse_again_refuses_a_model_the_user_cannot_see(owned, make_user, no_dispatch):
    teacher, lecture = owned
    private = EmotionModel.objects.create(
        owner=make_user("someone"), name="private", backbone="x", labels=["a"], visibility="private"
    )
    answer = teacher.post(
        f"/api/lectures/{lecture.pk}/reanalyse/", {"model": private.pk}, format="json"
    )
    assert answer.status_code == 400 and "No such model" in str(answer.json())
    page = teacher.post(f"/lectures/{lecture.pk}/reanalyse/", {"model": private.pk}, follow=True)
    assert "not available to you" in page.content.decode()
    assert not no_dispatch


def test_nobody_but_the_owner_manages_a_lecture(owned, client_for, no_dispatch):
    _, lecture = owned
    for name, extra in (("other", {}), ("head", {"is_staff": True})):
        client = client_for(name, **extra)
        for method, url in (
            ("get", f"/lectures/{lecture.pk}/edit/"),
            ("post", f"/lectures/{lecture.pk}/edit/"),
            ("get", f"/lectures/{lecture.pk}/delete/"),
            ("post", f"/lectures/{lecture.pk}/delete/"),
            ("post", f"/lectures/{lecture.pk}/reanalyse/"),
            ("post", f"/api/lectures/{lecture.pk}/reanalyse/"),
            ("patch", f"/api/lectures/{lecture.pk}/"),
        ):
            answer = getattr(client, method)(url, {"title": "stolen"})
            assert answer.status_code == 404, (name, method, url)
    lecture.refresh_from_db()
    assert lecture.title == "Waves and optics" and lecture.segments.count() == 125
    assert not no_dispatch
