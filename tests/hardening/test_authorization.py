"""Who may do what: every URL the resolver knows, tried by every kind of visitor.

The first user ("owner") has one of everything: a lecture, a job, a private dataset (with
an utterance and its import job), a private noise recording, a training run and a private
model, each carrying SECRET in a field the API or a page would show. Then, for every URL
pattern (pages, API and admin, enumerated from the resolver, so a new URL is covered the
day it is added) filled in with the owner's objects:

- anonymous visitors are sent to a login page (pages, admin) or refused (API), except on
  the explicit PUBLIC allow-list;
- another user and a staff member get 404 for the owner's objects and lists without them,
  whatever the method (GET, POST, PATCH, DELETE), and SECRET never appears in an answer;
- staff (and only staff) get into the Django admin, where they may see everything;
- the owner reads every object URL; afterwards the owner, and only they, update and
  delete through the API (activating a model stays staff-only).

Nothing another user did may have changed the owner's objects. HTTP runs in this process
(Django's test client: fast); WebSockets run against the private live site. CSRF is
checked with a client that enforces it.
"""

import json
import re
import time
import uuid

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLResolver, get_resolver
from websockets.exceptions import ConnectionClosed, InvalidStatus

from emotions.models import (
    Dataset,
    EmotionModel,
    Job,
    Lecture,
    NoiseProfile,
    TrainingRun,
    Utterance,
    Visibility,
)
from emotions.services import noise
from emotions.services.training.records import PREDICTION_COLUMNS
from tests.conftest import login
from tests.hardening import inputs as make
from tests.live import receive, ws_connect

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = f"owner-secret-{uuid.uuid4().hex[:8]}"
# Answer anyone: nothing in them belongs to a user. The API schema and its docs describe
# the endpoints, not anyone's data.
PUBLIC = {
    "/accounts/login/",
    "/accounts/logout/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/accounts/password/reset/sent/",
    "/accounts/reset/MQ/not-a-token/",
    "/accounts/reset/done/",
    "/healthz",
    "/admin/login/",
    "/admin/logout/",
    "/api/schema/",
    "/api/docs/",
}
WRITES = ("post", "patch", "delete")
CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


# ---------------------------------------------------------------- the owner's objects


@pytest.fixture
def world(make_user, settings, tmp_path, monkeypatch):
    """Users, the owner's objects, and a client per visitor. No task is ever sent."""
    monkeypatch.setattr("emotions.services.jobs._dispatch", lambda *args: None)
    settings.MEDIA_ROOT = tmp_path / "media"
    owner = make_user("owner")
    other = make_user("other")
    staff = make_user("staff", is_staff=True, is_superuser=True)
    done = {"state": Job.State.SUCCEEDED, "params": {"note": SECRET}}
    job = Job.objects.create(owner=owner, kind=Job.Kind.DIAGNOSTIC, **done)
    model = EmotionModel(
        owner=owner, name=SECRET, backbone="mobilenet_v3_small", labels=["calm", "angry"],
        visibility=Visibility.PRIVATE,
    )  # fmt: skip
    model.weights.save("w.pt", ContentFile(b"weights"), save=False)
    model.save()
    shared_model = EmotionModel.objects.create(
        owner=owner, name="shared model", backbone="mobilenet_v3_small", labels=["calm"]
    )
    lecture = Lecture(owner=owner, title=SECRET, model=model)
    lecture.job = Job.objects.create(owner=owner, kind=Job.Kind.ANALYSIS, **done)
    lecture.audio.save("talk.wav", ContentFile(make.valid_wav(1.0)))
    import_job = Job.objects.create(owner=owner, kind=Job.Kind.IMPORT, **done)
    dataset = Dataset.objects.create(owner=owner, name=SECRET, import_job=import_job)
    utterance = Utterance(dataset=dataset, label="calm", source_path=f"calm/{SECRET}.wav")
    utterance.audio.save("u.wav", ContentFile(make.valid_wav(1.0)))
    upload = SimpleUploadedFile("hum.wav", make.valid_wav(1.0))
    profile = noise.create_noise_profile(owner, upload, name=SECRET)
    scores = {"accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5, "uar": 0.5}
    clean = {**scores, "labels": ["calm", "angry"], "confusion_matrix": [[1, 1], [1, 1]], "n": 4}
    columns = list(PREDICTION_COLUMNS)
    predicted = ["clean", None, utterance.pk, SECRET, "", 0, "", "calm", "calm", 0.9, 0.1]
    run = TrainingRun.objects.create(
        owner=owner, name=SECRET, dataset=dataset, model=model, snrs=[15.0],
        metrics={"clean": clean},
        predictions={"labels": ["calm", "angry"], "columns": columns, "rows": [predicted]},
        job=Job.objects.create(owner=owner, kind=Job.Kind.TRAINING, **done),
    )  # fmt: skip
    clients = {"anonymous": Client()}
    for user in (owner, other, staff):
        clients[user.username] = Client()
        clients[user.username].force_login(user)
    objects = {
        "job": job, "lecture": lecture, "dataset": dataset, "utterance": utterance,
        "import": import_job, "noise": profile, "run": run, "model": model,
        "shared_model": shared_model, "owner": owner,
    }  # fmt: skip
    return objects, clients


def snapshot(objects: dict) -> dict:
    """What must not change while others try their hand: every field of every object."""
    from django.forms.models import model_to_dict

    rows = {}
    for key, obj in objects.items():
        fresh = type(obj).objects.filter(pk=obj.pk).first()
        rows[key] = None if fresh is None else model_to_dict(fresh)
    return rows


# ---------------------------------------------------------------- the URL patterns


def url_patterns() -> list[list[str]]:
    """The route of every leaf of the URL conf, as the list of its parts."""

    def walk(patterns, parts):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, [*parts, str(p.pattern)])
            else:
                yield [*parts, str(p.pattern)]

    return list(walk(get_resolver().url_patterns, []))


