"""The upload forms check size and type in the browser before a byte is sent.

Each drop area carries the server's limit (data-max-bytes, from MAX_UPLOAD_BYTES) and says
it in words; a file of the wrong kind, or over the limit, chosen or dropped, is refused
with an inline message (role=alert), never a dialog, and no request leaves the page.
The limit in the page is lowered in place to test the size check with a small file.
"""

import pytest
from django.conf import settings

from emotions.services.files import human_size
from tests.hardening import inputs as make

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

HOSTILE_NAME = "<img src=x onerror=window.__pwned=1>.txt"
# A file dropped on the zone: it never went through the chooser's accept filter.
DROP_JS = """([selector, name, type, size]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([new Uint8Array(size)], name, {type}));
  document.querySelector(selector).dispatchEvent(
    new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""


def _watch(page) -> tuple[list[str], list[str]]:
    """POST requests the page sends, and dialogs it opens (dismissed)."""
    posts: list[str] = []
    dialogs: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return posts, dialogs


def _alert_text(page, container: str) -> str:
    alert = page.locator(f"{container} [role=alert]")
    alert.wait_for()
    return alert.inner_text()


def _check_form(page, *, zone: str, chooser: str, refusals: str, button: str, kind: str, good):
    posts, dialogs = _watch(page)
    limit = settings.MAX_UPLOAD_BYTES
    assert page.get_attribute(zone, "data-max-bytes") == str(limit)
    assert human_size(limit) in page.inner_text(zone)  # "up to 2.147 GB", said in words

    # Wrong type, chosen with the file chooser, its name hostile: refused as text.
    page.get_by_label(chooser).set_input_files(
        {"name": HOSTILE_NAME, "mimeType": "text/plain", "buffer": b"not audio"}
    )
    text = _alert_text(page, refusals)
    assert f"“{HOSTILE_NAME}” is not {kind}" in text
    assert page.evaluate("window.__pwned") is None

    # Over the limit, dropped: refused with both sizes; the limit as the page states it.
    page.eval_on_selector(zone, "(el) => { el.dataset.maxBytes = '1000'; }")
    name, mime = good
    page.evaluate(DROP_JS, [zone, name, mime, 2500])
    text = _alert_text(page, refusals)
    assert f"“{name}” is 2.5 kB; the limit is 1 kB." in text

    # Sending with nothing accepted: the refusal stays on screen, nothing is sent.
    page.get_by_role("button", name=button, exact=True).click()
    assert "the limit is 1 kB" in _alert_text(page, refusals)
    assert posts == [] and dialogs == []


def test_lecture_upload_refuses_wrong_type_and_oversized_files(page_for, make_user, emotion_model):
    make_user("teacher")
    page = page_for("teacher")
    page.goto("/lectures/")
    _check_form(
        page, zone="#dropzone", chooser="Recordings", refusals="#upload-refusals",
        button="Upload and analyse", kind="an audio or video recording",
        good=("talk.wav", "audio/wav"),
    )  # fmt: skip


def test_noise_and_corpus_uploads_refuse_before_sending(page_for, make_user):
    make_user("researcher")
    page = page_for("researcher")
    page.goto("/noise/")
    _check_form(
        page, zone="#noise-drop", chooser="Noise recordings", refusals="#noise-refusals",
        button="Upload", kind="an audio recording", good=("hum.wav", "audio/wav"),
    )  # fmt: skip
    page.goto("/datasets/")
    _check_form(
        page, zone="#archive-drop", chooser="Corpus archive", refusals="#archive-refusals",
        button="Import", kind="a zip or tar archive", good=("corpus.zip", "application/zip"),
    )  # fmt: skip
    # A recording where an archive belongs: refused too (a dropped file skips the filter).
    page.evaluate(DROP_JS, ["#archive-drop", "clip.wav", "audio/wav", len(make.valid_wav(0.5))])
    assert "“clip.wav” is not a zip or tar archive" in _alert_text(page, "#archive-refusals")
