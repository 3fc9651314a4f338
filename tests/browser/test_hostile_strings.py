"""Nothing a user types runs in another user's browser.

User A ("mallory") fills every field a user controls with a hostile string: a dataset
imported from a CSV manifest through the real API and worker (labels, speakers, genders,
file names, name, notes), a noise recording (name, file name), a shared model whose
labels are hostile (saved as a training run would), a training run (name, test speakers,
curves, confusion matrix), a job whose message and error echo hostile text, and a
lecture (title, course, file name) analysed with that model. User B ("bob") uploads a
lecture analysed with A's shared model, so A's labels reach B's report.

Then A, B and staff walk every page the resolver knows (filled in with these objects;
A also walks the browsable API's pages, staff the admin, where everything is shown). On
every page: no script ran (window.__pwned unset, no dialog opened), no element carries
an inline handler, no inline script or javascript: link was made from data, and the
browser reported no Content-Security-Policy violation (the page fixtures fail on one).
The hostile strings are shown as text where the pages show those fields.
"""

import csv
import io
import re
import zipfile

import pytest
from playwright.sync_api import Error as PlaywrightError

from emotions.models import EmotionModel, Job, TrainingRun, Visibility
from tests.hardening import inputs as make
from tests.hardening.test_authorization import url_patterns
from tests.live import TERMINAL, wait_for_state

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

IMG = "<img src=x onerror=window.__pwned=1>"
SVG = '"><svg onload=window.__pwned=1>'
SCRIPT = "</script><script>window.__pwned=1</script>"
ALERT = "'><img src=x onerror=alert(1)>"
JS_URL = "javascript:window.__pwned=1"
# Four classes, as the tiny network has: the labels of the shared model and the dataset.
LABELS = [IMG, SVG, SCRIPT, ALERT]
HOSTILE = [IMG, SVG, SCRIPT, ALERT, JS_URL]

# After each page has loaded: what a successful injection would have left behind.
INJECTED_JS = """() => {
  const handlers = [...document.querySelectorAll('*')].flatMap((el) =>
    [...el.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${el.tagName} ${a.name}`));
  const scripts = [...document.scripts].filter((s) => !s.src && (!s.type || /javascript|module/
    .test(s.type))).map((s) => s.textContent.slice(0, 80));
  const links = [...document.querySelectorAll('[href], [src], [action], [formaction]')]
    .map((el) => el.getAttribute('href') || el.getAttribute('src') || el.getAttribute('action')
      || el.getAttribute('formaction'))
    .filter((u) => /^\\s*javascript:/i.test(u || ''));
  return {pwned: window.__pwned === undefined ? null : String(window.__pwned),
          handlers, scripts, links};
}"""
# Parts of a URL pattern the walk fills in; anything else is left out (and listed).
CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
# Not pages: logging out would end the walk, media and downloads are not HTML.
SKIP = re.compile(r"logout|/audio$|\.png$|\.pdf$|\.json$|/csv/$|/jsi18n/|/autocomplete/|^/admin/r/")


def _manifest_zip() -> bytes:
    """A manifest corpus: every label, speaker, gender and one file name hostile."""
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["path", "label", "speaker", "group", "gender"])
    files = {}
    for i, label in enumerate(LABELS):
        name = f"{SVG}.wav" if i == 0 else f"clip{i}.wav"
        writer.writerow([name, label, HOSTILE[(i + 1) % len(HOSTILE)], IMG, SCRIPT])
        files[name] = make.valid_wav(1.2)
    files["manifest.csv"] = rows.getvalue().encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _hostile_model(owner, tmp_path) -> EmotionModel:
    """A shared, active model whose labels are the hostile strings (a real tiny network)."""
    from django.core.files import File

    from emotions.ser import networks

    path = tmp_path / "hostile.pt"
    net = networks.build_network("mobilenet_v3_small", len(LABELS), pretrained=False, seed=1)
    networks.save_checkpoint(net, path, {"labels": LABELS})
    model = EmotionModel(
        owner=owner, name=SVG, backbone="mobilenet_v3_small", labels=LABELS, provenance=IMG,
        pretrained=False, is_active=True, visibility=Visibility.SHARED,
        metrics={"clean": {"f1_weighted": 0.5, "accuracy": 0.5}},
    )  # fmt: skip
    with open(path, "rb") as fh:
        model.weights.save("hostile.pt", File(fh), save=False)
    model.save()
    return model


