"""Navigation around the report: sections by role, the folding menu at phone width with no
sideways scrolling, the skip link and a focus ring that shows on white."""

import pytest
from django.contrib.auth.models import Group

from tests.browser.conftest import screenshot
from tests.lecture_factory import make_lecture

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def _nav_links(page) -> list[str]:
    return [
        t.split()[0] for t in page.locator("nav[aria-label=Main] a").all_inner_texts() if t.strip()
    ]


def _in_group(user, name: str):
    user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


def test_navigation_by_role(page_for, make_user):
    _in_group(make_user("teacher"), "teachers")
    _in_group(make_user("scientist"), "researchers")
    make_user("head", is_staff=True)
    assert _nav_links(page_for("teacher")) == ["Lectures", "Jobs"]
    research = ["Lectures", "Train", "Datasets", "Noise", "Models", "Jobs"]
    assert _nav_links(page_for("scientist")) == research
    staff = page_for("head")
    assert _nav_links(staff) == research
    assert staff.get_by_role("link", name="Admin").is_visible()


def test_phone_width_menu_skip_link_and_focus(page_for, make_user, emotion_model):
    teacher = _in_group(make_user("teacher"), "teachers")
    lecture = make_lecture(teacher, emotion_model, 1205, angry=(708, 780))
    page = page_for("teacher")
    page.set_viewport_size(PHONE)
    page.goto(f"/lectures/{lecture.pk}/")
    page.wait_for_selector('#report[data-segments="1205"]', timeout=60_000)
    # No sideways scrolling: everything fits the 390 px width.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    # The navigation is folded behind "Menu", and opens on a tap.
    lectures_link = page.locator("nav[aria-label=Main] a", has_text="Lectures")
    assert not lectures_link.is_visible()
    assert not page.get_by_role("button", name="Sign out").is_visible()
    page.get_by_text("Menu", exact=True).click()
    assert lectures_link.is_visible() and page.get_by_role("button", name="Sign out").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "report-390-menu", full_page=False)
    page.get_by_text("Menu", exact=True).click()

    # The first Tab reaches the skip link, which takes focus past the navigation.
    page.goto(f"/lectures/{lecture.pk}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    assert page.locator(".skip-link").is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    # The focus ring on the page's own links is navy on white (15:1), not pale yellow.
    page.keyboard.press("Tab")
    ring = page.evaluate(
        """() => { const s = getComputedStyle(document.activeElement);
                   return [s.outlineStyle, s.outlineColor, s.outlineWidth]; }"""
    )
    assert ring == ["solid", "rgb(20, 33, 61)", "3px"], ring
