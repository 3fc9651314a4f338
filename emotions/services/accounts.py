"""Accounts made on the site: sign-up, when staff have opened it, makes a teacher."""

from django.contrib.auth.models import AbstractBaseUser, Group

from emotions.models import SiteSettings
from emotions.roles import TEACHERS


def signup_open() -> bool:
    return SiteSettings.current().signup_open


def create_teacher_account(form) -> AbstractBaseUser:
    """Save a valid sign-up form's user, in the teachers group (Lectures and Jobs)."""
    user = form.save()
    user.groups.add(Group.objects.get_or_create(name=TEACHERS)[0])
    return user
