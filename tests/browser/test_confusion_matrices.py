"""Confusion matrices of eight classes read cleanly on the run page.

At 1280 px the four matrices (clean and three SNRs) sit side by side without touching,
every header fits its cell (long labels cut, the full label in a tooltip), and no table
is wider than its box; at 390 px each matrix scrolls inside its own box while the card
and the page stay put.
"""

import pytest

from emotions.models import Job, TrainingRun
from tests.browser.conftest import screenshot
from tests.services.test_training import make_dataset

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

LABELS = [
    "anger", "boredom", "disgust", "fear", "happiness", "neutral", "sadness", "surprise",
]  # fmt: skip

LAYOUT_JS = """() => {
  const boxes = [...document.querySelectorAll('.matrices > .matrix')];
  const rect = (el) => el.getBoundingClientRect();
  const overlaps = [];
  boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b) => {
    const r = rect(a), s = rect(b);
    if (r.left < s.right && s.left < r.right && r.top < s.bottom && s.top < r.bottom) {
      overlaps.push(i);
    }
  }));
  const clipped = [...document.querySelectorAll('table.confusion th, table.confusion td')]
    .filter((c) => c.scrollWidth > c.clientWidth + 1).map((c) => c.textContent);
  const card = document.querySelector('.matrices').closest('.card');
  return {
    n: boxes.length,
    overlaps,
    clipped,
    scrolling: boxes.map((b) => b.scrollWidth > b.clientWidth + 1),
    outside: boxes.filter((b) => rect(b).right > rect(card).right + 1).length,
    page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    titles: [...document.querySelector('table.confusion thead').querySelectorAll('th[title]')]
      .map((th) => th.getAttribute('title')),
  };
}"""


def _eight_class_run(owner) -> TrainingRun:
    """A finished run as the worker would have saved it, with eight classes."""
    dataset = make_dataset(owner)
    job = Job.objects.create(owner=owner, kind=Job.Kind.TRAINING, state=Job.State.SUCCEEDED)
    n = len(LABELS)
    matrix = [[(40 if i == j else 3 + (i + j) % 5) for j in range(n)] for i in range(n)]
    scores = {"accuracy": 0.71, "precision": 0.7, "recall": 0.71, "f1": 0.7, "uar": 0.69}
    one = {**scores, "labels": LABELS, "confusion_matrix": matrix, "n": sum(map(sum, matrix))}
    metrics = {name: one for name in ("clean", "15dB", "20dB", "40dB")}
    return TrainingRun.objects.create(
        owner=owner, dataset=dataset, preset="clean", metrics=metrics, job=job, snrs=[15, 20, 40]
    )


def test_eight_class_matrices_fit_at_1280_and_scroll_in_their_card_at_390(make_user, page_for):
    owner = make_user("researcher")
    run = _eight_class_run(owner)
    page = page_for("researcher")
    page.goto(f"/train/runs/{run.pk}/")
    page.locator(".matrices").scroll_into_view_if_needed()
    screenshot(page, "run-confusion-8-classes-1280", full_page=False)
    layout = page.evaluate(LAYOUT_JS)
    assert layout["n"] == 4
    assert layout["overlaps"] == [] and layout["clipped"] == [], layout
    assert not any(layout["scrolling"]) and layout["outside"] == 0, layout
    # Column headers are cut where long, the full label kept as their tooltip.
    assert layout["titles"] == LABELS
    header = page.locator("table.confusion").first.locator("thead th")
    assert header.nth(5).inner_text() == "happ." and header.nth(1).inner_text() == "anger"
    assert page.locator("table.confusion").first.locator("tbody th").nth(4).inner_text() == (
        "happiness"
    )

    page.set_viewport_size({"width": 390, "height": 844})
    page.locator(".matrices").scroll_into_view_if_needed()
    screenshot(page, "run-confusion-8-classes-390", full_page=False)
    layout = page.evaluate(LAYOUT_JS)
    assert layout["overlaps"] == [] and layout["outside"] == 0, layout
    assert all(layout["scrolling"]), layout  # each matrix scrolls inside its own box
    assert layout["page"] <= 0, layout  # and the page itself does not scroll sideways
