"""Accounts on the site: sign-up only when staff opened it (it makes a teacher), password
change, and password reset by email (Django's mail outbox in tests; the console by default)."""

import re

import pytest
from django.core import mail

from emotions.models import SiteSettings
from emotions.roles import TEACHER_SECTIONS, sections_for

pytestmark = pytest.mark.django_db

NEW = {
    "username": "new-teacher",
    "email": "t@example.org",
    "password1": "a long passphrase 42",
    "password2": "a long passphrase 42",
}


def signs_in(client, username: str, password: str) -> bool:
    """Through the login page, as a person does (the lockout backend needs the request)."""
    answer = client.post("/accounts/login/", {"username": username, "password": password})
    return answer.status_code == 302 and answer["Location"] == "/"


def test_signup_is_closed_by_default(client):
    answer = client.get("/accounts/signup/")
    assert answer.status_code == 404 and "Sign-up is closed" in answer.content.decode()
    assert client.post("/accounts/signup/", NEW).status_code == 404
    assert "Create an account" not in client.get("/accounts/login/").content.decode()


def test_staff_open_signup_and_it_makes_a_teacher(client, django_user_model):
    SiteSettings.objects.update_or_create(pk=1, defaults={"signup_open": True})
    assert "Create an account" in client.get("/accounts/login/").content.decode()
    answer = client.post("/accounts/signup/", NEW)
    assert answer.status_code == 302 and answer["Location"] == "/"
    user = django_user_model.objects.get(username="new-teacher")
    assert user.email == "t@example.org" and not user.is_staff
    assert sections_for(user) == TEACHER_SECTIONS
    assert client.get("/lectures/").status_code == 200  # signed in straight away


def test_signup_refusals_are_readable(client, make_user):
    SiteSettings.objects.update_or_create(pk=1, defaults={"signup_open": True})
    make_user("taken")
    answer = client.post("/accounts/signup/", {**NEW, "username": "taken"})
    assert answer.status_code == 400 and "already exists" in answer.content.decode()
    answer = client.post("/accounts/signup/", {**NEW, "password2": "something else 42"})
    assert answer.status_code == 400 and "didn" in answer.content.decode()
    answer = client.post("/accounts/signup/", {**NEW, "email": ""})
    assert answer.status_code == 400 and "required" in answer.content.decode()


def test_password_change(client, make_user):
    client.force_login(make_user("teacher"))
    assert client.get("/accounts/password/change/").status_code == 200
    answer = client.post(
        "/accounts/password/change/",
        {
            "old_password": "pw-for-tests-1",
            "new_password1": "another long one 77",
            "new_password2": "another long one 77",
        },
    )
    assert answer.status_code == 302 and answer["Location"] == "/accounts/password/change/done/"
    client.logout()
    assert signs_in(client, "teacher", "another long one 77")
    assert not signs_in(client, "teacher", "pw-for-tests-1")


def test_password_reset_by_email(client, make_user, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_user("teacher", email="teacher@example.org")
    answer = client.post("/accounts/password/reset/", {"email": "teacher@example.org"})
    assert answer.status_code == 302 and answer["Location"] == "/accounts/password/reset/sent/"
    assert len(mail.outbox) == 1 and "teacher" in mail.outbox[0].body
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+/)", mail.outbox[0].body)[1]
    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    answer = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "fresh long words 9", "new_password2": "fresh long words 9"},
    )
    assert answer.status_code == 302 and answer["Location"] == "/accounts/reset/done/"
    assert signs_in(client, "teacher", "fresh long words 9")
    client.logout()
    # The link works once.
    assert "does not work any more" in client.get(link, follow=True).content.decode()


def test_unknown_address_gets_the_same_answer_and_no_mail(client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    answer = client.post("/accounts/password/reset/", {"email": "nobody@example.org"})
    assert answer.status_code == 302 and not mail.outbox
