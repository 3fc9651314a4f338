"""Import the Debian noise pack (and the synthetic fan/air-conditioning noise) as shared
noise profiles. Running it again adds only what is missing."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from emotions.services.errors import ServiceError
from emotions.services.noise import import_noise_pack


class Command(BaseCommand):
    help = (
        "Download the Debian game-data packages that carry ambient recordings (nothing is "
        "installed), convert each recording to 16 kHz mono and add it as a shared noise "
        "profile with its licence and attribution; add the synthetic noises too."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--packages", nargs="+", metavar="PACKAGE", help="only these packages of the pack"
        )
        parser.add_argument(
            "--owner", help="user who owns the profiles (default: the first superuser)"
        )
        parser.add_argument(
            "--no-synthetic", action="store_true", help="leave out the synthetic noises"
        )

    def handle(self, *args, **options):
        owner = self._owner(options["owner"])

        def progress(fraction: float, message: str) -> None:
            self.stdout.write(f"{fraction:4.0%}  {message}")

        try:
            counts = import_noise_pack(
                owner,
                packages=options["packages"],
                synthetic=not options["no_synthetic"],
                progress=progress,
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        for skipped in counts["skipped"]:
            self.stderr.write(f"skipped {skipped['path']}: {skipped['reason']}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{counts['added']} noise profile(s) added, "
                f"{counts['already_present']} already present, "
                f"{len(counts['skipped'])} skipped."
            )
        )

    def _owner(self, username: str | None):
        User = get_user_model()
        if username:
            try:
                return User.objects.get(username=username)
            except User.DoesNotExist:
                raise CommandError(f"There is no user “{username}”.") from None
        owner = User.objects.filter(is_superuser=True).order_by("pk").first()
        if owner is None:
            raise CommandError("There is no superuser yet: name the owner with --owner USER.")
        return owner
