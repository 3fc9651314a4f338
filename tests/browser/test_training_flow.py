"""The researcher's path in a real browser: add noise recordings on the Noise page, train
small runs through the Train page's own form, watch the epoch curves grow live, cancel a
run from its page, compare two runs and see the models; and every page, empty and full,
has labelled controls, marks its place in the navigation and logs no console error."""

import re
import time

import numpy as np
import pytest
import soundfile as sf

from emotions.models import EmotionModel, Job, Lecture, TrainingRun, Utterance
from emotions.ser.audio import count_blocks
from tests.browser.conftest import assert_labelled, current_nav, screenshot
from tests.services.test_training import SR, make_dataset, voiced

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

# Small enough for two shared CPU cores: the default network (MobileNetV2 from its packaged
# ImageNet weights, which learns fast), 64 × 64 images, a few epochs, a high learning rate.
SMALL = {"Learning rate": "0.01", "Batch size": "16"}
EPOCHS = 3
CLEAN, MIXUP = "Train on clean speech only", "Train with clean + noise mix-up"


def _dataset(user):
    """The tiny two-emotion dataset, with the block counts an import records."""
    dataset = make_dataset(user)
    for utterance in Utterance.objects.filter(dataset=dataset):
        utterance.n_blocks = count_blocks(round(utterance.duration_s * SR))
        utterance.save(update_fields=["n_blocks"])
    return dataset


def _noise_files(tmp_path) -> list[tuple[str, str, object]]:
    """(environment, name, WAV path) of three generated noise recordings, 3 s each."""
    rng = np.random.default_rng(42)
    t = np.arange(3 * SR) / SR
    kinds = [
        ("cafe", "Café babble", sum(voiced(3.0, f, k) for k, f in enumerate((110, 170, 230)))),
        ("fan", "Desk fan", np.sin(2 * np.pi * 50 * t) + 0.3 * rng.standard_normal(t.size)),
        ("street", "Street rumble", np.cumsum(rng.standard_normal(t.size))),
    ]
    files = []
    for environment, name, x in kinds:
        x = 0.3 * (x - x.mean()) / np.abs(x - x.mean()).max()
        path = tmp_path / f"{name.lower().replace(' ', '-')}.wav"
        sf.write(path, x.astype("float32"), SR, subtype="PCM_16")
        files.append((environment, name, path))
    return files


def _add_noises(page, tmp_path) -> None:
    """Upload the noise recordings on the Noise page, one by one, each with its environment."""
    page.goto("/noise/")
    for environment, name, path in _noise_files(tmp_path):
        page.get_by_label("Noise recordings").set_input_files(str(path))
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Environment").select_option(environment)
        page.get_by_role("button", name="Upload", exact=True).click()
        page.locator("#noise-uploads li", has_text=path.name).get_by_text("added:").wait_for()
    # Each arrived with its spectrogram and a player, and the list below shows them all.
    assert page.locator("#noise-uploads img").count() == 3
    page.wait_for_function(
        "[...document.querySelectorAll('#noise-uploads img')].every((i) => i.naturalWidth > 0)"
    )
    page.locator("#available-noise table.noise tbody tr").nth(2).wait_for()
    assert_labelled(page)
    screenshot(page, "noise-uploaded")


def _seminar() -> np.ndarray:
    """A recording in the dataset's two voices: calm and angry stretches, pauses between."""
    pause = np.zeros(2 * SR, dtype="float32")
    stretches = [(8.0, 120.0), (8.0, 320.0), (6.0, 125.0), (6.0, 330.0)]
    parts = []
    for i, (seconds, f0) in enumerate(stretches):
        parts += [voiced(seconds, f0, 100 + i), pause]
    return np.concatenate(parts)


def _scroll_to(page, heading: str) -> None:
    """Bring a section's heading to the top of the viewport (for the README's screenshots)."""
    page.get_by_role("heading", name=heading).evaluate("(h) => h.scrollIntoView()")


