"""Sign-up page (open only when staff switched it on in the admin); password change and
reset use Django's own views with this site's templates."""

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from emotions.services import accounts

# The session records the backend that let the user in; sign-up proves the password itself.
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


class SignupForm(UserCreationForm):
    # An address is needed to reset a forgotten password.
    email = forms.EmailField(label="Email", help_text="Only for resetting your password.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


@require_http_methods(["GET", "POST"])
def signup(request):
    if not accounts.signup_open():
        return render(request, "registration/signup_closed.html", status=404)
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            user = accounts.create_teacher_account(form)
            login(request, user, backend=MODEL_BACKEND)
            messages.success(request, "Welcome! Upload a lecture recording to see its emotions.")
            return redirect("home")
        return render(request, "registration/signup.html", {"form": form}, status=400)
    return render(request, "registration/signup.html", {"form": form})
