"""Datasets through the real HTTP endpoints: import (the job runs in this process), bad
archives, who may see and delete what, utterances, the schema and the pages."""

import io
import tarfile

import pytest
from rest_framework.test import APIClient

from emotions.models import Dataset, Job, Utterance, Visibility
from tests.services.test_datasets import folder_corpus, run_job, tar_bytes, wav_bytes, zip_bytes

pytestmark = pytest.mark.django_db


def post_archive(client, data: bytes, name: str = "corpus.zip", **fields):
    archive = io.BytesIO(data)
    archive.name = name
    return client.post("/api/datasets/", {"file": archive, **fields}, format="multipart")


def import_through_api(client, data: bytes, name="corpus.zip", **fields) -> tuple[dict, dict]:
    """Upload, run the queued job as the worker would, and read the job back over HTTP."""
    answer = post_archive(client, data, name, **fields)
    assert answer.status_code == 201, answer.content
    dataset = answer.json()
    assert dataset["import_job"]["state"] == "queued"
    run_job(dataset["import_job"]["id"])
    job = client.get(f"/api/jobs/{dataset['import_job']['id']}/").json()
    return dataset, job


def test_import_then_per_class_counts(client_for):
    client = client_for("ada")
    dataset, job = import_through_api(client, zip_bytes(folder_corpus()), name="Mine")
    assert job["state"] == "succeeded", job["error"]
    read = client.get(f"/api/datasets/{dataset['id']}/").json()
    assert read["n_utterances"] == 6 and read["labels"] == ["angry", "calm"]
    assert read["n_blocks"] == 8 and read["total_duration_s"] == pytest.approx(6.6)
    stats = client.get(f"/api/datasets/{dataset['id']}/stats/").json()
    assert [(c["label"], c["utterances"], c["blocks"]) for c in stats["classes"]] == [
        ("angry", 3, 4),
        ("calm", 3, 4),
    ]
    # The method's mix-up keeps each block and adds one noisy copy per SNR (15, 20, 40 dB).
    assert stats["mixup_snrs"] == ["15", "20", "40"]
    assert [c["mixup_blocks"] for c in stats["classes"]] == [16, 16]
    imports = client.get("/api/imports/").json()
    assert [j["id"] for j in imports["results"]] == [job["id"]]


def symlink_tar() -> bytes:
    link = tarfile.TarInfo("angry/link.wav")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return tar_bytes({"angry/a.wav": wav_bytes()}, [link])


@pytest.mark.parametrize(
    "data, name, words",
    [
        (zip_bytes({}), "empty.zip", "The archive is empty"),
        (zip_bytes({"angry/a.wav": wav_bytes(), "../../evil.wav": b"x"}), "t.zip", "“..”"),
        (symlink_tar(), "l.tar.gz", "is a link"),
        (zip_bytes({f"angry/{i}.wav": b"x" for i in range(6)}), "many.zip", "more than 5 entries"),
        (zip_bytes({"angry/big.wav": bytes(200_000)}), "big.zip", "unpacks to more than"),
        (
            zip_bytes({"manifest.csv": b"file,label\na.wav,sad\n", "a.wav": wav_bytes()}),
            "m.zip",
            "manifest.csv line 1: missing column(s) path",
        ),
    ],
    ids=["empty", "traversal", "symlink", "too many members", "bomb", "manifest column"],
)
def test_bad_archives_end_in_a_failed_job_with_the_reason(client_for, settings, data, name, words):
    settings.IMPORT_MAX_ARCHIVE_MEMBERS = 5
    settings.IMPORT_MAX_EXTRACTED_BYTES = 100_000
    dataset, job = import_through_api(client_for("ada"), data, name)
    assert job["state"] == "failed"
    assert words in job["error"]
    assert not Utterance.objects.exists()


def test_a_file_that_is_no_archive_is_400(client_for):
    answer = post_archive(client_for("ada"), b"just some text", "notes.zip")
    assert answer.status_code == 400
    assert "“notes.zip” is not a zip or tar archive" in answer.json()["detail"]
    assert not Dataset.objects.exists()


def test_server_folder_is_403_for_researchers(client_for, tmp_path):
    answer = client_for("ada").post(
        "/api/datasets/", {"directory": str(tmp_path)}, format="multipart"
    )
    assert answer.status_code == 403
    assert "administrators" in answer.json()["detail"]


def make_dataset(owner, visibility=Visibility.PRIVATE) -> Dataset:
    dataset = Dataset.objects.create(owner=owner, name="theirs", visibility=visibility)
    Utterance.objects.create(dataset=dataset, label="sad", speaker="s1", n_blocks=2)
    return dataset


def test_a_private_dataset_is_invisible_to_others(client_for, make_user):
    dataset = make_dataset(make_user("alice"))
    bob = client_for("bob")
    assert bob.get("/api/datasets/").json()["count"] == 0
    assert bob.get(f"/api/datasets/{dataset.pk}/").status_code == 404
    assert bob.delete(f"/api/datasets/{dataset.pk}/").status_code == 404
    assert bob.get(f"/api/utterances/?dataset={dataset.pk}").json()["count"] == 0
    assert bob.get(f"/datasets/{dataset.pk}/").status_code == 404
    assert Dataset.objects.filter(pk=dataset.pk).exists()


