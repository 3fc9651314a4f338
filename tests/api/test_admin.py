"""The Django admin: models, lectures and runs are there, read-only where editing would
break them; an utterance's change page plays its recording; deletes go through services."""

import pytest
from django.core.files.storage import default_storage

from emotions.models import EmotionModel, Lecture, TrainingRun, Utterance
from tests.lecture_factory import make_lecture
from tests.services.test_training import make_dataset

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff_client(client, make_user):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


def test_models_lectures_and_runs_are_in_the_admin(staff_client, make_user, emotion_model):
    owner = make_user("teacher")
    lecture = make_lecture(owner, emotion_model, 12)
    dataset = make_dataset(owner)
    run = TrainingRun.objects.create(owner=owner, dataset=dataset, name="clean run", snrs=[15])
    index = staff_client.get("/admin/").content.decode()
    assert "Derived blocks" in index and "blockss" not in index
    for model, obj, shown in (
        ("emotionmodel", emotion_model, "tiny test model"),
        ("lecture", lecture, "Waves and optics"),
        ("trainingrun", run, "clean run"),
    ):
        listing = staff_client.get(f"/admin/emotions/{model}/")
        assert listing.status_code == 200 and shown in listing.content.decode(), model
        page = staff_client.get(f"/admin/emotions/{model}/{obj.pk}/change/")
        assert page.status_code == 200, model
        # Made by the site, never added by hand.
        assert staff_client.get(f"/admin/emotions/{model}/add/").status_code == 403, model
    # What ties a row to its files and results is shown, not offered for editing.
    html = staff_client.get(f"/admin/emotions/lecture/{lecture.pk}/change/").content.decode()
    assert 'name="title"' in html and 'name="audio"' not in html and 'name="model"' not in html
    html = staff_client.get(f"/admin/emotions/emotionmodel/{emotion_model.pk}/change/")
    assert 'name="weights"' not in html.content.decode()
    assert 'name="is_active"' not in html.content.decode()

    # Deleting a lecture in the admin removes its recording too (through the service).
    audio = lecture.audio.name
    assert default_storage.exists(audio)
    answer = staff_client.post(
        f"/admin/emotions/lecture/{lecture.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert answer.status_code == 200 and not Lecture.objects.exists()
    assert not default_storage.exists(audio)
    # A model that analysed lectures is refused with the admin's own page, not a 500.
    make_lecture(owner, emotion_model, 3)
    answer = staff_client.post(
        f"/admin/emotions/emotionmodel/{emotion_model.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert answer.status_code == 200 and "Cannot delete emotion model" in answer.content.decode()
    assert EmotionModel.objects.filter(pk=emotion_model.pk).exists()


def test_the_utterance_page_plays_the_recording_to_staff_only(staff_client, make_user, client):
    dataset = make_dataset(make_user("researcher"))
    utterance = Utterance.objects.filter(dataset=dataset).order_by("pk").first()
    html = staff_client.get(f"/admin/emotions/utterance/{utterance.pk}/change/").content.decode()
    src = f"/admin/emotions/utterance/{utterance.pk}/audio"
    assert f'<audio controls preload="none" src="{src}"></audio>' in html
    answer = staff_client.get(src)
    assert answer.status_code == 200 and answer["Content-Type"].startswith("audio/")
    body = b"".join(answer.streaming_content)
    with utterance.audio.open("rb") as f:
        assert body == f.read()
    ranged = staff_client.get(src, HTTP_RANGE="bytes=0-99")
    assert ranged.status_code == 206 and len(b"".join(ranged.streaming_content)) == 100
    assert staff_client.get("/admin/emotions/utterance/999999/audio").status_code == 404
    # Not staff: sent to the admin's login, the audio never served.
    staff_client.logout()
    staff_client.force_login(make_user("someone"))
    answer = staff_client.get(src)
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]