def object_for(name: str, path: str, objects: dict):
    """The owner's object (or value) a URL parameter names; KeyError for one not known."""
    segments = path.strip("/").split("/")
    if name == "pk" and segments[0] == "api":
        by_route = {
            "jobs": "job", "lectures": "lecture", "datasets": "dataset", "utterances":
            "utterance", "imports": "import", "noise": "noise", "training-runs": "run",
            "models": "model",
        }  # fmt: skip
        return objects[by_route[segments[1]]].pk
    if name == "object_id" and segments[0] == "admin":
        by_model = {
            "job": "job", "dataset": "dataset", "utterance": "utterance",
            "noiseprofile": "noise", "user": "owner",
        }  # fmt: skip
        key = by_model.get(segments[2])
        return objects[key].pk if key else 1
    fixed = {
        "job_id": objects["job"].pk, "lecture_id": objects["lecture"].pk,
        "dataset_id": objects["dataset"].pk, "profile_id": objects["noise"].pk,
        "run_id": objects["run"].pk, "model_id": objects["model"].pk,
        "id": objects["owner"].pk, "content_type_id": 1, "app_label": "emotions",
        "url": "nowhere/", "uidb64": "MQ", "token": "not-a-token",
    }  # fmt: skip
    return fixed[name]


def concrete_urls(objects: dict) -> list[tuple[str, bool]]:
    """(path, names one of the owner's objects) for every pattern; fails on a parameter
    the matrix does not know, so a new kind of URL cannot slip through untested."""
    urls, unknown = [], []
    for parts in url_patterns():
        route = "/" + "".join(p.removeprefix("^").removesuffix("$") for p in parts)
        # Regex groups first: "(?P<pk>...)" holds what looks like a converter, "<pk>".
        names = REGEX_GROUP.findall(route) + CONVERTER.findall(REGEX_GROUP.sub("", route))
        if "format" in names:  # DRF's ".json" twins: the same views, the same checks
            continue
        try:
            values = {n: str(object_for(n, route, objects)) for n in names}
        except KeyError as exc:
            unknown.append(f"{route} ({exc})")
            continue
        path = REGEX_GROUP.sub(lambda m, v=values: v[m[1]], route)
        path = CONVERTER.sub(lambda m, v=values: v[m[1]], path)
        urls.append((path, bool(set(names) - {"app_label", "url"})))
    assert not unknown, f"add these URL parameters to the matrix: {unknown}"
    return sorted(set(urls))


def kind_of(path: str) -> str:
    if path in PUBLIC or path.startswith("/static/"):
        return "public"
    return "admin" if path.startswith("/admin/") else "api" if path.startswith("/api/") else "page"