def _upload_lecture(http, url: str, model_id: int, title: str, filename: str) -> dict:
    answer = http.post(
        f"{url}/api/lectures/",
        files={"file": (filename, make.valid_wav(3.0), "audio/wav")},
        data={"title": title, "course": IMG, "model": model_id},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


@pytest.fixture
def hostile_model(make_user, tmp_path) -> EmotionModel:
    return _hostile_model(make_user("mallory"), tmp_path)


@pytest.fixture
def world(hostile_model, make_user, login_as, live_url, celery_worker):
    """A's hostile objects (through the API and the worker where users make them)."""
    mallory = hostile_model.owner
    model = hostile_model
    make_user("bob")
    make_user("root", is_staff=True, is_superuser=True)
    a, b = login_as("mallory"), login_as("bob")
    fields = {"layout": "manifest", "name": SCRIPT, "description": IMG, "visibility": "shared"}
    answer = a.post(
        f"{live_url}/api/datasets/",
        files={"file": (f"{IMG}.zip", _manifest_zip(), "application/zip")},
        data=fields,
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    dataset = answer.json()
    noise = a.post(
        f"{live_url}/api/noise/",
        files={"file": (f"{SVG}.wav", make.valid_wav(2.0), "audio/wav")},
        data={"name": ALERT, "visibility": "shared"},
        timeout=60,
    )
    assert noise.status_code == 201, noise.text
    mine = _upload_lecture(a, live_url, model.pk, SVG, f"{IMG}.wav")
    theirs = _upload_lecture(b, live_url, model.pk, SCRIPT, f"{SVG}.wav")
    jobs = [dataset["import_job"]["id"], mine["job"]["id"], theirs["job"]["id"]]
    for http, job_id in zip((a, a, b), jobs, strict=True):
        state = wait_for_state(http, live_url, job_id, TERMINAL, timeout=120)["state"]
        assert state == "succeeded", f"job {job_id}: {state}"
    # What the worker would write on a failure that echoes user text, and a finished run.
    failed = Job.objects.create(
        owner=mallory, kind=Job.Kind.IMPORT, state=Job.State.FAILED, message=SVG, error=IMG
    )
    clean = {
        "accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5, "uar": 0.5,
        "labels": LABELS, "n": 16, "confusion_matrix": [[1, 1, 1, 1]] * 4,
    }  # fmt: skip
    run = TrainingRun.objects.create(
        owner=mallory, name=SCRIPT, dataset_id=dataset["id"], model=model, snrs=[15.0],
        config={"backbone": "mobilenet_v3_small", "epochs": 1}, metrics={"clean": clean},
        split={"test_speakers": [IMG, JS_URL], "fingerprint": "0" * 12},
        history=[{"epoch": 1, "fold": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.2,
                  "val_accuracy": 0.4, "seconds": 1.0}],
        job=Job.objects.create(
            owner=mallory, kind=Job.Kind.TRAINING, state=Job.State.SUCCEEDED, message=ALERT
        ),
    )  # fmt: skip
    run.train_noises.add(noise.json()["id"])
    return {
        "mallory": {
            "job_id": failed.pk,
            "lecture_id": mine["id"],
            "dataset_id": dataset["id"],
            "profile_id": noise.json()["id"],
            "run_id": run.pk,
            "model_id": model.pk,
        },
        "bob": {
            "job_id": theirs["job"]["id"],
            "lecture_id": theirs["id"],
            "dataset_id": dataset["id"],
            "profile_id": noise.json()["id"],
            "run_id": run.pk,
            "model_id": model.pk,
        },
        "admin": {
            "job": failed.pk,
            "dataset": dataset["id"],
            "noiseprofile": noise.json()["id"],
            "utterance": _first_utterance(dataset["id"]),
        },
        "api_pk": {
            "jobs": failed.pk,
            "lectures": mine["id"],
            "datasets": dataset["id"],
            "imports": dataset["import_job"]["id"],
            "noise": noise.json()["id"],
            "training-runs": run.pk,
            "models": model.pk,
            "utterances": _first_utterance(dataset["id"]),
        },
    }


def _first_utterance(dataset_id: int) -> int:
    from emotions.models import Utterance

    return Utterance.objects.filter(dataset_id=dataset_id).order_by("pk").first().pk


def pages_for(world: dict, who: str) -> list[str]:
    """Every GET route of the URL conf, filled in with what `who` may look at."""
    values = world["mallory" if who == "root" else who]
    paths = []
    for parts in url_patterns():
        route = "/" + "".join(p.removeprefix("^").removesuffix("$") for p in parts)
        names = REGEX_GROUP.findall(route) + CONVERTER.findall(REGEX_GROUP.sub("", route))
        if "format" in names or SKIP.search(route):
            continue
        area = route.strip("/").split("/")[0]
        if area == "admin" and who != "root":
            continue
        if area == "api" and who != "mallory":
            continue  # the API's own pages show the owner all of it: walked as A
        fill = {}
        for name in names:
            if name in values:
                fill[name] = values[name]
            elif name == "pk" and area == "api":
                fill[name] = world["api_pk"][route.strip("/").split("/")[1]]
            elif name == "object_id" and area == "admin":
                key = route.strip("/").split("/")[2]
                if key not in world["admin"]:
                    break
                fill[name] = world["admin"][key]
            elif name == "app_label":
                fill[name] = "emotions"
            else:
                break
        else:
            path = REGEX_GROUP.sub(lambda m, v=fill: str(v[m[1]]), route)
            paths.append(CONVERTER.sub(lambda m, v=fill: str(v[m[1]]), path))
    return sorted(set(paths))


def walk(first_page, live_url: str, paths: list[str]) -> dict[str, str]:
    """Open each path; the text of every HTML page, by path; fails on any sign of a script.

    Downloads (schema, CSV) and empty refusals (GET on a POST-only URL) are not pages: the
    browser gives up on them, and the walk goes on in a fresh tab of the same session.
    """
    texts = {}
    problems = []
    dialogs: list[str] = []

    def fresh(page):
        page.on("dialog", lambda d: (dialogs.append(f"{page.url}: {d.message}"), d.dismiss()))
        return page

    page = fresh(first_page)
    for path in paths:
        try:
            answer = page.goto(live_url + path, wait_until="load")
        except PlaywrightError as exc:
            if "Download is starting" not in str(exc) and "ERR_HTTP_RESPONSE" not in str(exc):
                raise
            page.close()
            page = fresh(first_page.context.new_page())
            continue
        if "text/html" not in (answer.headers.get("content-type") or ""):
            continue
        if path.startswith("/lectures/") and answer.ok and path.count("/") == 3:
            # The report draws its segments after fetching them: wait until it has.
            page.wait_for_function("document.querySelectorAll('#segments tbody tr').length > 0")
        found = page.evaluate(INJECTED_JS)
        bad = {k: v for k, v in found.items() if v}
        if bad:
            problems.append(f"{path}: {bad}")
        # All text, the folded-away parts (<details>) included; markup is not text.
        texts[path] = page.text_content("body")
    assert not dialogs, f"dialogs opened: {dialogs}"
    assert not problems, "\n".join(problems)
    return texts


def test_hostile_strings_stay_text_for_every_viewer(world, page_for, live_url, console_errors):
    # Refused pages (another user's object, a POST-only URL, a run without predictions)
    # log their status: expected.
    console_errors.allow(r"status of 40[3459]")
    seen = {}
    for who in ("bob", "mallory", "root"):
        page = page_for(who)
        seen[who] = walk(page, live_url, pages_for(world, who))
        assert len(seen[who]) > 15, sorted(seen[who])
        page.context.close()

    ids = world["bob"]
    bob = seen["bob"]
    # B sees A's shared dataset (name, labels, speakers), noise and model as text.
    assert SCRIPT in bob["/datasets/"] and IMG in bob["/datasets/"]
    detail = bob[f"/datasets/{ids['dataset_id']}/"]
    assert all(label in detail for label in LABELS) and JS_URL in detail
    assert ALERT in bob["/noise/"] and ALERT in bob[f"/noise/{ids['profile_id']}/"]
    assert SVG in bob["/models/"] and ALERT in bob["/models/"]
    # B's own report, analysed with A's model: A's labels, as text.
    report = bob[f"/lectures/{ids['lecture_id']}/"]
    assert SCRIPT in report and all(label in report for label in LABELS)
    mallory = seen["mallory"]
    assert SVG in mallory["/lectures/"]
    assert SVG in mallory[f"/jobs/{world['mallory']['job_id']}/"]
    run_page = mallory[f"/train/runs/{world['mallory']['run_id']}/"]
    assert SCRIPT in run_page and JS_URL in run_page and all(lab in run_page for lab in LABELS)
    # Staff reads it all in the admin, as text too.
    assert IMG in seen["root"][f"/admin/emotions/job/{world['mallory']['job_id']}/change/"]


def _assert_clean(page) -> None:
    found = page.evaluate(INJECTED_JS)
    assert not {k: v for k, v in found.items() if v}, f"{page.url}: {found}"


def test_upload_pages_show_hostile_file_names_as_text(
    hostile_model, make_user, page_for, celery_worker
):
    """The upload scripts draw what comes back (file names, names, job messages) as text."""
    from emotions.models import Lecture

    make_user("bob")
    page = page_for("bob")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.goto("/noise/")
    page.get_by_label("Noise recordings").set_input_files(
        {"name": f"{SVG}.wav", "mimeType": "audio/wav", "buffer": make.valid_wav(2.0)}
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_selector("#noise-uploads li .status:has-text('added:')", timeout=60_000)
    _assert_clean(page)
    assert f"{SVG}.wav" in page.text_content("#noise-uploads")

    page.goto("/datasets/")
    page.get_by_label("Corpus archive").set_input_files(
        {"name": f"{IMG}.zip", "mimeType": "application/zip", "buffer": _manifest_zip()}
    )
    page.get_by_role("button", name="Import", exact=True).click()
    page.wait_for_selector("#import-status .state-succeeded", timeout=90_000)
    _assert_clean(page)
    page.get_by_role("link", name="Open the dataset").click()
    page.wait_for_load_state()
    _assert_clean(page)
    assert all(label in page.text_content("body") for label in LABELS)

    page.goto("/lectures/")
    page.get_by_label("Recordings").set_input_files(
        {"name": f"{ALERT}.wav", "mimeType": "audio/wav", "buffer": make.valid_wav(3.0)}
    )
    page.get_by_label("Title", exact=True).fill(ALERT)
    page.get_by_role("button", name="Upload and analyse").click()
    page.wait_for_url("**/lectures/*/")
    lecture = Lecture.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert lecture.title == ALERT
    page.wait_for_selector("[data-live-job] .state-succeeded", timeout=90_000)
    _assert_clean(page)
    assert ALERT in page.text_content("h1")
    assert not dialogs
