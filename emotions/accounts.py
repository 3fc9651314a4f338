"""Sign-in lockout (django-axes): the login page again, saying why and for how long."""

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: answer 429 with the login page and a plain message (no
    password was checked, so a right one does not get in either)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username[:150]})
    message = (
        f"Too many failed sign-ins for this user name from your address: signing in is "
        f"locked for {minutes} minutes. Wait, then try again, or ask an administrator."
    )
    context = {"form": form, "lockout_message": message, "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=429)