def _start_run(
    page, dataset, button: str, *, epochs: int = EPOCHS, name: str = "", image_size: int = 64
) -> int:
    """Fill the Train form as a researcher does and start a run; returns the run's id."""
    page.goto("/train/")
    page.get_by_label("Dataset", exact=True).select_option(str(dataset.pk))
    # One list of noises: the page splits it into training and test noises, and shows how.
    options = page.locator("#id_train_noises option")
    values = [options.nth(i).get_attribute("value") for i in range(options.count())]
    page.get_by_label("Noises mixed into training").select_option(values)
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Epochs").fill(str(epochs))
    for label, value in SMALL.items():
        page.get_by_label(label).fill(value)
    page.get_by_label("Image size (pixels)").fill(str(image_size))
    if name:
        page.get_by_label("Model name (optional)").fill(name)
    page.get_by_role("button", name=button).click()
    # One list is never split silently: the page shows the split in the two lists first,
    # and the second press starts the run.
    page.get_by_text("Your noises were split into training and test noises").wait_for()
    assert page.locator("#id_test_noises option:checked").count() >= 1
    page.get_by_role("button", name=button).click()
    page.wait_for_url("**/train/runs/*/")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def _sample(page, samples: list) -> None:
    """From inside the run page, at each change of the epoch table and every 100 ms: the
    table's rows, the points the curve shows, the nav's jobs indicator, and which page load
    this is (a reload starts another)."""
    page.expose_function("recordSample", lambda sample: samples.append(sample))
    page.evaluate(
        """() => {
          const record = () => window.recordSample({
            rows: document.querySelectorAll('#history-table tbody tr').length,
            points: Number(document.getElementById('loss-curve').dataset.points || 0),
            badge: document.getElementById('jobs-indicator').textContent,
            load: performance.timeOrigin,
          });
          new MutationObserver(record)
            .observe(document.querySelector('#history-table tbody'), {childList: true});
          setInterval(record, 100);
        }"""
    )


def _state(page) -> str:
    return page.locator("[data-live-job] [data-field=state]").inner_text()


