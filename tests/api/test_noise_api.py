"""Noise profiles through the real HTTP endpoints: upload and its refusals, preview and
ranged audio, who may see and delete what, the noise-pack action, the pages."""

import io
import os

import pytest

from emotions.models import Job, NoiseProfile, Visibility
from emotions.services import noise
from tests.services.test_noise import noise_upload, sine_wav

pytestmark = pytest.mark.django_db


def post_noise(client, data: bytes, filename: str = "hall.wav", **fields):
    upload = io.BytesIO(data)
    upload.name = filename
    return client.post("/api/noise/", {"file": upload, **fields}, format="multipart")


def test_upload_answers_with_measurements_and_links(client_for):
    client = client_for("ada")
    answer = post_noise(client, sine_wav(1.5, 48_000), environment="classroom", name="Room 101")
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["name"] == "Room 101" and body["environment_label"] == "Classroom"
    assert body["original_sample_rate"] == 48_000 and body["duration_s"] == pytest.approx(1.5)
    assert body["rms_dbfs"] == pytest.approx(-9.03, abs=0.1) and body["can_edit"] is True

    image = client.get(body["spectrogram_url"])
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    whole = client.get(body["audio_url"])
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    part = client.get(body["audio_url"], HTTP_RANGE="bytes=0-99")
    assert part.status_code == 206 and len(b"".join(part.streaming_content)) == 100


@pytest.mark.parametrize(
    "data, words",
    [
        (os.urandom(4000), "“hall.wav” is not a recording the site can read"),
        (b"", "“hall.wav” is empty"),
        (sine_wav(amp=0.0), "“hall.wav” is silent"),
    ],
    ids=["random bytes named .wav", "empty file", "silent file"],
)
def test_bad_noise_upload_is_400_naming_the_problem(client_for, data, words):
    answer = post_noise(client_for("ada"), data)
    assert answer.status_code == 400
    assert words in answer.json()["detail"]
    assert not NoiseProfile.objects.exists()


def make_profile(owner, visibility=Visibility.PRIVATE) -> NoiseProfile:
    return noise.create_noise_profile(owner, noise_upload(sine_wav()), visibility=visibility)


def test_a_private_noise_is_invisible_to_others(client_for, make_user):
    profile = make_profile(make_user("alice"))
    bob = client_for("bob")
    assert bob.get("/api/noise/").json()["count"] == 0
    for url in (f"/api/noise/{profile.pk}/", f"/noise/{profile.pk}/", f"/noise/{profile.pk}/audio",
                f"/noise/{profile.pk}/spectrogram.png"):  # fmt: skip
        assert bob.get(url).status_code == 404, url
    assert bob.delete(f"/api/noise/{profile.pk}/").status_code == 404
    assert NoiseProfile.objects.filter(pk=profile.pk).exists()


def test_a_shared_noise_is_usable_but_not_deletable_by_others(client_for, make_user):
    profile = make_profile(make_user("alice"), Visibility.SHARED)
    bob = client_for("bob")
    assert bob.get(f"/api/noise/{profile.pk}/").json()["can_edit"] is False
    assert bob.get(f"/noise/{profile.pk}/audio").status_code == 200
    answer = bob.delete(f"/api/noise/{profile.pk}/")
    assert answer.status_code == 403 and "owner" in answer.json()["detail"]
    assert bob.patch(f"/api/noise/{profile.pk}/", {"name": "mine"}).status_code == 403
    assert NoiseProfile.objects.filter(pk=profile.pk).exists()


def test_owner_renames_and_deletes(client_for):
    client = client_for("ada")
    profile = make_profile(client.user)
    answer = client.patch(f"/api/noise/{profile.pk}/", {"name": "HVAC", "environment": "aircon"})
    assert answer.status_code == 200 and answer.json()["environment"] == "aircon"
    assert client.delete(f"/api/noise/{profile.pk}/").status_code == 204
    assert not NoiseProfile.objects.exists()


def test_fetch_pack_is_for_staff_and_queues_a_job(client_for):
    assert client_for("ada").post("/api/noise/fetch-pack/").status_code == 403
    staff = client_for("root", is_staff=True)
    unknown = staff.post("/api/noise/fetch-pack/", {"packages": ["vim"]}, format="json")
    assert unknown.status_code == 400 and "vim" in unknown.json()["detail"]
    answer = staff.post("/api/noise/fetch-pack/", {"packages": ["btanks-data"]}, format="json")
    assert answer.status_code == 201
    job = Job.objects.get(pk=answer.json()["id"])
    assert job.kind == Job.Kind.IMPORT and job.params["packages"] == ["btanks-data"]
    page = staff.post("/noise/fetch-pack/")  # the page's button
    assert page.status_code == 302 and page["Location"].startswith("/jobs/")


def test_pages_list_preview_and_confirm_delete(client_for):
    client = client_for("ada")
    profile = make_profile(client.user)
    listing = client.get("/noise/").content.decode()
    assert "Add a noise recording" in listing and f"/noise/{profile.pk}/spectrogram.png" in listing
    assert "Fetch the noise pack" not in listing  # staff only
    detail = client.get(f"/noise/{profile.pk}/").content.decode()
    assert "Original sample rate" in detail and "44100 Hz" in detail
    assert b"cannot be undone" in client.get(f"/noise/{profile.pk}/delete/").content
    assert client.post(f"/noise/{profile.pk}/delete/").status_code == 302
    assert not NoiseProfile.objects.exists()
