"""`manage.py import_weights alexnet FILE`: ImageNet weights for a backbone, checked first.

Copies FILE into settings.WEIGHTS_DIR after checking that it is a state dict with the
backbone's keys and shapes, and that its sha256 matches the one given with --sha256 or,
for torchvision's own files (``alexnet-owt-7be5be79.pth``), the prefix in the file name.
Training then starts from these weights instead of from scratch.
"""

import re
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from emotions.ser.constants import BACKBONES

# torchvision names its files <arch>-<first 8 hex digits of the sha256>.pth
_TORCHVISION_NAME = re.compile(r"-([0-9a-f]{8})\.pth$")


class Command(BaseCommand):
    help = "Import ImageNet weights for a backbone (e.g. AlexNet, the method's network)."

    def add_arguments(self, parser):
        parser.add_argument("backbone", choices=BACKBONES)
        parser.add_argument("file", type=Path)
        parser.add_argument("--sha256", help="expected sha256 of the file (hex)")

    def handle(self, *args, **options):
        from emotions.ser import networks

        backbone, path = options["backbone"], options["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        actual = networks.file_sha256(path)
        expected = (options["sha256"] or "").strip().lower()
        if expected and actual != expected:
            raise CommandError(
                f"Checksum mismatch: {path.name} has sha256 {actual}, expected {expected}. "
                "The file is damaged or not the one you meant."
            )
        named = _TORCHVISION_NAME.search(path.name)
        if named and not actual.startswith(named.group(1)):
            raise CommandError(
                f"Checksum mismatch: the name {path.name} says sha256 {named.group(1)}…, but the "
                f"file hashes to {actual[:8]}…: the download is damaged or renamed."
            )
        try:
            imported = networks.import_weights(backbone, path, settings.WEIGHTS_DIR)
        except networks.WeightsError as exc:
            raise CommandError(f"Not imported: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"Imported {backbone} weights: {imported.provenance}"))
        self.stdout.write(f"sha256 {imported.sha256}")
        self.stdout.write(f"stored as {imported.path.name} in the weights folder")
        self.stdout.write(f"New {backbone} training runs start from these weights.")