def test_a_shared_dataset_is_visible_but_not_deletable_by_others(client_for, make_user):
    dataset = make_dataset(make_user("alice"), Visibility.SHARED)
    bob = client_for("bob")
    assert bob.get(f"/api/datasets/{dataset.pk}/").json()["can_edit"] is False
    answer = bob.delete(f"/api/datasets/{dataset.pk}/")
    assert answer.status_code == 403 and "owner" in answer.json()["detail"]
    utterance = dataset.utterances.get()
    assert bob.patch(f"/api/utterances/{utterance.pk}/", {"label": "x"}).status_code == 403
    assert bob.post(f"/datasets/{dataset.pk}/delete/").status_code == 302
    assert Dataset.objects.filter(pk=dataset.pk).exists()
    # Staff curate shared data.
    assert (
        client_for("root", is_staff=True).delete(f"/api/datasets/{dataset.pk}/").status_code == 204
    )
    assert not Dataset.objects.filter(pk=dataset.pk).exists()


def test_a_shared_dataset_keeps_its_import_job_to_its_owner(client_for, make_user):
    """Others see a shared dataset's recordings, not its import's messages and file paths."""
    alice = make_user("alice")
    dataset = make_dataset(alice, Visibility.SHARED)
    dataset.import_job = Job.objects.create(
        owner=alice, kind=Job.Kind.IMPORT, state=Job.State.FAILED, error="SECRET-path/a.wav"
    )
    dataset.save()
    bob = client_for("bob")
    assert bob.get(f"/api/datasets/{dataset.pk}/").json()["import_job"] is None
    page = bob.get(f"/datasets/{dataset.pk}/")
    assert page.status_code == 200 and b"SECRET-path" not in page.content
    owner = APIClient()
    owner.force_authenticate(alice)
    owner.force_login(alice)
    assert owner.get(f"/api/datasets/{dataset.pk}/").json()["import_job"]["error"]
    assert b"SECRET-path" in owner.get(f"/datasets/{dataset.pk}/").content


def test_owner_relabels_excludes_and_filters_utterances(client_for):
    client = client_for("ada")
    dataset = make_dataset(client.user)
    utterance = dataset.utterances.get()
    answer = client.patch(f"/api/utterances/{utterance.pk}/", {"label": "calm", "excluded": True})
    assert answer.status_code == 200 and answer.json()["label"] == "calm"
    assert Dataset.objects.get(pk=dataset.pk).labels == ["calm"]
    listed = client.get("/api/utterances/", {"dataset": dataset.pk, "label": "calm"}).json()
    assert listed["count"] == 1 and listed["results"][0]["excluded"] is True
    assert client.get("/api/utterances/", {"excluded": "false"}).json()["count"] == 0
    stats = client.get(f"/api/datasets/{dataset.pk}/stats/").json()
    assert stats["excluded"] == 1 and stats["classes"] == []


def test_owner_shares_and_renames(client_for):
    client = client_for("ada")
    dataset = make_dataset(client.user)
    answer = client.patch(
        f"/api/datasets/{dataset.pk}/", {"name": "IEMOCAP 4", "visibility": "shared"}
    )
    assert answer.status_code == 200
    assert answer.json()["name"] == "IEMOCAP 4" and answer.json()["visibility"] == "shared"


def test_schema_lists_the_new_endpoints(client_for):
    schema = client_for("ada").get("/api/schema/").content
    for path in (b"/api/datasets/", b"/api/datasets/{id}/stats/", b"/api/utterances/{id}/",
                 b"/api/imports/", b"/api/noise/", b"/api/noise/fetch-pack/"):  # fmt: skip
        assert path in schema


# ---------------------------------------------------------------- pages


def test_pages_show_counts_warning_and_delete(client, make_user):
    owner = make_user("ada")
    client.force_login(owner)
    api = APIClient()
    api.force_authenticate(owner)
    dataset, job = import_through_api(api, zip_bytes(folder_corpus()), name="Mine")
    listing = client.get("/datasets/")
    assert listing.status_code == 200
    assert b"Import a corpus" in listing.content and b"Mine" in listing.content
    detail = client.get(f"/datasets/{dataset['id']}/").content.decode()
    assert "leave-one-session-out" in detail and "speaker-independent" in detail
    assert '<th scope="row">angry</th><td>3</td>' in detail
    assert "noise mix-up at 15, 20, 40 dB" in detail and "<td>16</td>" in detail
    confirm = client.get(f"/datasets/{dataset['id']}/delete/")
    assert b"cannot be undone" in confirm.content
    gone = client.post(f"/datasets/{dataset['id']}/delete/")
    assert gone.status_code == 302 and not Dataset.objects.exists()
    assert not Job.objects.filter(pk=job["id"]).exists()


def test_staff_see_the_server_folder_field(client, make_user):
    client.force_login(make_user("root", is_staff=True))
    assert b'id="id_directory"' in client.get("/datasets/").content


def test_label_map_travels_as_json_in_a_multipart_form(client_for):
    client = client_for("ada")
    dataset, job = import_through_api(
        client, zip_bytes(folder_corpus()), label_map='{"calm": null, "angry": "anger"}'
    )
    assert job["state"] == "succeeded" and job["result"]["labels"] == {"anger": 3}


# ---------------------------------------------------------------- admin


def test_admin_relabels_through_a_form_and_excludes(client, make_user):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    dataset = make_dataset(make_user("alice"))
    ids = [str(u.pk) for u in dataset.utterances.all()]
    url = "/admin/emotions/utterance/"
    form = client.post(url, {"action": "relabel", "_selected_action": ids})
    assert form.status_code == 200 and b"new emotion label" in form.content
    done = client.post(url, {"action": "relabel", "_selected_action": ids, "apply": "1",
                             "label": "neutral"})  # fmt: skip
    assert done.status_code == 302
    assert Dataset.objects.get(pk=dataset.pk).labels == ["neutral"]
    client.post(url, {"action": "exclude_from_training", "_selected_action": ids})
    assert all(u.excluded for u in dataset.utterances.all())
    assert client.get(f"{url}?label=neutral&excluded__exact=1").status_code == 200
