"""Model permissions read from the cache: every staff request checks them, and two queries a request add up.

The cache entry of a user is keyed by a version that any change to users' groups, users' own permissions,
or a group's permissions bumps, so a change applies on the very next request, in every process that
shares the cache (Redis in production). Superusers and inactive users take ModelBackend's own path.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.core.cache import cache
from django.db.models.signals import m2m_changed, post_delete
from django.dispatch import receiver

VERSION_KEY = "oms:perms:version"
TTL = 300  # seconds; only a bound on memory, correctness comes from the version


def _version() -> int:
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, 1, timeout=None)
        version = cache.get(VERSION_KEY) or 1
    return int(version)


def permissions_changed() -> None:
    """Call after changing roles outside the ORM's m2m relations (raw SQL, fixtures): every cached set expires."""
    try:
        cache.incr(VERSION_KEY)
    except ValueError:
        cache.add(VERSION_KEY, 2, timeout=None)


class CachedModelBackend(ModelBackend):
    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if obj is not None or not getattr(user_obj, "is_active", False) or user_obj.is_anonymous:
            return super().get_all_permissions(user_obj, obj)
        if user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            key = f"oms:perms:{_version()}:{user_obj.pk}"
            cached = cache.get(key)
            if cached is None:
                cached = sorted(super().get_all_permissions(user_obj, obj))
                cache.set(key, cached, TTL)
            user_obj._perm_cache = set(cached)
        return set(user_obj._perm_cache)


@receiver(m2m_changed, sender=User.groups.through)
@receiver(m2m_changed, sender=User.user_permissions.through)
@receiver(m2m_changed, sender=Group.permissions.through)
def _roles_changed(**kwargs: Any) -> None:
    if kwargs.get("action", "").startswith("post_"):
        permissions_changed()


@receiver(post_delete, sender=Group)
@receiver(post_delete, sender=Permission)
def _role_deleted(**kwargs: Any) -> None:
    permissions_changed()
