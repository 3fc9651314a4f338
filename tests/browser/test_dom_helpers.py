"""The page scripts' shared helpers, run in Chromium on a real page under the site's CSP:
static/js/dom.js (nodes from data, never markup) and static/js/uploads.js (the checks
made before an upload is sent)."""

import pytest

from emotions.services.files import human_size

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

DOM_JS = """async () => {
  const { h, safeUrl } = await import('/static/js/dom.js');
  const hostile = '<img src=x onerror=window.__pwned=1>';
  const refused = (attrs) => { try { h('p', attrs); return false; } catch { return true; } };
  const link = h('a', { href: 'javascript:window.__pwned=1', title: hostile }, hostile);
  document.body.append(link);
  return {
    text: link.textContent, markup: link.innerHTML, href: link.getAttribute('href'),
    title: link.getAttribute('title'), children: link.children.length,
    handler: refused({ onclick: 'window.__pwned=1' }), upper: refused({ ONLOAD: 'x' }),
    style: refused({ style: 'color: red' }),
    urls: ['/lectures/1/', '//evil.example/', '/\\\\evil.example/', 'JavaScript:alert(1)',
           'data:text/html,<script>1</script>', 'data:image/png;base64,AA', 'https://a.example/',
           '../x', '?q=1'].map(safeUrl),
    pwned: window.__pwned === undefined ? null : String(window.__pwned),
  };
}"""

UPLOADS_JS = """async (sizes) => {
  const { humanSize, accepted, refusal } = await import('/static/js/uploads.js');
  const file = (name, type, size = 10) => new File([new Uint8Array(size)], name, { type });
  const accept = 'audio/*,video/*,.wav,.mp3';
  return {
    sizes: sizes.map(humanSize),
    byExtension: accepted(file('TALK.WAV', ''), accept),
    byType: accepted(file('talk', 'video/mp4'), accept),
    wrong: accepted(file('notes.txt', 'text/plain'), accept),
    anything: accepted(file('notes.txt', 'text/plain'), ''),
    empty: refusal(file('a.wav', 'audio/wav', 0), { accept }),
    big: refusal(file('a.wav', 'audio/wav', 2500), { limit: 1000, accept }),
    fine: refusal(file('a.wav', 'audio/wav', 999), { limit: 1000, accept }),
  };
}"""


def test_dom_helper_makes_text_and_safe_urls_only(page_for, make_user):
    make_user("viewer")
    page = page_for("viewer")
    got = page.evaluate(DOM_JS)
    hostile = "<img src=x onerror=window.__pwned=1>"
    assert got["text"] == hostile and got["title"] == hostile and got["children"] == 0
    assert got["markup"] == "&lt;img src=x onerror=window.__pwned=1&gt;"
    assert got["href"] == "#"
    assert got["handler"] and got["upper"] and got["style"]
    assert got["urls"] == [
        "/lectures/1/", "#", "#", "#", "#", "data:image/png;base64,AA", "https://a.example/",
        "../x", "?q=1",
    ]  # fmt: skip
    assert got["pwned"] is None


def test_upload_checks_word_sizes_as_the_server_does(page_for, make_user):
    make_user("viewer")
    page = page_for("viewer")
    sizes = [0, 999, 1000, 2500, 12_500_000, 2 * 1024**3, 25 * 10**9]
    got = page.evaluate(UPLOADS_JS, sizes)
    assert got["sizes"] == [human_size(n) for n in sizes]
    assert got["byExtension"] and got["byType"] and got["anything"]
    assert not got["wrong"]
    assert got["empty"] == "“a.wav” is empty."
    assert got["big"] == "“a.wav” is 2.5 kB; the limit is 1 kB."
    assert got["fine"] == ""
