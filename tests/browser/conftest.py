"""Playwright driving the distribution's Chromium (headless) against the live site.

Every page a test opens is watched: an error in its JavaScript console (or an uncaught
exception) fails the test, unless the test said it expects it (``console_errors.allow``).
A Content-Security-Policy violation (an inline script, handler or style, a foreign
source) always fails it: no test can allow one.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SERSITE_ARTIFACTS", ROOT / "artifacts" / "browser"))
# Chromium started as this machine needs it: no sandbox as root, no background traffic
# to hosts the closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip
# The size of the screenshots in the README.
VIEWPORT = {"width": 1280, "height": 800}


def _wait_for_function(page, expression: str, *, arg=None, timeout=None, polling=None):
    """Page.wait_for_function without eval in the page.

    Playwright's own version polls with ``eval`` inside the page, which the site's CSP
    (no 'unsafe-eval') refuses after the first try; ``evaluate`` goes through the
    DevTools protocol, which the page's CSP does not govern. Same arguments and result.
    """
    import time

    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    deadline = time.monotonic() + (30_000 if timeout is None else timeout) / 1000
    while True:
        # An expression, or a function called with `arg`: evaluate decides, as Playwright's does.
        handle = page.evaluate_handle(expression, arg)
        if handle.json_value():
            return handle
        handle.dispose()
        if timeout != 0 and time.monotonic() > deadline:
            raise PlaywrightTimeoutError(f"wait_for_function: still false: {expression}")
        page.wait_for_timeout(polling if isinstance(polling, (int, float)) else 50)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import Page, sync_playwright

    Page.wait_for_function = _wait_for_function  # CSP-safe for every test's pages

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Chromium is missing: `make test` installs the distribution's package"
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by
    # fixtures meanwhile are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# Runs in every page before its own scripts (Playwright's init scripts are not subject to
# the page's CSP): each violation the browser reports is written to the console, where
# ConsoleErrors picks it up, whatever the browser's own wording of its "Refused to" line.
CSP_WATCH_JS = """
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile || location.href}:${e.lineNumber}`;
  console.error(`CSP violation: ${e.effectiveDirective || e.violatedDirective} refused `
    + `${e.blockedURI || "inline"} (${where}) ${e.sample || ""}`);
}, true);
"""
CSP_MESSAGE = re.compile(r"^CSP violation:|Content Security Policy")


class ConsoleErrors:
    """Console errors and uncaught exceptions of every page in the watched contexts."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[re.Pattern] = []
        self.violations: list[str] = []

    def watch(self, context) -> None:
        context.add_init_script(CSP_WATCH_JS)
        context.on("console", self._console)
        context.on("weberror", lambda err: self.errors.append(f"uncaught: {err.error}"))

    def _console(self, msg) -> None:
        if msg.type == "error":
            where = msg.location.get("url", "") if msg.location else ""
            self.errors.append(f"{msg.text} ({where})")
            if CSP_MESSAGE.search(msg.text):
                self.violations.append(f"{msg.text} ({where})")

    def allow(self, pattern: str) -> None:
        """Expect console errors matching ``pattern`` (e.g. the 404 a test asks for)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        allowed = [e for e in self.errors if any(p.search(e) for p in self.allowed)]
        # A CSP violation is never expected, whatever a test allowed.
        return [e for e in self.errors if e not in allowed or e in self.violations]


@pytest.fixture
def console_errors():
    return ConsoleErrors()


@pytest.fixture
def new_context(browser, live_url, console_errors):
    """A fresh browser context (no cookies) on the live site, its console watched."""
    contexts = []

    def make():
        context = browser.new_context(base_url=live_url, accept_downloads=True, viewport=VIEWPORT)
        console_errors.watch(context)
        contexts.append(context)
        return context

    yield make
    unexpected = console_errors.unexpected()
    for context in contexts:
        context.close()
    if unexpected:
        pytest.fail("errors in the browser console:\n" + "\n".join(unexpected), pytrace=False)


@pytest.fixture
def page_for(new_context, live_url):
    """A signed-in page (fresh context) for a user; screenshots go to artifacts/."""

    def open_page(username: str, password: str = "pw-for-tests-1"):
        page = new_context().new_page()
        page.goto("/accounts/login/")
        page.get_by_label("User name").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_url}/")
        return page

    return open_page


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """``artifacts/browser/<name>.png``: the whole page, or only the 1280 × 800 viewport."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# ---------------------------------------------------------------- page checks

# Every control, canvas and image without an accessible name, described for the failure message.
_UNLABELLED_JS = """() => {
  const named = (el) => {
    if (el.getAttribute('aria-label')?.trim()) return true;
    const by = el.getAttribute('aria-labelledby');
    const text = (id) => document.getElementById(id)?.textContent.trim();
    if (by && by.split(/\\s+/).some(text)) return true;
    if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true;
    if (el.title?.trim()) return true;
    if (el.tagName === 'IMG') return el.hasAttribute('alt');
    if (el.tagName === 'BUTTON') return !!el.textContent.trim();
    const isButton = ['submit', 'button', 'reset'].includes(el.type);
    if (el.tagName === 'INPUT' && isButton) return !!el.value;
    return false;
  };
  const controls = document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, progress, audio, canvas, img');
  return [...controls].filter((el) => !named(el)).map((el) =>
    `<${el.tagName.toLowerCase()} id="${el.id}" name="${el.getAttribute('name') || ''}">`);
}"""


def assert_labelled(page) -> None:
    """Every control on the page (input, select, button, progress bar, player) has a name
    that a screen reader reads out."""
    unlabelled = page.evaluate(_UNLABELLED_JS)
    assert not unlabelled, f"controls without a label on {page.url}: {unlabelled}"


def current_nav(page) -> list[tuple[str, str]]:
    """(link text, aria-current) of the main navigation's marked links."""
    marked = page.evaluate(
        """() => [...document.querySelectorAll('nav[aria-label=Main] a[aria-current]')]
              .map((a) => [a.firstChild.textContent.trim(), a.getAttribute('aria-current')])"""
    )
    return [tuple(pair) for pair in marked]
