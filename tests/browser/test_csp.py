"""The Content-Security-Policy as the browser sees it: the header every page carries, the
live socket it still allows (connect-src 'self' covers ws: on the same host and port), and
the API docs (Swagger UI) still working under their one relaxation. Any violation fails
these tests as it fails every browser test (see conftest)."""

import pytest
import requests

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]


def directives(header: str) -> dict[str, list[str]]:
    parts = (part.strip().split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in parts}


def test_every_page_carries_the_strict_policy(live_url):
    answer = requests.get(f"{live_url}/accounts/login/", timeout=10)
    policy = directives(answer.headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]
    assert "'unsafe-inline'" not in answer.headers["Content-Security-Policy"]
    assert "'unsafe-eval'" not in answer.headers["Content-Security-Policy"]


def test_live_socket_connects_under_the_policy(page_for, make_user):
    make_user("viewer")
    page = page_for("viewer")
    page.goto("/jobs/")
    # live.js opens the jobs socket on every signed-in page; OPEN is 1.
    page.wait_for_function("window.sersiteLive && window.sersiteLive.ws.readyState === 1")


def test_api_docs_render_with_scripts_from_the_site_only(page_for, make_user):
    make_user("developer")
    page = page_for("developer")
    answer = page.goto("/api/docs/")
    policy = directives(answer.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"]  # only styles are relaxed on this page
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert page.locator(".swagger-ui .opblock").count() > 10
