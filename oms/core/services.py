"""Writes of the core: the audit trail and sales-channel configuration."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from oms.core.models import Alert, AlertReceipt, AuditEntry, SalesChannel

Actor = AbstractBaseUser | AnonymousUser | None


def acting_user(actor: Actor) -> User | None:
    """The signed-in user behind an action, or None when the system (a job, a webhook) acted."""
    return actor if isinstance(actor, User) and actor.is_authenticated else None


def actor_label_for(actor: Actor, *, system: str = "system") -> str:
    if actor is None or not getattr(actor, "is_authenticated", False):
        return system
    return str(actor.get_username())


def audit_record(
    *,
    actor: Actor,
    verb: str,
    obj: models.Model | None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str = "",
    system: str = "system",
) -> AuditEntry:
    """Append one row to the audit trail; call it inside the transaction that made the change."""
    return AuditEntry.objects.create(
        actor=acting_user(actor),
        actor_label=actor_label_for(actor, system=system),
        verb=verb,
        content_type=ContentType.objects.get_for_model(obj) if obj is not None else None,
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        before=dict(before or {}),
        after=dict(after or {}),
        reason=reason,
    )


def _channel_snapshot(channel: SalesChannel) -> dict[str, Any]:
    # Secrets are never written to the audit trail: only whether they are set.
    return {
        "kind": channel.kind,
        "name": channel.name,
        "active": channel.active,
        "api_base_url": channel.api_base_url,
        "options": dict(channel.options),
        "credentials": sorted(channel.credentials),
        "webhook_secret_set": bool(channel.webhook_secret),
        "previous_secret_set": bool(channel.webhook_secret_previous),
    }


def _apply_secrets(channel: SalesChannel, *, credentials: Mapping[str, str], webhook_secret: str | None) -> None:
    """Merge new credentials; a new webhook secret keeps the current one accepted as previous (rotation)."""
    if credentials:
        channel.credentials = {**channel.credentials, **credentials}
    if webhook_secret and webhook_secret != channel.webhook_secret:
        channel.webhook_secret_previous = channel.webhook_secret
        channel.webhook_secret = webhook_secret


@transaction.atomic
def channel_save_edited(
    *,
    channel: SalesChannel,
    credentials: Mapping[str, str],
    webhook_secret: str | None,
    actor: Actor,
    system: str = "admin",
) -> SalesChannel:
    """Save a channel whose plain fields a form has already set (the admin), applying new secrets the same way
    `channel_save` does, with its audit row."""
    stored = SalesChannel.objects.select_for_update().filter(pk=channel.pk).first() if channel.pk else None
    before = _channel_snapshot(stored) if stored is not None else {}
    if stored is not None:  # secrets are never in the form: start from what is stored
        channel.credentials = stored.credentials
        channel.webhook_secret = stored.webhook_secret
        channel.webhook_secret_previous = stored.webhook_secret_previous
    _apply_secrets(channel, credentials=credentials, webhook_secret=webhook_secret)
    channel.save()
    audit_record(
        actor=actor,
        verb="channel.update" if stored is not None else "channel.create",
        obj=channel,
        before=before,
        after=_channel_snapshot(channel),
        system=system,
    )
    return channel


@transaction.atomic
def channel_save(
    *,
    kind: str,
    slug: str,
    name: str,
    api_base_url: str,
    options: Mapping[str, str],
    credentials: Mapping[str, str],
    webhook_secret: str | None,
    active: bool | None = None,
    actor: Actor = None,
) -> tuple[SalesChannel, bool]:
    """Create or update a channel by slug. A new webhook secret keeps the old one as previous (rotation)."""
    channel = SalesChannel.objects.select_for_update().filter(slug=slug).first()
    created = channel is None
    if channel is None:
        channel = SalesChannel(slug=slug, kind=kind)
        before: dict[str, Any] = {}
    else:
        if channel.kind != kind:
            raise ValueError(f"channel {slug!r} is a {channel.kind} channel, not {kind}")
        before = _channel_snapshot(channel)
    channel.name = name
    if api_base_url:
        channel.api_base_url = api_base_url
    channel.options = {**channel.options, **options}
    _apply_secrets(channel, credentials=credentials, webhook_secret=webhook_secret)
    if active is not None:
        channel.active = active
    channel.full_clean()
    channel.save()
    audit_record(
        actor=actor,
        verb="channel.create" if created else "channel.update",
        obj=channel,
        before=before,
        after=_channel_snapshot(channel),
        system="manage.py add_channel",
    )
    return channel, created


@transaction.atomic
def channel_end_secret_rotation(*, channel: SalesChannel, actor: Actor) -> SalesChannel:
    """Stop accepting the previous webhook secret."""
    channel = SalesChannel.objects.select_for_update().get(pk=channel.pk)
    if channel.webhook_secret_previous:
        channel.webhook_secret_previous = ""
        channel.save(update_fields=["webhook_secret_previous", "updated_at"])
        audit_record(actor=actor, verb="channel.secret_rotation_ended", obj=channel)
    return channel


# ---------------------------------------------------------------------------------------------------------
# Alerts

ALERT_EMAIL_JOB = "oms.core.jobs.alert_email"


def alert_raise(
    *,
    kind: str,
    title: str,
    message: str = "",
    severity: str = Alert.Severity.WARNING,
    channel: SalesChannel | None = None,
    link: str = "",
    dedupe_key: str = "",
    email: bool = True,
) -> Alert:
    """Raise an alert, or bump the open one with the same `dedupe_key` (it becomes unread again).

    A new alert is e-mailed to the managers who may see it once the transaction commits, unless `email` is
    False (many alerts at once, which the caller sums up in one e-mailed alert instead).
    """
    from oms.core.queue import enqueue_after_commit

    now = timezone.now()
    with transaction.atomic():
        if dedupe_key:
            open_alert = (
                Alert.objects.select_for_update().filter(dedupe_key=dedupe_key, resolved_at__isnull=True).first()
            )
            if open_alert is not None:
                Alert.objects.filter(pk=open_alert.pk).update(
                    occurrences=F("occurrences") + 1, last_raised_at=now, message=message, title=title[:200]
                )
                AlertReceipt.objects.filter(alert=open_alert).delete()
                open_alert.refresh_from_db()
                return open_alert
        alert = Alert.objects.create(
            kind=kind,
            severity=severity,
            title=title[:200],
            message=message,
            link=link[:300],
            channel=channel,
            dedupe_key=dedupe_key[:191],
            last_raised_at=now,
        )
        if email:
            enqueue_after_commit(ALERT_EMAIL_JOB, alert.pk, queue="low")
    return alert


def alert_raise_many(*, alerts: Sequence[Alert], email: bool = False, batch: int = 1000) -> int:
    """`alert_raise` for many problems at once (one per mismatch a reconciliation found): unsaved Alert rows are
    inserted in batches; one whose `dedupe_key` already has an open alert bumps that one instead. Not e-mailed
    unless `email` (the caller sends one summary). Returns how many were created."""
    from oms.core.queue import enqueue_after_commit

    now = timezone.now()
    created = 0
    with transaction.atomic():
        for start in range(0, len(alerts), batch):
            chunk = list(alerts[start : start + batch])
            keys = {a.dedupe_key[:191] for a in chunk if a.dedupe_key}
            already = set(
                Alert.objects.filter(dedupe_key__in=keys, resolved_at__isnull=True).values_list("dedupe_key", flat=True)
            )
            if already:
                bumped = Alert.objects.filter(dedupe_key__in=already, resolved_at__isnull=True)
                AlertReceipt.objects.filter(alert__in=bumped).delete()
                bumped.update(occurrences=F("occurrences") + 1, last_raised_at=now)
            fresh = []
            for alert in chunk:
                alert.dedupe_key = alert.dedupe_key[:191]
                if alert.dedupe_key and alert.dedupe_key in already:
                    continue
                alert.title, alert.link, alert.last_raised_at = alert.title[:200], alert.link[:300], now
                fresh.append(alert)
                already.add(alert.dedupe_key)  # the same key twice in one call: one alert
            Alert.objects.bulk_create(fresh)
            created += len(fresh)
            if email:
                for alert in fresh:
                    if alert.pk is not None:
                        enqueue_after_commit(ALERT_EMAIL_JOB, alert.pk, queue="low")
    return created


def alert_resolve(*, dedupe_key: str) -> int:
    """The problem behind an alert went away (a hold released, a mismatch corrected). Returns how many."""
    if not dedupe_key:
        return 0
    return Alert.objects.filter(dedupe_key=dedupe_key, resolved_at__isnull=True).update(resolved_at=timezone.now())


def alert_resolve_many(*, dedupe_keys: Iterable[str], batch: int = 1000) -> int:
    """`alert_resolve` for many problems at once (a reconciliation's mismatches gone), in batches."""
    keys = sorted({key for key in dedupe_keys if key})
    now = timezone.now()
    resolved = 0
    for start in range(0, len(keys), batch):
        resolved += Alert.objects.filter(dedupe_key__in=keys[start : start + batch], resolved_at__isnull=True).update(
            resolved_at=now
        )
    return resolved


def alert_mark_read(*, user: User, alerts: Iterable[Alert]) -> int:
    """Mark alerts read for one user; marking twice is harmless. Returns how many were newly marked."""
    ids = {a.pk for a in alerts}
    already = set(AlertReceipt.objects.filter(user=user, alert_id__in=ids).values_list("alert_id", flat=True))
    AlertReceipt.objects.bulk_create(
        [AlertReceipt(alert_id=pk, user=user) for pk in sorted(ids - already)], ignore_conflicts=True
    )
    return len(ids - already)
