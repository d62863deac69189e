"""Django settings: everything comes from the environment (12-factor)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import dj_database_url

BASE_DIR = Path(os.environ.get("OUTBOUND_HOME", Path.cwd())).resolve()
VAR_DIR = Path(os.environ.get("OUTBOUND_VAR_DIR", BASE_DIR / "var")).resolve()


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_bool("DJANGO_DEBUG")

# Django's SECRET_KEY signs sessions, CSRF tokens and JWTs: DJANGO_SECRET_KEY, or else
# var/django-secret.key, generated once (apart from the encryption keys, so rotating those
# signs nobody out).
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_tasks_db",
    "outbound.core",
    "outbound.accounts",
    "outbound.integrations",
    "outbound.mail",
    "outbound.webhooks",
    "outbound.console",
]

MIDDLEWARE = [
    "outbound.core.metrics.MetricsMiddleware",  # counts every answer for GET /metrics
    "django.middleware.security.SecurityMiddleware",
    # Serves Swagger UI's (and later the console's) assets from the package: no CDN, no nginx.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A database outage: each API shape's 503, the console's page, one log line (not one each).
    "outbound.middleware.DatabaseOutageMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "outbound.console.middleware.ConsoleHeadersMiddleware",
    "outbound.event_sources.EventSourceMiddleware",  # which way in each event's change came
]

ROOT_URLCONF = "outbound.urls"
WSGI_APPLICATION = "outbound.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "outbound.console.context.console",
            ]
        },
    }
]

SQLITE_PATH = VAR_DIR / "outbound.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_PATH}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 600  # reuse; the PRAGMAs run once per connection
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers proceed while one writer commits; IMMEDIATE takes the write lock
        # at BEGIN so two writers queue instead of failing with "database is locked".
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file (not :memory:) so threads in concurrency tests share it; one per test process.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"outbound-test-{os.getpid()}.sqlite3")
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

CACHES = {
    # A database cache keeps throttling counters shared by every gunicorn worker: Django's
    # table and rows, written with one upsert per set (outbound.core.cache).
    "default": {
        "BACKEND": "outbound.core.cache.DatabaseCache",
        "LOCATION": "outbound_cache",
        # Room for every throttled username; culling would forget failed logins. The size is
        # checked on each process's first write and every CULL_CHECK_INTERVAL-th after it.
        "OPTIONS": {"MAX_ENTRIES": 100_000, "CULL_FREQUENCY": 10, "CULL_CHECK_INTERVAL": 100},
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"
# The console's session: HttpOnly, SameSite=Lax, and over HTTPS only when served behind it.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _env_bool("OUTBOUND_SECURE_COOKIES")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_AGE = int(os.environ.get("OUTBOUND_SESSION_AGE", str(8 * 3600)))
STATIC_ROOT = None  # assets come straight from the apps (WhiteNoise finders)
# Find static files in the installed apps directly, so no collectstatic step is needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "outbound.core.authentication.OutboundJWTAuthentication",
        "outbound.core.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["outbound.core.permissions.HasOutboundPermission"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": [
        "outbound.core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "outbound.core.pagination.CountingLimitOffsetPagination",
    "DEFAULT_SCHEMA_CLASS": "outbound.core.api.schema.OutboundAutoSchema",
    "DEFAULT_METADATA_CLASS": "rest_framework.metadata.SimpleMetadata",
    "EXCEPTION_HANDLER": "outbound.core.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "PAGE_SIZE": 20,
}

SIMPLE_JWT = {
    "AUTH_HEADER_TYPES": ("JWT", "Bearer"),
    "ACCESS_TOKEN_LIFETIME": __import__("datetime").timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": __import__("datetime").timedelta(days=1),
    "UPDATE_LAST_LOGIN": False,
    # A password change ends the tokens issued before it.
    "CHECK_REVOKE_TOKEN": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Outbound API",
    "DESCRIPTION": "Outbound owns a platform's outbound connections: SMTP and integrations.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "EventSource": "outbound.core.events.SOURCE_VALUES",
        "SmtpSecurity": "outbound.mail.choices.SECURITY_NAMES",
    },
}

# Django's Tasks API (the django-tasks backport): the database backend by default, so the
# database alone suffices; another backend (e.g. django_tasks_rq.RQBackend on Redis) is this
# one setting away.
TASKS = {
    "default": {
        "BACKEND": os.environ.get("OUTBOUND_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
    }
}

# --- Outbound's own settings -------------------------------------------------------------
OUTBOUND_SECRET_KEY = os.environ.get("OUTBOUND_SECRET_KEY", "")
OUTBOUND_SECRET_KEY_FILE = VAR_DIR / "secret.key"
OUTBOUND_EGRESS_ALLOW = os.environ.get("OUTBOUND_EGRESS_ALLOW", "")
OUTBOUND_SMTP_TIMEOUT = float(os.environ.get("OUTBOUND_SMTP_TIMEOUT", "10"))
OUTBOUND_TEST_RATE = os.environ.get("OUTBOUND_TEST_RATE", "30/min")
OUTBOUND_SMTP_CA_FILE = os.environ.get("OUTBOUND_SMTP_CA_FILE", "")
OUTBOUND_SMTP_HELO_NAME = os.environ.get("OUTBOUND_SMTP_HELO_NAME", "")
# Failed logins allowed per username within the window before further attempts get 429.
OUTBOUND_LOGIN_FAILURES = int(os.environ.get("OUTBOUND_LOGIN_FAILURES", "5"))
OUTBOUND_LOGIN_WINDOW = int(os.environ.get("OUTBOUND_LOGIN_WINDOW", "900"))
OUTBOUND_BENCH = _env_bool("OUTBOUND_BENCH")
# GET /metrics answers only "Authorization: Bearer <this>" (a 404 while it is unset). Every
# process counts into files in PROMETHEUS_MULTIPROC_DIR (var/metrics by default), which
# prometheus-client reads when first imported: set here, before anything imports it.
OUTBOUND_METRICS_TOKEN = os.environ.get("OUTBOUND_METRICS_TOKEN", "")
OUTBOUND_METRICS_DIR = Path(
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics"))
)
# The sender. Retries back off exponentially (with jitter) between the minimum and maximum,
# and a message is given up after the maximum age — Postfix's defaults (300 s, 4000 s,
# 5 days).
OUTBOUND_RETRY_MIN_BACKOFF = float(os.environ.get("OUTBOUND_RETRY_MIN_BACKOFF", "300"))
OUTBOUND_RETRY_MAX_BACKOFF = float(os.environ.get("OUTBOUND_RETRY_MAX_BACKOFF", "4000"))
OUTBOUND_MAX_MESSAGE_AGE = float(os.environ.get("OUTBOUND_MAX_MESSAGE_AGE", str(5 * 86400)))
# How long a worker holds the messages it claimed without renewing the lease (its heartbeat
# renews it every third of this while it works): a killed or frozen worker's messages go to
# the others a third of this after it ran out (at most 16 s after the worker died).
OUTBOUND_SEND_LEASE = float(os.environ.get("OUTBOUND_SEND_LEASE", "12"))
# How often a running worker reports itself alive (``/readyz`` counts those seen in 30 s).
OUTBOUND_WORKER_BEAT = float(os.environ.get("OUTBOUND_WORKER_BEAT", "5"))
# How long an idle SMTP connection is kept open for the next message.
OUTBOUND_SMTP_IDLE = float(os.environ.get("OUTBOUND_SMTP_IDLE", "30"))
# Failover (issue 14): after this many consecutive server-level failures of the active SMTP
# configuration the sender switches to the best-ranked standby whose probe passed; while it
# serves, the primary is probed every OUTBOUND_FAILBACK_PROBE seconds and serves again once
# the probe passes.
OUTBOUND_FAILOVER_AFTER = int(os.environ.get("OUTBOUND_FAILOVER_AFTER", "3"))
OUTBOUND_FAILBACK_PROBE = float(os.environ.get("OUTBOUND_FAILBACK_PROBE", "60"))
# Refused at startup below 1: 0 failures would fail over at once, a probe every instant
# would hammer the servers (and a negative one never waits).
if OUTBOUND_FAILOVER_AFTER < 1 or not OUTBOUND_FAILBACK_PROBE >= 1:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "OUTBOUND_FAILOVER_AFTER and OUTBOUND_FAILBACK_PROBE must be at least 1 "
        f"(got {OUTBOUND_FAILOVER_AFTER} and {OUTBOUND_FAILBACK_PROBE:g})"
    )
# How many due messages a worker claims at a time (sent over one connection, results written
# together; a worker killed mid-batch leaves at most this many for the others after the lease).
OUTBOUND_WORKER_BATCH = int(os.environ.get("OUTBOUND_WORKER_BATCH", "50"))
# The largest request body of POST /api/messages/batch/ (up to 500 messages); larger is a 413.
OUTBOUND_MAX_BATCH_BYTES = int(os.environ.get("OUTBOUND_MAX_BATCH_BYTES", str(50 * 1024 * 1024)))
# The largest message a service may submit: text, html and attachments (decoded) together.
OUTBOUND_MAX_MESSAGE_BYTES = int(
    os.environ.get("OUTBOUND_MAX_MESSAGE_BYTES", str(25 * 1024 * 1024))
)
# Delivery webhooks: how long one POST may take, the delays between attempts (seconds; the
# last one repeats) and how long after an event it is still retried.
OUTBOUND_WEBHOOK_TIMEOUT = float(os.environ.get("OUTBOUND_WEBHOOK_TIMEOUT", "10"))
OUTBOUND_WEBHOOK_BACKOFF = tuple(
    float(s)
    for s in os.environ.get(
        "OUTBOUND_WEBHOOK_BACKOFF", "10,30,120,600,1800,3600,7200,14400,28800"
    ).split(",")
    if s.strip()
)
OUTBOUND_WEBHOOK_MAX_AGE = float(os.environ.get("OUTBOUND_WEBHOOK_MAX_AGE", str(24 * 3600)))
# Attachments are files in Django's default storage (var/attachments/, private like var/),
# never in the database or a task's arguments; another storage backend is this setting away.
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": str(VAR_DIR / "attachments"),
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
        },
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# text (as always) or json: one JSON object per line (outbound.core.logging), gunicorn's too.
OUTBOUND_LOG_FORMAT = os.environ.get("OUTBOUND_LOG_FORMAT", "").strip().lower() or "text"
if OUTBOUND_LOG_FORMAT not in {"text", "json"}:
    raise ValueError(f"OUTBOUND_LOG_FORMAT must be text or json, not {OUTBOUND_LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "outbound.core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if OUTBOUND_LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("OUTBOUND_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

from outbound.core.files import private_dir, private_sqlite  # noqa: E402
from outbound.core.secrets import django_secret_key  # noqa: E402

# var/ holds keys, the database (sessions, sealed secrets, message bodies): 0700, files 0600 —
# prepared only when Outbound keeps something there (a deployment with PostgreSQL and both keys
# in the environment never touches it).
_SQLITE = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if not (SECRET_KEY and OUTBOUND_SECRET_KEY) or (
    _SQLITE and Path(str(DATABASES["default"]["NAME"])).parent == VAR_DIR
):
    private_dir(VAR_DIR)
if OUTBOUND_METRICS_DIR.parent == VAR_DIR:
    private_dir(VAR_DIR)
private_dir(OUTBOUND_METRICS_DIR)
if _SQLITE:
    private_sqlite(DATABASES["default"]["NAME"])
SECRET_KEY = SECRET_KEY or django_secret_key(VAR_DIR / "django-secret.key")
