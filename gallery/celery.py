"""The Celery application: configured from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")

app = Celery("gallery")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Worker log lines carry the id of the task they come from.
from gallery.observability import connect_celery_signals  # noqa: E402

connect_celery_signals()
