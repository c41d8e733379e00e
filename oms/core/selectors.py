"""Reads of the core: which channels a user may see."""

from __future__ import annotations

import threading
import time

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from oms.core.models import SalesChannel

CHANNEL_ACCESS_PERM = "core.access_channel"

# Webhook intake looks its channel up on every delivery; a few seconds of per-process caching takes an ORM query
# and three decryptions off that path. Saving a channel clears this process's cache at once; other processes
# see a change (a new secret, a deactivation) within WEBHOOK_CHANNEL_TTL seconds.
WEBHOOK_CHANNEL_TTL = 5.0
_webhook_channels: dict[str, tuple[float, SalesChannel | None]] = {}
_webhook_lock = threading.Lock()


def channel_for_webhook(slug: str) -> SalesChannel | None:
    """The active channel with this slug, or None."""
    now = time.monotonic()
    cached = _webhook_channels.get(slug)
    if cached is not None and cached[0] > now:
        return cached[1]
    channel = SalesChannel.objects.filter(slug=slug, active=True).first()
    with _webhook_lock:
        if len(_webhook_channels) > 1000:  # slugs probed by strangers must not grow this without bound
            _webhook_channels.clear()
        _webhook_channels[slug] = (now + WEBHOOK_CHANNEL_TTL, channel)
    return channel


def channel_cache_clear() -> None:
    with _webhook_lock:
        _webhook_channels.clear()


def channels_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[SalesChannel]:
    """Every channel for holders of the global permission; otherwise those granted per channel (guardian)."""
    if not user.is_authenticated:
        return SalesChannel.objects.none()
    return get_objects_for_user(user, CHANNEL_ACCESS_PERM, klass=SalesChannel, accept_global_perms=True)
