"""A browser that sends an upload over the limit reads the server's 413, although it was
still sending when the server answered and closed (the page's own size check is the
first line; this is the server's, for a browser that skipped it)."""

import pytest

from tests.conftest import _stop, start_server

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

LIMIT = 8_000_000

POST_BLOB_JS = """async (size) => {
  try {
    const answer = await fetch("/api/lectures/", {
      method: "POST",
      body: new Blob([new Uint8Array(size)]),
      headers: {"Content-Type": "application/octet-stream"},
    });
    return {status: answer.status, body: await answer.json()};
  } catch (error) {
    return {error: String(error)};
  }
}"""


def test_a_browser_still_sending_reads_the_413(browser, live_env, logs_dir):
    env = {**live_env, "MAX_UPLOAD_BYTES": str(LIMIT)}
    server, url = start_server(env, logs_dir / "web-browser-upload.log")
    try:
        context = browser.new_context(base_url=url)
        page = context.new_page()
        page.goto("/accounts/login/")
        # Twelve times the limit: far more than the socket buffers hold when the 413 comes.
        result = page.evaluate(POST_BLOB_JS, 12 * LIMIT)
        context.close()
    finally:
        _stop(server)
    assert result == {
        "status": 413,
        "body": {"detail": "This upload is 96 MB; the limit is 8 MB."},
    }
