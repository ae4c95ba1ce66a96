"""Settings of the Gallery, all read from the environment (django-environ).

Every value has an embedded default that needs nothing installed: a SQLite file and a
filesystem Celery broker in the project's ``data/`` folder, so that ``make run`` works on a
fresh machine. Production sets ``DATABASE_URL``, ``CELERY_BROKER_URL``, ``SECRET_KEY``,
``ALLOWED_HOSTS`` and ``GALLERY_PRODUCTION=1`` (which turns on the secure-cookie, HSTS and
HTTPS settings checked by ``manage.py check --deploy``).
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

DATA_DIR = Path(env.str("GALLERY_DATA_DIR", default=str(BASE_DIR / "data")))

PRODUCTION = env.bool("GALLERY_PRODUCTION", default=False)
DEBUG = env.bool("DEBUG", default=False)
# The development key is only usable outside production: production refuses to start without one.
SECRET_KEY = env.str(
    "SECRET_KEY", default="" if PRODUCTION else "dev-insecure-gallery-key-not-for-production-use"
)
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("SECRET_KEY must be set when GALLERY_PRODUCTION=1")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "sources",
    "products",
    "ingest",
    "gallery",
]

MIDDLEWARE = [
    "gallery.observability.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "gallery.urls"
WSGI_APPLICATION = "gallery.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'gallery.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while the worker process writes; IMMEDIATE transactions
    # take the write lock at BEGIN, so concurrent writers wait instead of failing "locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Covering indexes (INCLUDE columns) are a PostgreSQL speed-up; SQLite keeps the plain index.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# One cache shared by every web and worker process in production (CACHE_URL, e.g.
# redis://redis:6379/1); a per-process memory cache by default.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://gallery")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# Plotly.js comes from the installed plotly package (vendor/plotly.min.js), not from a CDN.
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "gallery.pages.staticfinders.PlotlyFinder",
]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media")))
# Files are never served from MEDIA_URL: every download goes through a view that checks
# visibility. The URL exists only because Django's storage API wants one.
MEDIA_URL = "/_media-not-served/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Celery -----------------------------------------------------------------------------
# Default: kombu's filesystem transport, so a real worker process runs without Redis.
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(BROKER_DIR / "control"),
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": 3600}
)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None) or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "gallery.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Lists of a million rows page by keyset (no COUNT, no OFFSET); small tables by number.
    "DEFAULT_PAGINATION_CLASS": "gallery.api.pagination.NumberedPagination",
    "PAGE_SIZE": 50,
    # Every error, 4xx and 5xx, is a JSON body naming the field and the reason.
    "EXCEPTION_HANDLER": "gallery.api.exceptions.json_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "INTEGRAL Gallery API",
    "DESCRIPTION": (
        "Sources, revolutions, observations and high-level data products (sky images, "
        "spectra with their fits, light curves, source catalogues) of ESA's INTEGRAL mission.\n\n"
        "Anonymous clients read public data. Send an API token as `Authorization: Token <t>` "
        "(or `Bearer <t>`) to see the proprietary products granted to your groups, to upload "
        "(contributors) or to curate (curators). Errors are JSON: `detail` for the request, "
        "or the name of each faulty field with its reasons."
    ),
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ProductStatusEnum": "products.models.Product.Status",
        "ProductAccessEnum": "products.models.Product.Access",
        "SourceRoleEnum": "products.models.ProductSource.Role",
        "DataLevelEnum": "products.models.DataLevel",
        "JobStateEnum": "ingest.models.IngestJob.State",
    },
    "TAGS": [
        {"name": "sources", "description": "Astrophysical sources, their names and classes."},
        {"name": "revolutions", "description": "INTEGRAL orbits and their products."},
        {"name": "observations", "description": "Observations (ScW groups) and their products."},
        {"name": "products", "description": "High-level data products: search, upload, curate."},
        {"name": "jobs", "description": "Ingest jobs started by uploads."},
        {"name": "time", "description": "Conversion between ISOT, MJD, IJD and revolutions."},
    ],
}

# --- Gallery ------------------------------------------------------------------------------
GALLERY_UPLOAD_MAX_BYTES = env.int("GALLERY_UPLOAD_MAX_BYTES", default=200 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
GALLERY_ONLINE_RESOLVER = env.bool("GALLERY_ONLINE_RESOLVER", default=False)
GALLERY_STAGING_DIR = Path(env.str("GALLERY_STAGING_DIR", default=str(DATA_DIR / "staging")))
GALLERY_DETECTION_THRESHOLD = env.float("GALLERY_DETECTION_THRESHOLD", default=7.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "gallery.observability.ContextFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [req %(request_id)s task %(task_id)s]"
            " %(message)s"
        },
        "json": {"()": "gallery.observability.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env.str("LOG_FORMAT", default="json" if PRODUCTION else "plain"),
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}

# --- Production hardening (checked by `manage.py check --deploy`) -------------------------
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Load balancers probe /health/ over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
# Content Security Policy (django-csp): no inline or third-party scripts anywhere. Plotly sets
# inline styles, hence 'unsafe-inline' for styles only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
GALLERY_HEALTH_TIMEOUT_S = env.float("GALLERY_HEALTH_TIMEOUT_S", default=3.0)
GALLERY_BASE_URL = env.str("GALLERY_BASE_URL", default="http://127.0.0.1:8000")
# Outside production whitenoise serves straight from the static folders (no collectstatic).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION

# --- REST API -----------------------------------------------------------------------------
# Extra routes used only by bench/api.py (a constant DRF view: the floor of the API latency).
GALLERY_BENCH_ENDPOINTS = env.bool("GALLERY_BENCH_ENDPOINTS", default=False)
# Largest page a client may ask for with ?page_size= .
GALLERY_API_MAX_PAGE_SIZE = env.int("GALLERY_API_MAX_PAGE_SIZE", default=500)
# How long a source's product counts are reused (per audience; 0 recounts every time).
GALLERY_API_COUNTS_CACHE_SECONDS = env.int("GALLERY_API_COUNTS_CACHE_SECONDS", default=60)

# --- Revolution pipeline (ingest.pipeline) and its schedule -------------------------------
# The archive of per-ScW images the pipeline reads (scw/RRRR/RRRRPPPPSSSF.VVV/...).
GALLERY_ARCHIVE_DIR = Path(env.str("GALLERY_ARCHIVE_DIR", default=str(DATA_DIR / "archive")))
# Intermediate files of running revolutions (shared by the workers; removed once published).
GALLERY_PIPELINE_WORK_DIR = Path(
    env.str("GALLERY_PIPELINE_WORK_DIR", default=str(DATA_DIR / "pipeline"))
)
GALLERY_PIPELINE_KEEP_WORK = env.bool("GALLERY_PIPELINE_KEEP_WORK", default=False)
GALLERY_PIPELINE_BACKEND = env.str("GALLERY_PIPELINE_BACKEND", default="local")  # or mmoda
GALLERY_PIPELINE_OSA_LABEL = env.str("GALLERY_PIPELINE_OSA_LABEL", default="11.2")
# A run whose worker has not written for this long is taken over by another worker.
GALLERY_PIPELINE_HEARTBEAT_SECONDS = env.float("GALLERY_PIPELINE_HEARTBEAT_SECONDS", default=15.0)
GALLERY_PIPELINE_STALE_SECONDS = env.float("GALLERY_PIPELINE_STALE_SECONDS", default=300.0)
GALLERY_PIPELINE_MAX_ATTEMPTS = env.int("GALLERY_PIPELINE_MAX_ATTEMPTS", default=6)
GALLERY_PIPELINE_MAX_ACTIVE_RUNS = env.int("GALLERY_PIPELINE_MAX_ACTIVE_RUNS", default=8)
GALLERY_PIPELINE_REPROCESS_LAST = env.int("GALLERY_PIPELINE_REPROCESS_LAST", default=10)
# The MMODA dispatcher of the mmoda backend (oda_api); the token is sent when set.
GALLERY_MMODA_URL = env.str(
    "GALLERY_MMODA_URL", default="https://www.astro.unige.ch/mmoda/dispatch-data"
)
GALLERY_MMODA_TOKEN = env.str("GALLERY_MMODA_TOKEN", default="") or None
GALLERY_MMODA_TRIES = env.int("GALLERY_MMODA_TRIES", default=3)
GALLERY_MMODA_RETRY_SECONDS = env.float("GALLERY_MMODA_RETRY_SECONDS", default=5.0)
GALLERY_MMODA_TIMEOUT_SECONDS = env.float("GALLERY_MMODA_TIMEOUT_SECONDS", default=300.0)

from celery.schedules import crontab  # noqa: E402 - only this block needs it

CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    # New revolutions (or NRT data made consolidated) as they appear in the archive.
    "pipeline-new-revolutions": {
        "task": "ingest.pipeline.process_new_revolutions",
        "schedule": env.float("GALLERY_PIPELINE_POLL_SECONDS", default=300.0),
    },
    # The last revolutions again every day: NRT products get superseded by CONS ones.
    "pipeline-reprocess-recent": {
        "task": "ingest.pipeline.reprocess_recent_revolutions",
        "schedule": crontab(hour=3, minute=30),
    },
    # Runs whose worker died or whose tasks the broker lost are enqueued again.
    "pipeline-watchdog": {"task": "ingest.pipeline.watchdog", "schedule": 60.0},
    # Long-term light-curve summaries, the transient monitor and source statistics, rebuilt.
    "refresh-lightcurves": {
        "task": "ingest.lightcurve_tasks.refresh_all_summaries",
        "schedule": crontab(hour=3, minute=17),
    },
}
# Tasks in modules the autodiscovery (tasks.py of each app) does not look at.
CELERY_IMPORTS = ["ingest.lightcurve_tasks"]
# After each ingest, a task refreshes the revolution's monitor and statistics.
GALLERY_LIGHTCURVE_REFRESH_TASKS = env.bool("GALLERY_LIGHTCURVE_REFRESH_TASKS", default=True)
