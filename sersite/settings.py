"""Settings for sersite, read from the environment with defaults that run locally.

Every setting a deployment changes is an environment variable (see the README's
configuration table). With none set, the site runs on SQLite under ./var with
Redis on 127.0.0.1:6379.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
import redis.exceptions

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():  # optional; the environment itself comes first
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env("SERSITE_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """The key from SECRET_KEY, or one generated once and kept in var/secret_key."""
    if env("SECRET_KEY", default=""):
        return env("SECRET_KEY")
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        # Written with O_EXCL so two processes starting together agree on one key.
        try:
            with open(key_file, "x", encoding="ascii") as fh:
                fh.write(secrets.token_urlsafe(50))
            key_file.chmod(0o600)
        except FileExistsError:
            pass
    return key_file.read_text(encoding="ascii").strip()


SECRET_KEY = _secret_key()
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "axes",  # login throttling (see AXES_* below)
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "channels",
    "emotions",
    "workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "emotions.middleware.UploadLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A NUL or control character anywhere in a query string: 400, for every view.
    "emotions.params.QueryStringMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "sersite.urls"

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

WSGI_APPLICATION = "sersite.wsgi.application"
ASGI_APPLICATION = "sersite.asgi.application"

# SQLite under var/ by default; PostgreSQL (or any database) through DATABASE_URL.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web process write concurrently: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    )
    # A file (the test worker and server open it too), one per test run so that two runs
    # in one checkout never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test_db_{os.getpid()}.sqlite3")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# django-axes first: it refuses a locked-out user name + address before any password check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling: LOGIN_FAILURE_LIMIT wrong passwords for one user name from one address
# lock that pair out for LOGIN_LOCKOUT_MINUTES (a right password included); other users
# and other addresses are not affected. A success clears the count.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "emotions.accounts.locked_out"
AXES_VERBOSE = False  # no banner in every command's output; lockouts are still logged

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Password-reset mail is printed to the console unless EMAIL_BACKEND names a real backend
# (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, … then configure it as in Django's docs).
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="sersite@localhost")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))

MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Uploads above this size stream to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = env("FILE_UPLOAD_TEMP_DIR", default=None)
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=2 * 1024**3)
# Dataset archives: refused past these (zip bombs), and server folders staff may import
# from (empty: any folder the cpu worker can read).
IMPORT_MAX_ARCHIVE_MEMBERS = env.int("IMPORT_MAX_ARCHIVE_MEMBERS", default=200_000)
IMPORT_MAX_EXTRACTED_BYTES = env.int("IMPORT_MAX_EXTRACTED_BYTES", default=20 * 1024**3)
IMPORT_SERVER_ROOTS = env.list("IMPORT_SERVER_ROOTS", default=[])
NOISE_MAX_SECONDS = env.int("NOISE_MAX_SECONDS", default=1200)
# Lectures longer than this (declared by the header at upload, or decoded) are refused.
LECTURE_MAX_SECONDS = env.int("LECTURE_MAX_SECONDS", default=6 * 3600)

# Files go through Django's storage API so that a worker on another host reads
# what the web process wrote: the file system by default, S3-compatible when
# AWS_STORAGE_BUCKET_NAME is set (django-storages).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if env("AWS_STORAGE_BUCKET_NAME", default=""):
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env("AWS_S3_REGION_NAME", default=None),
        },
    }
if DEBUG or env.bool("SERSITE_TESTING", default=False):
    # No manifest needed while developing or testing.
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# Weights imported by staff (AlexNet ImageNet weights) and trained models.
WEIGHTS_DIR = Path(env("WEIGHTS_DIR", default=str(VAR_DIR / "weights")))
# Each worker's own cache of ONNX exports of trained models (derived, keyed by the checkpoint's
# content): local to the worker, outside the media folder, safe to delete at any time.
INFERENCE_DIR = Path(env("INFERENCE_DIR", default=str(VAR_DIR / "inference")))

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Prefix of every Redis key the site writes (broker, results, channel layer,
# worker registry), so several sites or test runs can share one Redis.
REDIS_KEY_PREFIX = env("REDIS_KEY_PREFIX", default="sersite")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 reads with a 5 s socket timeout by default, exactly the 5 s that
            # channels-redis blocks in BZPOPMIN: consumers then die on "Timeout reading".
            # Its asyncio pool also stops at 100 connections and refuses at once, so a burst
            # of pages joining their groups together lost sockets past the hundredth.
            "hosts": [
                {
                    "address": env("CHANNEL_REDIS_URL", default=REDIS_URL),
                    "socket_timeout": 30,
                    "max_connections": env.int("CHANNEL_REDIS_MAX_CONNECTIONS", default=2000),
                    # After a Redis restart the pool's connections are dead; without a
                    # retry the first command on one fails (or a group join hangs).
                    "retry_on_error": [redis.exceptions.ConnectionError],
                    "health_check_interval": 15,
                }
            ],
            "prefix": REDIS_KEY_PREFIX,
            "capacity": 1000,
            "expiry": 60,
        },
    }
}

# Celery: Redis broker and result backend; queues `cpu` and `gpu` (see workers/routing.py).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_ACKS_LATE = True
# A job whose worker process dies (killed, out of memory, past its hard time limit) is
# failed with a reason, not sent again: a job that kills its process would loop forever.
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_RESULT_EXPIRES = 24 * 3600
# Above the longest training run: Redis redelivers unacknowledged tasks after this
# many seconds, which would start a long job twice (celery #5935).
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=48 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "global_keyprefix": f"{REDIS_KEY_PREFIX}:",
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = CELERY_BROKER_TRANSPORT_OPTIONS
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = False
# A training child process that finishes or crashes gives its GPU memory back.
CELERY_WORKER_MAX_TASKS_PER_CHILD = env.int("CELERY_WORKER_MAX_TASKS_PER_CHILD", default=20)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        # HTTP Basic sends the password with every request: off unless a deployment asks.
        *(
            ["rest_framework.authentication.BasicAuthentication"]
            if env.bool("API_BASIC_AUTH", default=False)
            else []
        ),
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "emotions.api.pagination.StrictLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "emotions.api.errors.exception_handler",
    # The browsable API's pages get the one CSP relaxation they need (inline styles).
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "emotions.api.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "sersite API",
    "DESCRIPTION": "Noise-robust speech emotion recognition: lectures, datasets, training.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served by the site itself (sidecar): nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two different "preset" choices (IEMOCAP label sets; training experiments).
    "ENUM_NAME_OVERRIDES": {
        "IemocapPresetEnum": "emotions.services.datasets.IEMOCAP_PRESETS",
        "TrainingPresetEnum": "emotions.models.TrainingRun.Preset",
    },
}

# Production hardening: on whenever DEBUG is off, so `manage.py check --deploy` is clean.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): scripts and styles only from the site's own files,
# no inline script, handler or style attribute, so a user's string that ever reached the
# page as markup still could not run. 'self' in connect-src covers the live socket (ws:
# and wss: on the same host and port, CSP level 3, as Chromium and Firefox implement it).
# Blob and data images: spectrogram previews and the favicon; blob media: local playback.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SESSION_COOKIE_HTTPONLY = True
# PRODUCTION=1 (behind HTTPS) turns every one of them on; each can still be set alone.
PRODUCTION = env.bool("PRODUCTION", default=False) and not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# Tasks are named sersite.cpu.* or sersite.gpu.*; the prefix picks the queue.
CELERY_TASK_ROUTES = {
    "sersite.gpu.*": {"queue": "gpu"},
    "sersite.cpu.*": {"queue": "cpu"},
}
# Seconds a running job may go without a heartbeat before the reaper fails it.
JOB_HEARTBEAT_TIMEOUT = env.int("JOB_HEARTBEAT_TIMEOUT", default=120)
# Time limits per job kind, in seconds. Past its limit a job is stopped and failed with
# a reason; if it does not stop, its worker process is killed JOB_TIME_LIMIT_GRACE
# seconds later and replaced. Analysis grows with the recording: the base plus this many
# seconds per second of audio (LECTURE_MAX_SECONDS when the length is not known yet).
# All stay below CELERY_VISIBILITY_TIMEOUT, so Redis never redelivers a running job.
JOB_TIME_LIMIT_DIAGNOSTIC = env.int("JOB_TIME_LIMIT_DIAGNOSTIC", default=600)
JOB_TIME_LIMIT_IMPORT = env.int("JOB_TIME_LIMIT_IMPORT", default=3 * 3600)
JOB_TIME_LIMIT_ANALYSIS = env.int("JOB_TIME_LIMIT_ANALYSIS", default=1800)
JOB_TIME_LIMIT_ANALYSIS_PER_AUDIO_SECOND = env.float(
    "JOB_TIME_LIMIT_ANALYSIS_PER_AUDIO_SECOND", default=1.0
)
JOB_TIME_LIMIT_TRAINING = env.int("JOB_TIME_LIMIT_TRAINING", default=24 * 3600)
JOB_TIME_LIMIT_GRACE = env.int("JOB_TIME_LIMIT_GRACE", default=60)
# A cancelled job that has not stopped on its own after this many seconds is interrupted,
# and killed (its worker process replaced) after twice as long.
JOB_CANCEL_GRACE = env.float("JOB_CANCEL_GRACE", default=10.0)
# Jobs one user may have queued or running at once, all kinds together (0: no limit).
JOBS_PER_USER_MAX = env.int("JOBS_PER_USER_MAX", default=3)
# How often each worker's main process enforces cancels, fails orphaned jobs, sends jobs
# the broker missed and re-announces itself (seconds).
WORKER_SUPERVISE_INTERVAL = env.float("WORKER_SUPERVISE_INTERVAL", default=2.0)
# The test suite's own switches (e.g. a self-test job that spins without reporting).
SERSITE_TESTING = env.bool("SERSITE_TESTING", default=False)
# Voice activity (Silero VAD): loud seconds without speech are reported as "no speech"
# instead of getting an emotion. The test suite's generated "speech" is harmonic tones, which a
# real VAD rightly hears as no speech, so under test it is off unless a test turns it on.
ANALYSIS_VAD = env.bool("SERSITE_VAD", default=not env.bool("SERSITE_TESTING", default=False))
WHITENOISE_USE_FINDERS = DEBUG or env.bool("SERSITE_TESTING", default=False)
# The reaper runs in every worker's main process (workers/supervisor.py), never queued
# behind a long job, and on the web side when a user reads their jobs.
CELERY_BEAT_SCHEDULE: dict = {}
