"""Sign-in throttling (django-axes) and no HTTP Basic on the API (issue 11, defect 7)."""

import base64
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"


def sign_in(client: Client, username: str, password: str):
    return client.post(
        "/accounts/login/", {"username": username, "password": password, "next": "/"}
    )


def signed_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def test_200_wrong_passwords_then_the_right_one_is_refused(make_user):
    make_user("ada", password=PASSWORD)
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    answers = [sign_in(attacker, "ada", f"guess-{i}").status_code for i in range(200)]
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 10
    assert set(answers[: limit - 1]) == {200}  # the form again: "do not match"
    assert set(answers[limit:]) == {429}

    locked = sign_in(attacker, "ada", PASSWORD)
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed sign-ins" in text and "locked for 15 minutes" in text
    assert 'name="username"' in text  # still the login page, with the message
    assert not signed_in(attacker)


def test_the_lockout_is_per_user_name_and_address_and_ends(make_user):
    from axes.models import AccessAttempt

    make_user("ada", password=PASSWORD)
    make_user("bob", password=PASSWORD)
    attacker = Client(REMOTE_ADDR="203.0.113.7")
    for i in range(settings.AXES_FAILURE_LIMIT):
        sign_in(attacker, "ada", f"guess-{i}")
    assert sign_in(attacker, "ada", PASSWORD).status_code == 429

    # Another user from that address, and the user from another address, get in.
    assert sign_in(Client(REMOTE_ADDR="203.0.113.7"), "bob", PASSWORD).status_code == 302
    ada_at_home = Client(REMOTE_ADDR="198.51.100.2")
    assert sign_in(ada_at_home, "ada", PASSWORD).status_code == 302
    assert signed_in(ada_at_home)

    # Fifteen minutes later the pair may try again.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert sign_in(attacker, "ada", PASSWORD).status_code == 302
    assert signed_in(attacker)


def test_a_success_clears_the_count(make_user):
    make_user("ada", password=PASSWORD)
    client = Client(REMOTE_ADDR="192.0.2.1")
    for _ in range(3):
        for i in range(settings.AXES_FAILURE_LIMIT - 1):  # a forgetful user, not an attack
            assert sign_in(client, "ada", f"typo-{i}").status_code == 200
        assert sign_in(client, "ada", PASSWORD).status_code == 302
        client.logout()


def test_http_basic_is_refused_by_the_api(make_user):
    make_user("ada", password=PASSWORD)
    token = base64.b64encode(f"ada:{PASSWORD}".encode()).decode()
    client = Client()
    answer = client.get("/api/jobs/", HTTP_AUTHORIZATION=f"Basic {token}")
    assert answer.status_code in (401, 403), answer.status_code
    assert "Basic" not in answer.get("WWW-Authenticate", "")
    assert (
        "rest_framework.authentication.BasicAuthentication"
        not in (settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"])
    )
    # The session the login page gives works as before.
    assert sign_in(client, "ada", PASSWORD).status_code == 302
    assert client.get("/api/jobs/").status_code == 200
