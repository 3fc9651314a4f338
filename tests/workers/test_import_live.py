"""An archive uploaded through the web API is imported by the real Celery worker, and the
dataset's per-class counts come back right."""

import pytest

from tests.live import wait_for_state
from tests.services.test_datasets import folder_corpus, zip_bytes

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_folder_archive_is_imported_by_the_worker(make_user, login_as, live_url, celery_worker):
    make_user("ada")
    http = login_as("ada")
    files = {"file": ("corpus.zip", zip_bytes(folder_corpus()), "application/zip")}
    answer = http.post(f"{live_url}/api/datasets/", files=files, data={"name": "two moods"})
    assert answer.status_code == 201, answer.text
    dataset = answer.json()

    job = wait_for_state(http, live_url, dataset["import_job"]["id"], {"succeeded", "failed"})
    assert job["state"] == "succeeded", job["error"]
    assert job["result"]["imported"] == 6 and job["result"]["skipped"] == 0

    stats = http.get(f"{live_url}/api/datasets/{dataset['id']}/stats/").json()
    per_class = {c["label"]: (c["utterances"], c["blocks"]) for c in stats["classes"]}
    assert per_class == {"angry": (3, 4), "calm": (3, 4)}
    page = http.get(f"{live_url}/datasets/{dataset['id']}/")
    assert page.status_code == 200 and "two moods" in page.text