def test_train_watch_cancel_compare(page_for, make_user, celery_worker, tmp_path):
    user = make_user("researcher")
    dataset = _dataset(user)
    page = page_for("researcher")
    _add_noises(page, tmp_path)

    # ---- a clean run, watched live: the curve grows epoch by epoch without a reload
    page.goto("/train/")
    assert current_nav(page) == [("Train", "page")]
    assert_labelled(page)
    clean_id = _start_run(page, dataset, CLEAN, name="pitch clean")
    assert current_nav(page) == [("Train", "true")]
    samples: list[dict] = []
    _sample(page, samples)
    first_load = page.evaluate("performance.timeOrigin")
    # The run succeeds; the page then reloads once to show the server-drawn results.
    page.locator("table.results").first.wait_for(timeout=240_000)
    assert _state(page) == "Succeeded"
    # The classical baselines stand beside the network, with a sentence saying who wins.
    assert page.locator("#baselines tbody tr").count() == 4
    assert page.locator("#baselines-summary").inner_text().startswith("The network")
    before = [s for s in samples if s["load"] == first_load]
    rows = [s["rows"] for s in before]
    assert rows and rows[-1] == EPOCHS, rows
    assert any(0 < n < EPOCHS for n in rows), f"the curve did not grow epoch by epoch: {rows}"
    assert all(s["points"] == s["rows"] for s in before), before[-5:]
    assert any(s["badge"] == "1 running" for s in before), {s["badge"] for s in before}
    page.wait_for_function(
        f"document.querySelectorAll('#history-table tbody tr').length === {EPOCHS}"
    )
    page.get_by_text("Curves as a table").click()
    assert page.locator("#accuracy-curve").get_attribute("data-points") == str(EPOCHS)
    _scroll_to(page, "Training curves")
    # One matrix per test set: clean, and noisy at each of the default SNRs (15, 20, 40 dB).
    assert page.locator("table.confusion").count() == 4
    screenshot(page, "training-run")
    screenshot(page, "readme-run", full_page=False)
    assert_labelled(page)

    # ---- a mix-up run on the same split, for the comparison
    # Lecture analysis makes 256 × 256 images whatever the model was trained on, so this
    # one, which analyses a recording below, is trained at that size.
    started = time.monotonic()
    mixup_id = _start_run(page, dataset, MIXUP, name="pitch mix-up", image_size=256)
    page.locator("table.results").first.wait_for(timeout=240_000)
    print(f"mix-up run at 256 px: {time.monotonic() - started:.1f} s")
    assert _state(page) == "Succeeded"

    # ---- a long run, cancelled from its page once it trains
    cancel_id = _start_run(page, dataset, MIXUP, epochs=500)
    navigations = page.evaluate("performance.timeOrigin")
    page.wait_for_function(
        "document.querySelectorAll('#history-table tbody tr').length >= 1", timeout=240_000
    )
    assert page.locator("#jobs-indicator").inner_text() == "1 running"
    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Cancel training").click()
    page.wait_for_function(
        "document.querySelector('[data-live-job] [data-field=state]').textContent === 'Cancelled'",
        timeout=180_000,  # the worker stops at its next batch; a loaded CI machine is slow
    )
    assert dialogs and "Stop this job?" in dialogs[0]
    # The nav's indicator and the page followed live: no reload.
    page.wait_for_function("document.getElementById('jobs-indicator').textContent === ''")
    assert page.evaluate("performance.timeOrigin") == navigations
    assert page.get_by_role("button", name="Cancel training").count() == 0
    assert "cancelled before it finished" in page.locator("#results-empty").inner_text()
    page.reload()
    assert _state(page) == "Cancelled"
    assert "cancelled before it finished" in page.locator("#results-empty").inner_text()
    screenshot(page, "training-run-cancelled")

    runs = {r.pk: r for r in TrainingRun.objects.select_related("job")}
    assert {pk: r.job.state for pk, r in runs.items()} == {
        clean_id: Job.State.SUCCEEDED,
        mixup_id: Job.State.SUCCEEDED,
        cancel_id: Job.State.CANCELLED,
    }
    assert EmotionModel.objects.count() == 2
    assert runs[clean_id].config["image_size"] == 64 and runs[clean_id].config["epochs"] == EPOCHS
    assert runs[clean_id].config["lr"] == 0.01 and runs[clean_id].config["batch_size"] == 16

    # ---- the final states on the Train page and in the jobs list
    page.goto("/train/")
    states = {
        int(re.match(r"#(\d+)", row.locator("td").first.inner_text()).group(1)): row.locator(
            "[data-field=state]"
        ).inner_text()
        for row in page.locator("table.runs tbody tr").all()
    }
    assert states == {clean_id: "Succeeded", mixup_id: "Succeeded", cancel_id: "Cancelled"}
    screenshot(page, "train")
    page.get_by_text("Advanced settings").click()
    screenshot(page, "readme-train", full_page=False)
    page.goto("/jobs/")
    assert current_nav(page) == [("Jobs", "page")]
    job_states = {
        pk: page.locator(f'tr[data-job="{run.job_id}"] [data-field=state]').inner_text()
        for pk, run in runs.items()
    }
    assert job_states == {clean_id: "Succeeded", mixup_id: "Succeeded", cancel_id: "Cancelled"}
    assert_labelled(page)
    screenshot(page, "jobs")
    page.get_by_role("link", name=f"#{runs[cancel_id].job_id}", exact=True).click()
    assert current_nav(page) == [("Jobs", "true")]
    assert _state(page) == "Cancelled"
    assert_labelled(page)

    # ---- the comparison picks the clean and the mix-up run by itself
    page.goto("/train/compare/")
    assert page.locator("table.compare tbody tr").count() >= 2
    assert page.get_by_label("Run A (e.g. clean only)").input_value() == str(clean_id)
    assert page.get_by_label("Run B (e.g. clean + noise mix-up)").input_value() == str(mixup_id)
    assert_labelled(page)
    screenshot(page, "training-compare")

    # ---- the models, and the pages of the data they were trained on
    page.goto("/models/")
    assert current_nav(page) == [("Models", "page")]
    assert page.locator("table.models tbody tr").count() == 2
    assert_labelled(page)
    screenshot(page, "models")
    screenshot(page, "readme-models", full_page=False)
    page.goto("/datasets/")
    assert current_nav(page) == [("Datasets", "page")]
    assert_labelled(page)
    screenshot(page, "datasets")
    page.get_by_role("link", name=dataset.name).click()
    assert current_nav(page) == [("Datasets", "true")]
    assert page.locator("table.class-counts tbody tr").count() == 2
    assert_labelled(page)
    screenshot(page, "dataset-detail")
    screenshot(page, "readme-dataset", full_page=False)
    page.goto("/noise/")
    assert current_nav(page) == [("Noise", "page")]
    assert page.locator("table.noise tbody tr").count() == 3
    assert_labelled(page)
    screenshot(page, "noise")
    page.get_by_role("link", name="Desk fan").click()
    assert current_nav(page) == [("Noise", "true")]
    page.wait_for_function("document.querySelector('main img').naturalWidth > 0")
    assert_labelled(page)
    screenshot(page, "noise-detail")
    page.get_by_role("link", name="Delete this noise recording…").click()
    assert current_nav(page) == [("Noise", "true")]
    assert_labelled(page)
    page.get_by_role("link", name="Keep it").click()
    page.get_by_role("heading", name="Desk fan").wait_for()

    # ---- the new model analyses a recording, as a teacher would use it
    model = EmotionModel.objects.get(name="pitch mix-up")
    path = tmp_path / "seminar.wav"
    sf.write(path, _seminar(), SR, subtype="PCM_16")
    page.goto("/lectures/")
    page.get_by_label("Recordings").set_input_files(str(path))
    page.get_by_label("Title", exact=True).fill("Seminar on acoustics")
    page.get_by_label("Course", exact=True).fill("Physics 101")
    page.get_by_label("Model", exact=True).select_option(str(model.pk))
    page.get_by_role("button", name="Upload and analyse").click()
    page.wait_for_url("**/lectures/*/")
    page.wait_for_selector("[data-live-job] .state-succeeded", timeout=120_000)
    total = Lecture.objects.get().segments.count()
    page.wait_for_selector(f'#report[data-segments="{total}"]')
    assert page.locator("#legend li").count() == len(model.labels) + 2  # silence, no speech
    # The model tells the calm stretches from the angry ones, as on its test speakers.
    heard = Lecture.objects.get().segments.filter(is_silence=False)
    assert set(heard.values_list("label", flat=True)) == {"angry", "calm"}
    assert_labelled(page)
    _scroll_to(page, "Model")
    screenshot(page, "readme-lecture", full_page=False)
    page.goto("/lectures/")
    assert page.locator("table.lectures tbody tr").count() == 1
    assert_labelled(page)
    screenshot(page, "readme-lectures", full_page=False)


