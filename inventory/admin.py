"""Admin for the catalog and stock. Levels, movements and allocations are read-only here: they change only
through inventory.services, which keeps the ledger and the outbox in step."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from inventory.models import (
    Allocation,
    Bin,
    BundleComponent,
    CatalogExport,
    CatalogImport,
    ChannelListing,
    Location,
    Product,
    ReconcileRun,
    StockChange,
    StockLevel,
    StockMismatch,
    StockMovement,
    Variant,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ("sku", "barcode", "title", "sale_price", "active")
    show_change_link = True


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("title", "vendor", "updated_at")
    search_fields = ("title", "vendor", "variants__sku")
    inlines = [VariantInline]


class BundleComponentInline(admin.TabularInline):
    model = BundleComponent
    fk_name = "bundle"
    extra = 0
    readonly_fields = ("component", "quantity")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # bundles change through inventory.services.bundle_set_components


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ("sku", "product", "title", "barcode", "sale_price", "low_stock_threshold", "is_bundle", "active")
    list_filter = ("active", "is_bundle")
    search_fields = ("sku", "barcode", "title", "product__title")
    list_select_related = ("product",)
    raw_id_fields = ("product",)
    inlines = [BundleComponentInline]


@admin.register(BundleComponent)
class BundleComponentAdmin(ReadOnlyAdmin):
    list_display = ("bundle", "component", "quantity")
    search_fields = ("bundle__sku", "component__sku")
    list_select_related = ("bundle", "component")


class BinInline(admin.TabularInline):
    model = Bin
    extra = 0


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "priority", "active")
    list_filter = ("active",)
    search_fields = ("code", "name")
    inlines = [BinInline]


@admin.register(Bin)
class BinAdmin(admin.ModelAdmin):
    list_display = ("code", "location")
    list_filter = ("location",)
    search_fields = ("code",)


@admin.register(StockLevel)
class StockLevelAdmin(ReadOnlyAdmin):
    list_display = ("variant", "location", "on_hand", "allocated", "bin", "updated_at")
    list_filter = ("location",)
    search_fields = ("variant__sku",)
    list_select_related = ("variant", "location", "bin")


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "variant", "location", "delta_on_hand", "delta_allocated", "reason", "reference")
    list_filter = ("reason", "location")
    search_fields = ("variant__sku", "reference", "note", "actor_label")
    date_hierarchy = "created_at"
    list_select_related = ("variant", "location")


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdmin):
    list_display = ("reference", "line", "variant", "location", "quantity", "created_at")
    search_fields = ("reference", "variant__sku")
    list_select_related = ("variant", "location")


@admin.register(StockChange)
class StockChangeAdmin(ReadOnlyAdmin):
    list_display = ("id", "variant", "urgent", "created_at")
    list_filter = ("urgent",)
    list_select_related = ("variant",)


@admin.register(ChannelListing)
class ChannelListingAdmin(admin.ModelAdmin):
    list_display = (
        "variant",
        "channel",
        "external_id",
        "last_pushed_quantity",
        "last_seen_quantity",
        "push_pending",
        "paused",
        "exclusive",
    )
    list_filter = ("channel", "push_pending", "paused", "exclusive")
    search_fields = ("variant__sku", "external_id", "channel_sku")
    list_select_related = ("variant", "channel")
    raw_id_fields = ("variant",)
    readonly_fields = (
        "push_pending",
        "push_urgent",
        "push_seq",
        "pending_since",
        "last_pushed_quantity",
        "last_pushed_at",
        "last_seen_quantity",
        "last_seen_at",
        "push_failures",
        "last_error",
    )


@admin.register(ReconcileRun)
class ReconcileRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "channel", "trigger", "status", "listings_seen", "mismatches", "corrected")
    list_filter = ("channel", "status")


@admin.register(StockMismatch)
class StockMismatchAdmin(ReadOnlyAdmin):
    list_display = ("detected_at", "channel", "kind", "sku", "master_quantity", "channel_quantity", "resolution")
    list_filter = ("channel", "kind", "resolution", "source")
    search_fields = ("sku", "external_id")
    list_select_related = ("channel",)


@admin.register(CatalogImport)
class CatalogImportAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "file_name", "file_format", "status", "rows", "error_count", "created_by")
    list_filter = ("status", "file_format")
    search_fields = ("file_name",)
    exclude = ("content",)


@admin.register(CatalogExport)
class CatalogExportAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "file_format", "status", "rows", "created_by", "finished_at")
    list_filter = ("status", "file_format")
    list_select_related = ("created_by",)
    exclude = ("file",)  # downloads go through the staff screen, which checks the permission
    readonly_fields = ("stored_as",)

    @admin.display(description="Stored as")
    def stored_as(self, obj: CatalogExport) -> str:
        return obj.file.name or "—"
