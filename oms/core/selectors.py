"""Reads of the core: which channels a user may see."""

from __future__ import annotations

import threading
import time

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from oms.core.models import Alert, SalesChannel

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


ALERTS_PERM = "core.view_alerts"


def alerts_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Alert]:
    """Alerts a user may see: those of channels they may see, and those of no channel; none without the perm."""
    if not user.is_authenticated or not getattr(user, "has_perm", lambda _: False)(ALERTS_PERM):
        return Alert.objects.none()
    return Alert.objects.filter(Q(channel__isnull=True) | Q(channel__in=channels_visible_to(user)))


def alerts_with_read_state(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Alert]:
    from oms.core.models import AlertReceipt

    return alerts_visible_to(user).annotate(
        is_read=Exists(AlertReceipt.objects.filter(alert=OuterRef("pk"), user_id=int(user.pk or 0)))
    )


def alerts_unread_count(user: AbstractBaseUser | AnonymousUser) -> int:
    """Open alerts the user has not read (resolved ones no longer call for attention)."""
    from oms.core.models import AlertReceipt

    read = AlertReceipt.objects.filter(alert=OuterRef("pk"), user_id=int(user.pk or 0))
    return alerts_visible_to(user).filter(~Exists(read), resolved_at__isnull=True).count()


def alert_recipients(alert: Alert) -> list[str]:
    """E-mail addresses of active managers and admins who may see this alert."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    return sorted(
        {
            u.email
            for u in users
            if u.has_perm(ALERTS_PERM)
            and (u.groups.filter(name__in=("Manager", "Admin")).exists() or u.is_superuser)
            and (alert.channel_id is None or channels_visible_to(u).filter(pk=alert.channel_id).exists())
        }
    )
