"""Sales channels, the inbound-event inbox and the append-only audit trail."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from oms.core.fields import CompressedTextField, EncryptedJSONField, EncryptedTextField


class DriftPolicy(models.TextChoices):
    ALERT = "alert", "Alert only; staff correct it"
    CORRECT = "correct", "Push the master's quantity back"
    ACCEPT = "accept", "Accept the channel's quantity as a stock adjustment"


class SalesChannel(models.Model):
    """One storefront we sell on. Credentials and webhook secrets are encrypted at rest."""

    kind = models.CharField(max_length=32, help_text="Adapter kind, e.g. shopify")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=64, unique=True, help_text="Appears in the webhook URL")
    active = models.BooleanField(default=True)
    api_base_url = models.URLField(max_length=300, blank=True)
    options = models.JSONField(default=dict, blank=True, help_text="Non-secret settings, e.g. shop_domain")
    credentials = EncryptedJSONField(blank=True, default=dict)
    webhook_secret = EncryptedTextField(blank=True, default="")
    webhook_secret_previous = EncryptedTextField(
        blank=True, default="", help_text="Still accepted while the channel rotates to the new secret"
    )
    orders_synced_until = models.DateTimeField(
        null=True, blank=True, help_text="Backfill cursor: orders updated before this time are in"
    )
    backfill_every_minutes = models.PositiveIntegerField(default=15)
    reconcile_every_minutes = models.PositiveIntegerField(default=60, help_text="0: only on demand")
    stock_drift_policy = models.CharField(
        max_length=16,
        choices=DriftPolicy.choices,
        default=DriftPolicy.ALERT,
        help_text="What to do when the channel shows a quantity we did not push",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("access_channel", "Can work with this channel's orders")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        from oms.core.selectors import channel_cache_clear  # the cache lives with the reads

        channel_cache_clear()

    def webhook_secrets(self) -> list[str]:
        return [s for s in (self.webhook_secret, self.webhook_secret_previous) if s]


class InboundEvent(models.Model):
    """A webhook delivery, stored before it is acknowledged; unique per channel and the channel's event id."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        DEFERRED = "deferred", "Stored for later"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    channel = models.ForeignKey(SalesChannel, on_delete=models.PROTECT, related_name="inbound_events")
    event_key = models.CharField(max_length=191)
    topic = models.CharField(max_length=100)
    resource_id = models.CharField(max_length=64, blank=True)
    body = CompressedTextField(help_text="The raw JSON as delivered")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "event_key"], name="inbound_event_once_per_channel")]
        indexes = [models.Index(fields=["status", "received_at"], name="inbound_event_status_age")]
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.event_key}"


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise TypeError("the audit trail is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("the audit trail is append-only")


class AuditEntry(models.Model):
    """Who did what to which object, with the state before and after. Never updated, never deleted."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="The user, or the system part that acted")
    verb = models.CharField(max_length=64)
    content_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.PROTECT)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["content_type", "object_id", "created_at"], name="audit_object_time")]
        verbose_name_plural = "audit entries"
        constraints = [models.CheckConstraint(condition=~Q(verb=""), name="audit_entry_has_verb")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.verb} {self.object_repr}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise TypeError("the audit trail is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("the audit trail is append-only")


class Alert(models.Model):
    """Something staff must hear about: a stock mismatch, a held order, a failing channel.

    Shown in the staff UI's notification area to users who may see it (channel-scoped for managers), and
    e-mailed to managers once. `dedupe_key` keeps one open alert per problem: raising it again bumps it.
    """

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    kind = models.CharField(max_length=40, help_text="e.g. stock.mismatch, order.hold")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    link = models.CharField(max_length=300, blank=True, help_text="Where staff act on it")
    channel = models.ForeignKey(SalesChannel, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    dedupe_key = models.CharField(max_length=191, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    last_raised_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_raised_at", "-id"]
        indexes = [
            models.Index(fields=["resolved_at", "last_raised_at"], name="alert_open_time"),
            models.Index(fields=["dedupe_key", "resolved_at"], name="alert_dedupe"),
        ]
        permissions = [("view_alerts", "Can see alerts")]

    def __str__(self) -> str:
        return self.title


class AlertReceipt(models.Model):
    """A user has read an alert."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="receipts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alert", "user"], name="alert_read_once_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.alert_id}"
