"""Admin for the core: the inbox (read-mostly) and the audit trail (read-only). Channels are registered in
oms.orders.admin because their form needs the adapter registry."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from oms.core.models import Alert, AlertReceipt, AuditEntry, InboundEvent


@admin.register(InboundEvent)
class InboundEventAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "channel",
        "topic",
        "event_key",
        "status",
        "attempts",
        "received_at",
        "processed_at",
    )
    list_filter = ("status", "channel", "topic")
    search_fields = ("event_key", "resource_id")
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in InboundEvent._meta.fields]
    list_select_related = ("channel",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_label", "verb", "content_type", "object_repr", "reason")
    list_filter = ("verb", "content_type")
    search_fields = ("actor_label", "object_repr", "object_id", "reason")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    list_select_related = ("content_type",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AlertReceiptInline(admin.TabularInline):
    model = AlertReceipt
    extra = 0
    readonly_fields = ("user", "read_at")
    can_delete = False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("last_raised_at", "severity", "kind", "title", "channel", "occurrences", "resolved_at")
    list_filter = ("severity", "kind", "channel", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("title", "message", "dedupe_key")
    date_hierarchy = "last_raised_at"
    readonly_fields = ("kind", "dedupe_key", "occurrences", "created_at", "last_raised_at", "emailed_at")
    list_select_related = ("channel",)
    inlines = [AlertReceiptInline]


@admin.register(AlertReceipt)
class AlertReceiptAdmin(admin.ModelAdmin):
    list_display = ("alert", "user", "read_at")
    list_select_related = ("alert", "user")
    search_fields = ("alert__title", "user__username")
