"""The Celery app: Redis broker, queues `cpu` and `gpu`, tasks in workers/."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sersite.settings")

app = Celery("sersite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])

# The worker's main process supervises its jobs: cancels, orphans, unsent jobs, announce.
from workers.supervisor import Supervisor  # noqa: E402 - after the app it extends

app.steps["worker"].add(Supervisor)
