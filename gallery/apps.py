from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "gallery"
    verbose_name = "Gallery front: tokens and pages"

    def ready(self) -> None:
        from pathlib import Path

        from django.conf import settings

        # A SQLite database file (the embedded default) needs its folder.
        database = settings.DATABASES["default"]
        if database["ENGINE"].endswith("sqlite3") and str(database["NAME"]) != ":memory:":
            Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        # whitenoise looks for STATIC_ROOT at start-up; outside production it serves from the
        # static folders, so an empty one will do.
        if not settings.PRODUCTION:
            Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        # The embedded broker's folders must exist before a worker or the web process uses them.
        if settings.CELERY_BROKER_URL.startswith("filesystem"):
            for key in ("data_folder_in", "processed_folder", "control_folder"):
                Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS[key]).mkdir(
                    parents=True, exist_ok=True
                )
