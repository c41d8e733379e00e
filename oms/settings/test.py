"""Tests: MariaDB/MySQL and Redis when DATABASE_URL / REDIS_URL point at them, SQLite and inline jobs otherwise.

Jobs run inline by default even with Redis, so tests are deterministic; tests of Redis behaviour switch
OMS_JOBS_INLINE off and drain the queue with a worker themselves.
"""

from oms.settings.base import *  # noqa: F403
from oms.settings.base import DATABASES, env

DEBUG = False
SECRET_KEY = "test-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"
FIELD_ENCRYPTION_KEYS = ["dGVzdC1vbmx5LWtleS0wMTIzNDU2Nzg5YWJjZGVmZ2g="]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
OMS_JOBS_INLINE = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["*"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if "mysql" in str(DATABASES["default"]["ENGINE"]):
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
DATABASES["default"]["CONN_MAX_AGE"] = 0
TEST_ARTIFACTS_DIR = env.str("TEST_ARTIFACTS_DIR", default="test-artifacts")
