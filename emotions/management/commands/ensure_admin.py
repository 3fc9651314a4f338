"""Create a first staff account on a fresh install, so someone can sign in."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the user 'admin' with a random password when the site has no users yet."

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "", password)
        note = settings.VAR_DIR / "admin_password.txt"
        note.write_text(f"admin\n{password}\n", encoding="utf-8")
        note.chmod(0o600)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the staff user 'admin' with password {password} "
                "(also in var/admin_password.txt; change it under Admin → Users)."
            )
        )
