"""Settings shared by every situation, read from the environment (django-environ).

Secrets and hosts come from the environment; nothing here may hold a real credential.
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_rq",
    "guardian",
    "oms.core",
    "inventory",
    "oms.orders",
    "dispatch",
    "reporting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "oms.urls"
WSGI_APPLICATION = "oms.wsgi.application"
ASGI_APPLICATION = "oms.asgi.application"

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
                "oms.core.context_processors.navigation",
            ],
        },
    },
]


def database_from_env(url: str) -> dict[str, object]:
    """DATABASE_URL → Django's dict, with the options each engine needs to be safe under concurrency."""
    db = environ.Env.db_url_config(url)
    engine = str(db["ENGINE"])
    options = dict(db.get("OPTIONS", {}))  # type: ignore[call-overload]
    if "mysql" in engine:
        options.setdefault("charset", "utf8mb4")
        # The connection's collation must match the tables' (test databases are created with this one), or
        # comparisons across them fail with "Illegal mix of collations".
        options.setdefault("collation", "utf8mb4_unicode_ci")
        # READ COMMITTED: locking reads see rows other transactions committed, so upserts that lose a
        # unique-key race can re-read the winner's row.
        options.setdefault("isolation_level", "read committed")
        options.setdefault("init_command", "SET sql_mode='STRICT_TRANS_TABLES'")
    elif "sqlite" in engine:
        # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue instead of failing.
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", 20)
        options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
    db["OPTIONS"] = options
    db.setdefault("CONN_MAX_AGE", 60)
    db["CONN_HEALTH_CHECKS"] = True
    return db  # type: ignore[return-value]


DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": database_from_env(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: unset means every queue runs its jobs inline (the embedded default needs no server).
REDIS_URL = env.str("REDIS_URL", default="")
OMS_JOBS_INLINE = not REDIS_URL
_rq_queue = (
    {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600}
    if REDIS_URL
    else {"URL": "redis://127.0.0.1:6379/0", "ASYNC": False, "DEFAULT_TIMEOUT": 600}
)
# high: stock fan-out and anything a customer waits on; default: order intake; low: backfills, sweeps.
RQ_QUEUES = {name: dict(_rq_queue) for name in ("high", "default", "low")}
RQ = {"COMMIT_MODE": "auto"}  # we enqueue explicitly in transaction.on_commit (oms.core.jobs)
RQ_SHOW_ADMIN_LINK = True

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    # Sessions read from Redis and written through to the database: one query less on every staff request,
    # and nobody is signed out when Redis restarts.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "oms.core.auth.CachedModelBackend",  # ModelBackend with each user's permissions kept in the cache
    "guardian.backends.ObjectPermissionBackend",
]
GUARDIAN_RAISE_403 = True
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "var" / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media"))

# Labels, slips and manifests go through Django's storage API: local media by default, S3 (or any S3-compatible
# store) when AWS_STORAGE_BUCKET_NAME is set. Files are private: links are signed and expire.
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    DEFAULT_FILE_STORAGE_BACKEND = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="auto"),
            "signature_version": "s3v4",
            "querystring_auth": True,
            "querystring_expire": 3600,
            "file_overwrite": False,
            "default_acl": None,
        },
    }
else:
    DEFAULT_FILE_STORAGE_BACKEND = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": DEFAULT_FILE_STORAGE_BACKEND,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="OMS <oms@localhost>")
OMS_BASE_URL = env.str("OMS_BASE_URL", default="http://127.0.0.1:8000")  # for links in e-mails
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)

# Keys for credentials and webhook secrets at rest (Fernet, url-safe base64 of 32 bytes). The first one
# encrypts; all of them decrypt, so a key can be rotated by prepending a new one.
FIELD_ENCRYPTION_KEYS: list[str] = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# Webhook intake
WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
# An inbox row still pending after this long was never picked up (Redis was down): the sweeper re-enqueues it.
INBOX_SWEEP_AFTER_SECONDS = env.int("INBOX_SWEEP_AFTER_SECONDS", default=120)
# An inventory webhook that disagrees with the master counts as drift only after this long with no push to explain it.
STOCK_DRIFT_GRACE_SECONDS = env.int("STOCK_DRIFT_GRACE_SECONDS", default=120)
# The drift sweep (every minute) looks at what channels reported within this window; older reports are the
# scheduled reconciliation's to find.
STOCK_DRIFT_LOOKBACK_SECONDS = env.int("STOCK_DRIFT_LOOKBACK_SECONDS", default=6 * 3600)
INBOX_MAX_ATTEMPTS = 8
ORDER_BACKFILL_OVERLAP_SECONDS = 300
# An order whose channel names no ship-by date must leave this many working days after the sale.
SHIP_BY_BUSINESS_DAYS = env.int("SHIP_BY_BUSINESS_DAYS", default=2)

# Dispatch
# A packer holds an order this long without scanning before it goes back to the queue.
PACK_CLAIM_MINUTES = env.int("PACK_CLAIM_MINUTES", default=20)
# Tracking is polled this often for parcels in transit; no movement for this many days is "stuck".
TRACKING_POLL_MINUTES = env.int("TRACKING_POLL_MINUTES", default=60)
STUCK_NO_MOVEMENT_DAYS = env.int("STUCK_NO_MOVEMENT_DAYS", default=4)
STUCK_ON_HOLD_DAYS = env.int("STUCK_ON_HOLD_DAYS", default=3)
# Who the customer e-mails come from, and the shop name they sign with.
SHOP_NAME = env.str("SHOP_NAME", default="Our shop")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"rq.worker": {"level": "WARNING"}},
}
