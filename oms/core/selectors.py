"""Reads of the core: which channels a user may see."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from oms.core.models import SalesChannel

CHANNEL_ACCESS_PERM = "core.access_channel"


def channels_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[SalesChannel]:
    """Every channel for holders of the global permission; otherwise those granted per channel (guardian)."""
    if not user.is_authenticated:
        return SalesChannel.objects.none()
    return get_objects_for_user(user, CHANNEL_ACCESS_PERM, klass=SalesChannel, accept_global_perms=True)
