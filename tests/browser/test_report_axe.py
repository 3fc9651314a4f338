"""axe-core (from the axe-playwright-python wheel) on the teacher's pages at 1280 and
390 px: no serious or critical violation and no sideways scrolling on the lecture list,
the report, its rename and delete pages, the home page, the jobs list and the password page."""

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.lecture_factory import make_lecture

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

WIDTHS = ({"width": 1280, "height": 800}, {"width": 390, "height": 844})
BLOCKING = {"serious", "critical"}


def axe_problems(page) -> list[str]:
    """Serious and critical violations, one readable line per rule and element."""
    results = Axe().run(page)
    problems = []
    for violation in results.response["violations"]:
        if violation.get("impact") not in BLOCKING:
            continue
        for node in violation["nodes"]:
            problems.append(
                f"{violation['impact']} {violation['id']}: {violation['help']} at "
                f"{', '.join(map(str, node['target']))}"
            )
    return problems


def test_teacher_pages_have_no_serious_axe_violations(page_for, make_user, emotion_model):
    teacher = make_user("teacher")
    lecture = make_lecture(teacher, emotion_model, 300, angry=(100, 160), silent_every=40)
    page = page_for("teacher")
    pages = [
        "/",
        "/lectures/",
        f"/lectures/{lecture.pk}/",
        f"/lectures/{lecture.pk}/edit/",
        f"/lectures/{lecture.pk}/delete/",
        "/jobs/",
        "/accounts/password/change/",
    ]
    problems = []
    for size in WIDTHS:
        page.set_viewport_size(size)
        for path in pages:
            page.goto(path)
            if path == f"/lectures/{lecture.pk}/":
                page.wait_for_selector('#report[data-segments="300"]')
                page.wait_for_selector("#segments tbody tr")
            problems += [f"{size['width']} px {path}: {p}" for p in axe_problems(page)]
            # Nothing scrolls the page sideways, at either width.
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > size["width"]:
                problems.append(f"{size['width']} px {path}: the page is {width} px wide")
    assert problems == [], "\n".join(problems)
