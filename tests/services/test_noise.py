"""Noise profiles: upload checks and measurements, the noise pack (with a fake fetch),
the management command, previews and delete."""

import io
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from emotions.models import Job, NoiseProfile, Visibility
from emotions.ser import noisepack
from emotions.services import datasets, jobs, noise
from emotions.services.errors import ServiceError

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def short_synthetic_noise(monkeypatch):
    monkeypatch.setattr(noise, "SYNTHETIC_SECONDS", 3.0)  # a minute in production


def sine_wav(seconds=1.0, sr=44_100, amp=0.5, channels=2, fmt="WAV") -> bytes:
    t = np.arange(int(seconds * sr)) / sr
    x = amp * np.sin(2 * np.pi * 440 * t)
    out = io.BytesIO()
    sf.write(out, np.stack([x] * channels, axis=1), sr, format=fmt)
    return out.getvalue()


def noise_upload(data: bytes, name: str = "cafe.wav") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="audio/wav")


def test_upload_is_converted_and_measured(make_user):
    profile = noise.create_noise_profile(
        make_user("ada"), noise_upload(sine_wav()), environment="cafe"
    )
    assert profile.name == "cafe" and profile.environment == "cafe"
    assert profile.original_sample_rate == 44_100
    assert profile.duration_s == pytest.approx(1.0, abs=0.01)
    # A 0.5-amplitude sine: RMS 0.354 (-9.0 dBFS), peak 0.5 (-6.0 dBFS).
    assert profile.rms_dbfs == pytest.approx(-9.03, abs=0.1)
    assert profile.peak_dbfs == pytest.approx(-6.02, abs=0.1)
    assert profile.audio.name.endswith(".flac") and default_storage.exists(profile.audio.name)
    with default_storage.open(profile.audio.name) as fh:
        stored, sr = sf.read(fh)
    assert sr == 16_000 and stored.ndim == 1


@pytest.mark.parametrize(
    "data, words",
    [
        # Random bytes: FFmpeg may take them for some container (seen: a subtitle stream),
        # so the message names the file and says it cannot be read, whatever the cause.
        (random.Random(7).randbytes(4000), "is not a recording the site can read"),
        (b"", "is empty"),
        (sine_wav(amp=0.0), "is silent (its level is digital silence"),
        (sine_wav(amp=1e-6), "is silent"),
    ],
    ids=["random bytes", "empty", "digital silence", "near silence"],
)
def test_bad_noise_is_refused_with_a_message(make_user, data, words):
    with pytest.raises(ServiceError, match="“cafe.wav”") as caught:
        noise.create_noise_profile(make_user("ada"), noise_upload(data))
    assert words in caught.value.message
    assert not NoiseProfile.objects.exists()


def test_spectrogram_preview_is_a_png(make_user):
    profile = noise.create_noise_profile(make_user("ada"), noise_upload(sine_wav(2.0)))
    png = noise.spectrogram_png(profile)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_delete_removes_the_file_and_checks_the_owner(make_user):
    owner = make_user("ada")
    profile = noise.create_noise_profile(owner, noise_upload(sine_wav()))
    with pytest.raises(datasets.NotAllowed):
        noise.delete_noise_profile(make_user("bob"), profile)
    name = profile.audio.name
    noise.delete_noise_profile(owner, profile)
    assert not NoiseProfile.objects.exists()
    datasets.delete_files([name])  # what the on-commit hook does
    assert not default_storage.exists(name)


# ---------------------------------------------------------------- the noise pack


class FakeFetch:
    """Stands in for noisepack.fetch: writes two real recordings (one silent) as the
    btanks-data package would deliver them."""

    def __init__(self):
        self.calls = 0

    def __call__(self, dest_dir: Path, packages=None, **kwargs):
        self.calls += 1
        folder = Path(dest_dir) / "btanks-data"
        folder.mkdir(parents=True, exist_ok=True)
        records = []
        for name, amp in (("city", 0.3), ("dead", 0.0)):
            path = folder / f"{name}.ogg"
            path.write_bytes(sine_wav(1.0, 22_050, amp, 1, fmt="OGG"))
            records.append(
                noisepack.FetchedNoise(
                    path=path,
                    name=name,
                    environment="street",
                    package="btanks-data",
                    package_version="0.9-1",
                    path_in_package=f"usr/share/{name}.ogg",
                    licence="GPL-2",
                    attribution="Copyright: 2008 Test Authors",
                    sha256="ab",
                )  # fmt: skip
            )
        return records


def test_noise_pack_imports_shared_profiles_once(make_user, monkeypatch):
    fake = FakeFetch()
    monkeypatch.setattr(noisepack, "fetch", fake)
    owner = make_user("root", is_staff=True)
    counts = noise.import_noise_pack(owner)
    assert counts["added"] == 3  # city + the two synthetic noises
    assert [s["path"] for s in counts["skipped"]] == ["usr/share/dead.ogg"]  # silent
    city = NoiseProfile.objects.get(source_package="btanks-data")
    assert city.visibility == Visibility.SHARED and city.environment == "street"
    assert city.original_sample_rate == 22_050 and city.licence == "GPL-2"
    assert "Copyright: 2008 Test Authors" in city.attribution and "0.9-1" in city.attribution
    synthetic = NoiseProfile.objects.filter(synthetic=True)
    assert {p.environment for p in synthetic} == {"fan", "aircon"}
    assert all(p.duration_s == pytest.approx(3.0) for p in synthetic)

    again = noise.import_noise_pack(owner)
    assert again["added"] == 0 and again["already_present"] == 3
    assert NoiseProfile.objects.count() == 3


def test_missing_apt_tools_give_a_clear_message(make_user, monkeypatch):
    monkeypatch.setattr(noisepack.shutil, "which", lambda tool: None)
    with pytest.raises(ServiceError, match="apt-get and dpkg-deb not found"):
        noise.import_noise_pack(make_user("root", is_superuser=True))
    assert NoiseProfile.objects.filter(synthetic=True).count() == 2  # these still arrived
    with pytest.raises(CommandError, match="apt-get and dpkg-deb not found"):
        call_command("fetch_noise_pack", "--no-synthetic", stdout=io.StringIO())


def test_command_imports_for_the_named_owner(make_user, monkeypatch):
    monkeypatch.setattr(noisepack, "fetch", FakeFetch())
    make_user("curator")
    out = io.StringIO()
    call_command("fetch_noise_pack", "--owner", "curator", "--packages", "btanks-data", stdout=out)
    assert "3 noise profile(s) added" in out.getvalue()
    assert set(NoiseProfile.objects.values_list("owner__username", flat=True)) == {"curator"}
    with pytest.raises(CommandError, match="no user"):
        call_command("fetch_noise_pack", "--owner", "nobody")


def test_noise_pack_job_runs_through_the_import_task_body(make_user, monkeypatch):
    monkeypatch.setattr(noisepack, "fetch", FakeFetch())
    with pytest.raises(datasets.NotAllowed):
        noise.start_noise_pack(make_user("ada"))
    job = noise.start_noise_pack(make_user("root", is_staff=True), ["btanks-data"])
    assert job.kind == Job.Kind.IMPORT
    jobs.run(job.pk, datasets.run_import, worker="test", device="cpu")
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.result["added"] == 3
