"""Local development: the embedded default (SQLite, inline jobs) unless DATABASE_URL / REDIS_URL say otherwise."""

from oms.settings.base import *  # noqa: F403
from oms.settings.base import SECRET_KEY, env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = SECRET_KEY or "local-development-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz"
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[]) or [
    "bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1zZWNyZXQ="
]
