"""`manage.py doctor`: is the database, Redis and a worker up, and on which device?"""

import json

from django.core.management.base import BaseCommand

from emotions.services import health


class Command(BaseCommand):
    help = "Check the database, Redis and the Celery workers (and their devices)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, **options):
        report = health.overall()
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            for name, check in report["checks"].items():
                mark = self.style.SUCCESS("ok  ") if check["ok"] else self.style.ERROR("FAIL")
                detail = check.get("error") or check.get("vendor") or ""
                self.stdout.write(f"{mark} {name} {detail}")
                for worker in check.get("workers", []):
                    queues = ",".join(worker["queues"]) or "?"
                    self.stdout.write(
                        f"      {worker['hostname']}  queues={queues}  device={worker['device']}"
                    )
                if check.get("warning"):
                    self.stdout.write(self.style.WARNING(f"      {check['warning']}"))
        if not report["ok"]:
            raise SystemExit(1)
