"""The report at lecture length in Chromium: a 20-minute lecture's angry stretch found in
one click, keyboard and table navigation, a 10-second lecture, and the 3-hour timeline's
drawing time printed as a benchmark line (not asserted)."""

import statistics
import time
from pathlib import Path

import pytest

from tests.browser.conftest import assert_labelled, screenshot
from tests.lecture_factory import make_lecture

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
ANGRY = (708, 780)  # 11:48 to 13:00
DRAW_BUDGET_MS = 300.0


def _open_report(page, lecture, segments: int):
    page.goto(f"/lectures/{lecture.pk}/")
    page.wait_for_selector(f'#report[data-segments="{segments}"]', timeout=60_000)
    until(page, "document.querySelectorAll('#segments tbody tr').length > 0")


def until(page, js: str, timeout_s: float = 10.0) -> None:
    """Poll a JavaScript expression until it is true (page.wait_for_function evaluates its
    predicate with eval, which the site's CSP refuses)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(js):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {js}"
        page.wait_for_timeout(100)


def _time(page) -> float:
    return page.evaluate("document.getElementById('player').currentTime")


def test_angry_stretch_of_twenty_minutes_in_one_click(page_for, make_user, emotion_model):
    teacher = make_user("teacher")
    lecture = make_lecture(teacher, emotion_model, 1205, angry=ANGRY, silent_every=97)
    page = page_for("teacher")
    _open_report(page, lecture, 1205)

    # One click on the first anger moment: the recording plays from 11:48 and keeps playing.
    anger = page.locator("#moments li", has_text="anger").locator("button.moment").first
    assert anger.inner_text().startswith("0:11:4")
    anger.click()
    until(page, "!document.getElementById('player').paused", 10)
    assert ANGRY[0] - 3 <= _time(page) <= ANGRY[0] + 3
    until(page, f"document.getElementById('player').currentTime > {ANGRY[0] - 3 + 2.5}", 15)
    assert not page.evaluate("document.getElementById('player').paused")
    # The readout says what is under the cursor, as text.
    assert "anger" in page.locator("#readout").inner_text()
    # The detail view shows the moment; the per-minute band says anger for minute 12.
    view = page.evaluate("[window.sersiteReport.view.t0, window.sersiteReport.view.t1]")
    assert view[0] <= ANGRY[0] <= view[1]
    minute12 = page.evaluate("window.sersiteReport.data.per_minute[12].label")
    assert minute12 == "anger"
    assert_labelled(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "lecture-report.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.evaluate("window.sersiteReport.draw(); window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "lecture-report-390.png"))
    page.set_viewport_size({"width": 1280, "height": 800})
    screenshot(page, "report-20-minutes")

    # Printed, the report keeps its charts and lists and drops the controls.
    page.emulate_media(media="print")
    assert page.locator("#overview").is_visible() and page.locator("#moments").is_visible()
    assert not page.locator("#player").is_visible()
    assert not page.locator("#zoom-in").is_visible()
    assert not page.locator("nav[aria-label=Main]").is_visible()
    page.emulate_media(media="screen")


def test_keyboard_and_table_navigation(page_for, make_user, emotion_model):
    teacher = make_user("teacher")
    lecture = make_lecture(teacher, emotion_model, 1205, angry=ANGRY, silent_every=97)
    page = page_for("teacher")
    _open_report(page, lecture, 1205)
    timeline = page.locator("#timeline")
    timeline.focus()
    page.keyboard.press("PageUp")
    assert _time(page) == pytest.approx(60, abs=0.01)
    for _ in range(11):
        page.keyboard.press("PageUp")
    page.keyboard.press("ArrowLeft")
    assert _time(page) == pytest.approx(719, abs=0.01)
    assert "anger" in timeline.get_attribute("aria-valuetext")
    page.keyboard.press("End")
    assert _time(page) == pytest.approx(1204, abs=0.01)
    page.keyboard.press("Home")
    assert _time(page) == 0

    # The table is one Tab stop however many stretches it lists; Up/Down move inside it.
    tab_stops = page.evaluate(
        "[...document.querySelectorAll('#segments button')].filter((b) => b.tabIndex >= 0).length"
    )
    assert tab_stops == 1
    page.select_option("#filter", "anger")
    page.select_option("#sort", "length")
    first = page.locator("#segments tbody tr").first
    assert first.locator("button.play").inner_text().startswith("0:11:4")
    names = page.locator("#segments tbody td:nth-child(2)").all_inner_texts()
    assert names and all("anger" in t for t in names)
    page.select_option("#filter", "silence")
    assert "0:01:36" in page.locator("#segments tbody tr").first.inner_text()
    page.select_option("#filter", "")
    page.select_option("#sort", "time")
    page.locator("#segments button.play").first.focus()
    page.keyboard.press("ArrowDown")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == page.locator("#segments button.play").nth(1).inner_text()
    info = page.locator("#page-info").inner_text()
    assert info.startswith("1–20 of ")
    page.get_by_role("button", name="Next").click()
    assert page.locator("#page-info").inner_text().startswith("21–40 of ")

    # Smoothing comes from the server and changes the band and the curves together.
    runs_raw = page.evaluate("window.sersiteReport.data.runs.length")
    page.select_option("#smooth", "60")
    page.wait_for_selector('#report[data-window="60"]')
    assert page.evaluate("window.sersiteReport.data.runs.length") < runs_raw


def test_ten_second_lecture(page_for, make_user, emotion_model):
    teacher = make_user("teacher")
    lecture = make_lecture(teacher, emotion_model, 10, title="A short one")
    page = page_for("teacher")
    _open_report(page, lecture, 10)
    view = page.evaluate("[window.sersiteReport.view.t0, window.sersiteReport.view.t1]")
    assert view == [0, 10]
    page.locator("#segments button.play").first.click()
    until(page, "!document.getElementById('player').paused", 10)
    assert page.locator("#summary").inner_text().count("%") == 4
    assert (
        page.get_by_role("link", name="PDF report")
        .get_attribute("href")
        .endswith(f"/lectures/{lecture.pk}/report.pdf")
    )


def test_three_hour_timeline_draw_benchmark(page_for, make_user, emotion_model):
    """Prints the time to draw 10,800 segments (overview + detail showing all 3 h) and its
    ratio to the 300 ms budget; the lead reads the number, the test asserts the drawing."""
    teacher = make_user("teacher")
    seconds = 3 * 3600
    lecture = make_lecture(teacher, emotion_model, seconds, audio_seconds=5, silent_every=50)
    page = page_for("teacher")
    _open_report(page, lecture, seconds)
    timings = page.evaluate(
        """() => {
          const r = window.sersiteReport;
          r.setSpan(r.duration(), r.duration() / 2);
          const out = [];
          for (let i = 0; i < 7; i++) {
            const t = performance.now(); r.draw(); out.push(performance.now() - t);
          }
          return out;
        }"""
    )
    median = statistics.median(timings)
    print(
        f"\nBENCH report timeline, 3 h = {seconds} segments, whole lecture in overview and "
        f"detail: median {median:.1f} ms of 7 draws (min {min(timings):.1f}, max "
        f"{max(timings):.1f}); budget {DRAW_BUDGET_MS:.0f} ms; ratio {median / DRAW_BUDGET_MS:.3f}"
    )
    # The whole reload a smoothing change costs: the server's report, parsing, every list.
    loads = [
        page.evaluate(
            """async () => {
              const t = performance.now(); await window.sersiteReport.load();
              return performance.now() - t;
            }"""
        )
        for _ in range(3)
    ]
    print(
        f"BENCH report reload, 3 h (server report + parse + lists + draw): median "
        f"{statistics.median(loads):.0f} ms of 3 (no budget set; for reference)"
    )
    # The drawing is really there: the band's pixels at 1:30:00 are not blank.
    painted = page.evaluate(
        """() => {
          const c = document.getElementById('timeline');
          const px = c.getContext('2d').getImageData(Math.floor(c.width / 2), 10, 1, 1).data;
          return px[3] > 0 && !(px[0] === 255 && px[1] === 255 && px[2] === 255);
        }"""
    )
    assert painted
    assert page.locator("#page-info").inner_text().endswith("stretches")