def body_of(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def send(client: Client, method: str, path: str):
    if method == "get":
        return client.get(path)
    return getattr(client, method)(path, data="{}", content_type="application/json")


# ---------------------------------------------------------------- the matrix


def refusal_problem(kind: str, actor: str, method: str, path: str, has_object: bool, answer):
    """Why this answer to a visitor who is not the owner is wrong (None: it is right)."""
    status, where = answer.status_code, answer.get("Location", "")
    if kind == "public":  # /healthz answers 503 while no worker runs: by design
        return f"{status}" if status == 500 else None
    if status >= 500:
        return f"{status}"
    if kind == "admin":
        if actor == "staff":
            return "staff kept out of the admin" if "/admin/login/" in where else None
        return None if status == 302 and "/admin/login/" in where else f"{status} {where}"
    if actor == "anonymous":
        if kind == "api":
            return None if status in (401, 403) else f"{status}"
        return None if status == 302 and where.startswith("/accounts/login/") else f"{status}"
    if has_object:
        # 405 is decided before the object is looked up, so it tells nothing either.
        allowed = (404, 405) if method == "get" else (403, 404, 405)
        return None if status in allowed else f"{status} {where}"
    return None  # a list or form of their own: the SECRET check below decides


def test_every_url_refuses_everyone_but_the_owner(world):
    objects, clients = world
    before = snapshot(objects)
    urls = concrete_urls(objects)
    assert len(urls) > 60  # the walk found the URL conf
    problems, tried = [], 0
    for path, has_object in urls:
        kind = kind_of(path)
        for actor in ("anonymous", "other", "staff"):
            methods = ("get",) if kind == "admin" and actor == "staff" else ("get", *WRITES)
            if kind == "public":
                methods = ("get",)  # a POST to logout would end the session mid-matrix
            for method in methods:
                answer = send(clients[actor], method, path)
                tried += 1
                problem = refusal_problem(kind, actor, method, path, has_object, answer)
                if not (kind == "admin" and actor == "staff") and SECRET in body_of(answer):
                    problem = "shows the owner's data"
                if problem:
                    problems.append(f"{actor} {method.upper()} {path}: {problem}")
    assert problems == [], "\n".join(problems)
    # Nothing anyone else did changed anything of the owner's.
    assert snapshot(objects) == before

    # The owner reads every URL naming their objects (POST-only actions answer 405).
    for path, has_object in urls:
        if has_object and kind_of(path) in ("api", "page"):
            status = send(clients["owner"], "get", path).status_code
            tried += 1
            if status not in (200, 206, 405):
                problems.append(f"owner GET {path}: {status}")
    # Staff curate everything in the admin, the owner's private rows included.
    for key, model in (("dataset", "dataset"), ("noise", "noiseprofile"), ("job", "job")):
        page = clients["staff"].get(f"/admin/emotions/{model}/{objects[key].pk}/change/")
        assert page.status_code == 200, (key, page.status_code)
    assert problems == [], "\n".join(problems)
    print(f"\nauthorization matrix: {len(urls)} URLs, {tried} requests, all as intended")


def test_only_the_owner_updates_and_deletes(world):
    objects, clients = world
    owner, other, staff = clients["owner"], clients["other"], clients["staff"]

    def patch(client, path, data):
        return client.patch(path, data=json.dumps(data), content_type="application/json")

    model, shared = objects["model"].pk, objects["shared_model"].pk
    # Activating a model is staff's decision: not the owner's, not another user's.
    assert owner.post(f"/api/models/{model}/activate/").status_code == 403
    assert other.post(f"/api/models/{shared}/activate/").status_code == 403
    assert other.delete(f"/api/models/{shared}/").status_code == 403
    assert staff.post(f"/api/models/{shared}/activate/").status_code == 200
    assert EmotionModel.objects.get(pk=shared).is_active

    renames = [
        (f"/api/datasets/{objects['dataset'].pk}/", {"name": "renamed", "visibility": "shared"}),
        (f"/api/noise/{objects['noise'].pk}/", {"name": "renamed"}),
        (f"/api/utterances/{objects['utterance'].pk}/", {"label": "angry"}),
    ]
    for path, data in renames:
        assert patch(owner, path, data).status_code == 200, path
    # Shared now: another user sees the dataset, and still cannot change or delete it.
    dataset = objects["dataset"].pk
    assert other.get(f"/api/datasets/{dataset}/").status_code == 200
    assert patch(other, f"/api/datasets/{dataset}/", {"name": "mine"}).status_code == 403
    assert other.delete(f"/api/datasets/{dataset}/").status_code == 403
    assert Dataset.objects.get(pk=dataset).name == "renamed"

    for path in (
        f"/api/training-runs/{objects['run'].pk}/",  # first: it holds the dataset
        f"/api/lectures/{objects['lecture'].pk}/",  # before the model that analysed it
        f"/api/models/{model}/",
        f"/api/noise/{objects['noise'].pk}/",
        f"/api/datasets/{dataset}/",
        f"/api/jobs/{objects['job'].pk}/",
    ):
        assert owner.delete(path).status_code == 204, path
        assert owner.get(path).status_code == 404, path


def test_csrf_is_enforced_on_forms_and_the_api(world):
    objects, _ = world
    client = Client(enforce_csrf_checks=True)
    client.force_login(objects["owner"])
    dataset = objects["dataset"].pk
    # A forged form post (no token) neither deletes nor signs out.
    assert client.post(f"/datasets/{dataset}/delete/").status_code == 403
    assert client.post("/accounts/logout/").status_code == 403
    assert client.get("/lectures/").status_code == 200  # still signed in
    # The session-authenticated API wants the token too.
    assert client.delete(f"/api/lectures/{objects['lecture'].pk}/").status_code == 403
    assert Dataset.objects.filter(pk=dataset).exists()
    assert Lecture.objects.filter(pk=objects["lecture"].pk).exists()
    # With the token from the confirmation page, the same kind of form works.
    profile = objects["noise"].pk
    page = client.get(f"/noise/{profile}/delete/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    assert (
        client.post(f"/noise/{profile}/delete/", {"csrfmiddlewaretoken": token}).status_code == 302
    )
    assert not NoiseProfile.objects.filter(pk=profile).exists()
    assert client.post("/accounts/logout/", {"csrfmiddlewaretoken": token}).status_code == 302


# ---------------------------------------------------------------- WebSockets (live)


@pytest.mark.live
def test_websockets_carry_a_job_to_its_owner_only(site, make_user):
    owner_user = make_user("owner")
    make_user("other")
    make_user("staff", is_staff=True, is_superuser=True)
    owner, other, staff = (login(site.url, name) for name in ("owner", "other", "staff"))

    with ws_connect(site.url, None, "/ws/jobs/") as ws, pytest.raises(ConnectionClosed) as closed:
        receive(ws, timeout=10)
    assert closed.value.rcvd.code == 4401
    # A page on another site cannot open the owner's socket with the owner's cookie.
    cookie = "; ".join(f"{k}={v}" for k, v in owner.cookies.items())
    with pytest.raises(InvalidStatus) as refused:
        from websockets.sync.client import connect

        connect(
            "ws" + site.url.removeprefix("http") + "/ws/jobs/",
            additional_headers={"Origin": "https://evil.example", "Cookie": cookie},
        )
    assert refused.value.response.status_code == 403

    with (
        ws_connect(site.url, owner, "/ws/jobs/") as mine,
        ws_connect(site.url, other, "/ws/jobs/") as theirs,
        ws_connect(site.url, staff, "/ws/jobs/") as staffs,
    ):
        answer = owner.post(f"{site.url}/api/jobs/", json={"steps": 3, "delay": 0.1}, timeout=10)
        job_id = answer.json()["id"]
        deadline, states = time.monotonic() + 60, []
        while "succeeded" not in states:
            assert time.monotonic() < deadline, states
            message = receive(mine, timeout=deadline - time.monotonic())
            states.append(message["job"]["state"])
        for ws in (theirs, staffs):  # the whole run went by: nothing reached the others
            with pytest.raises(TimeoutError):
                receive(ws, timeout=0.5)
        for ws in (theirs, staffs):
            ws.send(json.dumps({"action": "subscribe", "job": job_id}))
            assert receive(ws) == {"type": "error", "job": job_id, "error": "Job not found."}
    for session in (other, staff):
        with (
            pytest.raises(ConnectionClosed) as closed,
            ws_connect(site.url, session, f"/ws/jobs/{job_id}/") as ws,
        ):
            receive(ws, timeout=10)
        assert closed.value.rcvd.code == 4403
    with ws_connect(site.url, owner, f"/ws/jobs/{job_id}/") as ws:
        snapshot_message = receive(ws)
    assert snapshot_message["type"] == "snapshot"
    assert snapshot_message["job"]["state"] == "succeeded"
    assert Job.objects.get(pk=job_id).owner_id == owner_user.pk
    assert requests.get(f"{site.url}/api/jobs/{job_id}/", timeout=10).status_code == 403
