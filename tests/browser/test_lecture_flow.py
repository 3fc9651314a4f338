"""The teacher's path in a real browser: sign in, upload, watch the report fill in live,
play a segment, download the CSV; a second user sees none of it; a cut socket still
ends with the complete result."""

import csv
import io

import numpy as np
import pytest
import soundfile as sf

from emotions.models import Lecture
from tests.browser.conftest import assert_labelled, current_nav, screenshot
from tests.conftest import lecture_signal

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]


def _recording(tmp_path, repeats: int = 1):
    """`repeats` × (20 s sound, 5 s silence, 20 s sound) as a WAV file."""
    path = tmp_path / "week-3 lecture.wav"
    signal = np.concatenate([lecture_signal(20.0, 5.0, 20.0)] * repeats)
    sf.write(path, signal, 16_000, subtype="PCM_16")
    return path, len(signal) / 16_000


def _watch_rows(page):
    """Record the report's count of segments each time it changes, from inside the page."""
    page.evaluate(
        """() => {
          window.rowCounts = [];
          const report = document.getElementById('report');
          new MutationObserver(() => window.rowCounts.push(Number(report.dataset.segments)))
            .observe(report, {attributes: true, attributeFilter: ['data-segments']});
          window.progressValues = [];
          const bar = document.querySelector('[data-live-job] [data-field=progress]');
          setInterval(() => window.progressValues.push(bar.value), 100);
        }"""
    )


def _watch_badge(page):
    """Record the nav's jobs indicator every 100 ms, from inside the page."""
    page.evaluate(
        """() => {
          window.badgeTexts = [];
          const badge = document.getElementById('jobs-indicator');
          setInterval(() => window.badgeTexts.push(badge.textContent), 100);
        }"""
    )


def _upload(page, path):
    page.goto("/lectures/")
    page.get_by_label("Recordings").set_input_files(str(path))
    page.get_by_label("Title", exact=True).fill("Waves and optics")
    page.get_by_label("Course", exact=True).fill("Physics 101")
    page.get_by_role("button", name="Upload and analyse").click()
    page.wait_for_url("**/lectures/*/")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def test_upload_watch_play_download(page_for, make_user, celery_worker, emotion_model, tmp_path):
    make_user("teacher")
    page = page_for("teacher")
    screenshot(page, "home")
    path, seconds = _recording(tmp_path, repeats=3)
    lecture_id = _upload(page, path)
    _watch_rows(page)
    _watch_badge(page)
    navigations = page.evaluate("() => performance.getEntriesByType('navigation').length")
    page.wait_for_selector("[data-live-job] .state-succeeded", timeout=120_000)
    screenshot(page, "lecture-report")
    total = Lecture.objects.get(pk=lecture_id).segments.count()
    assert total == int(-(-seconds // 1))
    page.wait_for_selector(f'#report[data-segments="{total}"]')
    counts = page.evaluate("window.rowCounts")
    # Rows arrived in several steps while the job ran, without a reload.
    assert any(0 < c < total for c in counts), counts
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == navigations
    progress = page.evaluate("window.progressValues")
    assert progress[-1] == 1 and any(0 < v < 1 for v in progress), progress[:20]
    # The nav's jobs indicator counted the analysis while it ran and cleared itself, live.
    page.wait_for_function("document.getElementById('jobs-indicator').textContent === ''")
    assert "1 running" in page.evaluate("window.badgeTexts")
    assert current_nav(page) == [("Lectures", "true")]
    assert_labelled(page)

    # Play the first stretch: the media element really plays (and keeps playing).
    page.locator("#segments tbody tr button.play").first.click()
    page.wait_for_function("!document.getElementById('player').paused", timeout=10_000)
    page.wait_for_function("document.getElementById('player').currentTime > 0.3", timeout=10_000)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert len(rows) == total
    assert {r["label"] for r in rows if r["is_silence"] == "0"} <= set(emotion_model.labels)

    page.goto("/lectures/")
    assert current_nav(page) == [("Lectures", "page")]
    assert page.locator("table.lectures tbody tr").count() == 1
    assert_labelled(page)
    screenshot(page, "lectures")


def test_second_user_sees_nothing(
    page_for, make_user, celery_worker, emotion_model, tmp_path, console_errors
):
    make_user("teacher")
    make_user("other")
    page = page_for("teacher")
    lecture_id = _upload(page, _recording(tmp_path)[0])
    other = page_for("other")
    other.goto("/lectures/")
    assert "Waves and optics" not in other.content()
    assert other.get_by_text("No lectures yet").is_visible()
    console_errors.allow(r"status of 404")  # the page below, as the browser reports it
    answer = other.goto(f"/lectures/{lecture_id}/")
    assert answer.status == 404
    assert other.get_by_role("heading", name="Page not found").is_visible()
    other.goto("/jobs/")
    assert other.get_by_text("You have no jobs yet").is_visible()
    screenshot(other, "second-user-lectures")


def test_socket_cut_mid_job_still_ends_complete(
    page_for, make_user, celery_worker, emotion_model, tmp_path
):
    make_user("teacher")
    page = page_for("teacher")
    lecture_id = _upload(page, _recording(tmp_path, repeats=3)[0])
    # Cut the socket at once and keep it down for 4 s, so events are really missed.
    page.evaluate(
        """() => {
          const s = window.sersiteLive;
          const reconnect = s.connect.bind(s);
          s.connect = () => setTimeout(() => { s.connect = reconnect; reconnect(); }, 4000);
          s.ws.close();
        }"""
    )
    page.wait_for_selector("[data-live-job] .state-succeeded", timeout=120_000)
    total = Lecture.objects.get(pk=lecture_id).segments.count()
    page.wait_for_selector(f'#report[data-segments="{total}"]', timeout=30_000)
    screenshot(page, "lecture-after-reconnect")
