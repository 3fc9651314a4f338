"""Jobs API input checks (no worker needed: nothing here is dispatched)."""

import pytest

from emotions.models import Job

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "payload, field",
    [({"steps": 0}, "steps"), ({"delay": 99}, "delay"), ({"queue": "tpu"}, "queue"),
     ({"steps": "many"}, "steps")],
)  # fmt: skip
def test_bad_self_test_parameters_are_400_with_message(client_for, payload, field):
    answer = client_for("ada").post("/api/jobs/", payload, format="json")
    assert answer.status_code == 400
    assert field in answer.json()
    assert not Job.objects.exists()


def test_list_shows_only_own_jobs(client_for, make_user):
    mine = client_for("ada")
    other = make_user("bob")
    Job.objects.create(owner=other, kind=Job.Kind.DIAGNOSTIC)
    assert mine.get("/api/jobs/").json()["count"] == 0


def test_schema_is_served(client_for):
    answer = client_for("ada").get("/api/schema/")
    assert answer.status_code == 200
    assert b"/api/jobs/{id}/cancel/" in answer.content
