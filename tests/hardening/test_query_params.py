"""Every bad query parameter is a 400 with a message (issue 11, defect 7): the list
endpoints of the API (enumerated from the router, so a new one is covered the day it is
added), their filters one by one, and the pages that take parameters."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from emotions.api.urls import router
from emotions.models import Dataset, Lecture, NoiseProfile, Utterance

pytestmark = pytest.mark.django_db

LIST_URLS = sorted(f"/api/{prefix}/" for prefix, _, _ in router.registry)
# Paging and characters no list accepts.
BAD_FOR_EVERY_LIST = [
    "limit=-1", "limit=0", "limit=x", "limit=1.5", "offset=-1", "offset=x", "page=x",
    "page=2", "q=%00", "q=a%00b", "x%00=1", "q=%01",
]  # fmt: skip
# Filters, per endpoint.
BAD_FILTERS = {
    "/api/lectures/": ["from=abc", "to=2024-13-01", "from=%00", "q=" + "x" * 201],
    "/api/utterances/": [
        "dataset=abc", "dataset=-1", "dataset=1.5", "excluded=maybe", "label=" + "x" * 201,
        "speaker=%00",
    ],
    "/api/noise/": ["environment=moon", "environment=%00"],
}  # fmt: skip


@pytest.fixture
def api(make_user):
    client = APIClient()
    client.force_authenticate(make_user("ada"))
    return client


def refused(answer, query: str) -> str:
    assert answer.status_code == 400, (query, answer.status_code, answer.content[:300])
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and len(detail) > 10, (query, detail)
    assert "Error" not in detail and "Traceback" not in detail, detail
    return detail


def test_the_router_lists_are_all_covered():
    assert set(BAD_FILTERS) <= set(LIST_URLS)
    assert len(LIST_URLS) >= 8


@pytest.mark.parametrize("url", LIST_URLS)
def test_bad_paging_and_control_characters_on_every_list(api, url):
    for query in BAD_FOR_EVERY_LIST:
        refused(api.get(f"{url}?{query}"), f"{url}?{query}")
    assert api.get(url).status_code == 200
    assert api.get(f"{url}?limit=1&offset=0").status_code == 200


@pytest.mark.parametrize("url", sorted(BAD_FILTERS))
def test_bad_filters(api, url):
    for query in BAD_FILTERS[url]:
        detail = refused(api.get(f"{url}?{query}"), f"{url}?{query}")
        name = query.split("=")[0]
        assert name in detail, (query, detail)  # the message names the parameter


def test_messages_say_what_is_expected(api):
    assert "YYYY-MM-DD" in refused(api.get("/api/lectures/?from=abc"), "from")
    assert "whole number" in refused(api.get("/api/utterances/?dataset=abc"), "dataset")
    assert "at least 1" in refused(api.get("/api/jobs/?limit=-1"), "limit")
    assert "offset" in refused(api.get("/api/jobs/?page=x"), "page")
    assert "rain" in refused(api.get("/api/noise/?environment=moon"), "environment")


def test_good_filters_still_filter(api, make_user):
    from django.contrib.auth import get_user_model

    ada = get_user_model().objects.get(username="ada")
    mine = Dataset.objects.create(owner=ada, name="mine")
    other = Dataset.objects.create(owner=ada, name="other")
    Utterance.objects.create(dataset=mine, label="calm", speaker="s1")
    Utterance.objects.create(dataset=mine, label="angry", excluded=True)
    Utterance.objects.create(dataset=other, label="calm")
    NoiseProfile.objects.create(owner=ada, name="r", environment="rain")
    NoiseProfile.objects.create(owner=ada, name="c", environment="cafe")
    Lecture.objects.create(owner=ada, title="Optics", recorded_on="2026-03-01")
    Lecture.objects.create(owner=ada, title="Waves", recorded_on="2026-05-01")

    def count(url):
        answer = api.get(url)
        assert answer.status_code == 200, (url, answer.content[:200])
        return answer.json()["count"]

    assert count(f"/api/utterances/?dataset={mine.pk}") == 2
    assert count(f"/api/utterances/?dataset={mine.pk}&excluded=false") == 1
    assert count("/api/utterances/?excluded=true") == 1
    assert count("/api/utterances/?label=calm&speaker=s1") == 1
    assert count("/api/noise/?environment=rain") == 1
    assert count("/api/lectures/?from=2026-04-01") == 1
    assert count("/api/lectures/?to=2026-04-01&q=opt") == 1
    assert len(api.get("/api/noise/?limit=1").json()["results"]) == 1


def test_lecture_detail_parameters(api):
    from django.contrib.auth import get_user_model

    ada = get_user_model().objects.get(username="ada")
    lecture = Lecture.objects.create(owner=ada, title="Optics")
    base = f"/api/lectures/{lecture.pk}"
    for query in ("limit=x", "offset=-5", "page=1"):
        refused(api.get(f"{base}/segments/?{query}"), query)
    assert "Smoothing" in refused(api.get(f"{base}/report/?smooth=7"), "smooth")


def test_pages_refuse_bad_parameters_with_a_page(make_user):
    make_user("ada")
    make_user("root", is_staff=True, is_superuser=True)
    page = Client()
    page.force_login(make_user("bea"))
    for query in ("q=%00", "q=" + "x" * 201):
        answer = page.get(f"/lectures/?{query}")
        assert answer.status_code == 400, query
        assert "cannot be used" in answer.content.decode()
    assert page.get("/lectures/?q=optics").status_code == 200
    for query in ("a=abc", "b=1.5", "a=-3"):
        answer = page.get(f"/train/compare/?{query}")
        assert answer.status_code == 400, query
        assert "whole number" in answer.content.decode() or "at least 1" in (
            answer.content.decode()
        )
    assert page.get("/train/compare/?a=99&b=").status_code == 200  # not hers: nothing shown
    assert page.get("/datasets/?anything=%00").status_code == 400
    admin = Client()
    admin.force_login(make_user("admin2", is_staff=True, is_superuser=True))
    assert admin.get("/admin/emotions/utterance/?q=%00").status_code == 400
    assert admin.get("/admin/emotions/utterance/?q=x").status_code == 200