# Every page of a new user: (path, nav entry marked current, text of its empty state).
EMPTY_PAGES = [
    ("/", [], "Nothing has run yet"),
    ("/lectures/", [("Lectures", "page")], "No trained model is available yet"),
    ("/train/", [("Train", "page")], "You have no labelled speech yet"),
    ("/train/compare/", [("Train", "true")], "No finished training runs yet"),
    ("/models/", [("Models", "page")], "No models yet"),
    ("/datasets/", [("Datasets", "page")], "No datasets yet"),
    ("/noise/", [("Noise", "page")], "No noise recordings yet"),
    ("/jobs/", [("Jobs", "page")], "You have no jobs yet"),
]


def test_every_page_of_a_new_user(page_for, new_context, make_user, console_errors):
    make_user("newcomer")
    page = page_for("newcomer")
    for path, nav, empty in EMPTY_PAGES:
        answer = page.goto(path)
        assert answer.status == 200, path
        assert current_nav(page) == nav, path
        assert page.get_by_text(empty).first.is_visible(), path
        assert_labelled(page)
        # Every link of an empty state leads to a page that exists.
        for link in page.locator("main .empty a, main .notice a").all():
            href = link.get_attribute("href")
            assert page.request.get(href).status == 200, (path, href)
        screenshot(page, "empty-" + (path.strip("/").replace("/", "-") or "home"))

    # A page that does not exist (or is someone else's) says so, with the site around it.
    console_errors.allow(r"status of 404")
    assert page.goto("/train/runs/999999/").status == 404
    assert page.get_by_role("heading", name="Page not found").is_visible()
    assert current_nav(page) == [("Train", "true")]
    screenshot(page, "not-found")

    # Signed out: the sign-in page, labelled; a wrong password is said plainly.
    anonymous = new_context().new_page()
    anonymous.goto("/train/")
    assert "/accounts/login/" in anonymous.url
    assert_labelled(anonymous)
    anonymous.get_by_label("User name").fill("newcomer")
    anonymous.get_by_label("Password").fill("not the password")
    anonymous.get_by_role("button", name="Sign in").click()
    anonymous.get_by_role("alert").wait_for()
    assert "do not match" in anonymous.get_by_role("alert").inner_text()
    # The user name stays filled in; only the password is asked again.
    assert anonymous.get_by_label("User name").input_value() == "newcomer"
    screenshot(anonymous, "login")
