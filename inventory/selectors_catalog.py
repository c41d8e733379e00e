"""Reads for catalog import and export: the export's rows (the import's format) and the state of the import and
export records. The export's progress key lives here, not in its service, because that service reads the rows
from this module."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from inventory.catalog_format import format_components, format_money, header_for
from inventory.models import BundleComponent, CatalogExport, CatalogImport, Location, StockLevel, Variant
from inventory.services_catalog import JOB_TIMEOUT, progress_key

_BATCH = 1000


def catalog_export_locations() -> list[Location]:
    return list(Location.objects.order_by("priority", "code"))


def catalog_export_header(locations: list[Location]) -> list[str]:
    return header_for(location.code for location in locations)


def _money(amount: Decimal | None) -> Decimal | None:
    return None if amount is None else Decimal(format_money(amount))


def catalog_export_count() -> int:
    """How many rows an export will have (for its progress bar)."""
    return Variant.objects.count()


def catalog_export_rows(*, locations: list[Location]) -> Iterator[list[Any]]:
    """Every variant as a row of the catalog format, grouped by product; stock is on hand per location (empty for
    bundles, which hold none). Reads in batches, so a large catalog streams in constant memory."""
    location_ids = [location.pk for location in locations]
    pks = list(
        Variant.objects.order_by("product__title", "product__vendor", "product_id", "sku").values_list("pk", flat=True)
    )
    for start in range(0, len(pks), _BATCH):
        batch = pks[start : start + _BATCH]
        variants = Variant.objects.select_related("product").in_bulk(batch)
        on_hand: dict[tuple[int, int], int] = {}
        for v, loc, quantity in (
            StockLevel.objects.filter(variant_id__in=batch)
            .order_by()
            .values_list("variant_id", "location_id", "on_hand")
        ):
            on_hand[(v, loc)] = quantity
        parts: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for bundle, sku, quantity in (
            BundleComponent.objects.filter(bundle_id__in=batch)
            .order_by("bundle_id", "component__sku")
            .values_list("bundle_id", "component__sku", "quantity")
        ):
            parts[bundle].append((sku, quantity))
        for pk in batch:
            variant = variants[pk]
            product = variant.product
            stock: list[Any] = (
                [None] * len(location_ids) if variant.is_bundle else [on_hand.get((pk, loc), 0) for loc in location_ids]
            )
            yield [
                product.title,
                product.vendor,
                variant.sku,
                variant.barcode,
                variant.title,
                variant.weight_grams,
                variant.hs_code,
                _money(variant.cost_price),
                _money(variant.sale_price),
                variant.low_stock_threshold,
                "true" if variant.active else "false",
                format_components(parts.get(pk, [])),
                *stock,
            ]


def catalog_import_recent(*, limit: int = 10) -> QuerySet[CatalogImport]:
    return CatalogImport.objects.select_related("created_by", "confirmed_by").defer("content")[:limit]


def catalog_import_get(*, pk: int) -> CatalogImport:
    return CatalogImport.objects.select_related("created_by", "confirmed_by").defer("content").get(pk=pk)


ACTIVE_STATUSES = (CatalogImport.Status.CHECKING, CatalogImport.Status.QUEUED, CatalogImport.Status.IMPORTING)


STALLED_AFTER = timedelta(seconds=JOB_TIMEOUT + 300)


def catalog_import_progress(record: CatalogImport) -> dict[str, Any]:
    """What the progress bar shows: a label and a percentage; 100 once the record reached an end state. A job
    that has run longer than its timeout died with its worker (its transaction rolled back): stalled."""
    if record.status not in ACTIVE_STATUSES:
        return {"label": record.get_status_display(), "percent": 100, "active": False, "stalled": False}
    if timezone.now() - (record.started_at or record.created_at) > STALLED_AFTER:
        return {"label": "Stalled", "percent": 0, "active": False, "stalled": True}
    stored = cache.get(progress_key(record.pk)) or {}
    default = "Waiting for a worker" if record.started_at is None else "Working"
    return {
        "label": stored.get("label", default),
        "percent": min(int(stored.get("percent", 0)), 99),
        "active": True,
        "stalled": False,
    }


# ---------------------------------------------------------------------------------------------------------
# Export records


def export_progress_key(export_id: int) -> str:
    return f"inventory:catalog-export:{export_id}:progress"


def catalog_export_recent(*, limit: int = 10) -> QuerySet[CatalogExport]:
    return CatalogExport.objects.select_related("created_by")[:limit]


def catalog_export_get(*, pk: int) -> CatalogExport:
    return CatalogExport.objects.select_related("created_by").get(pk=pk)


EXPORT_ACTIVE_STATUSES = (CatalogExport.Status.QUEUED, CatalogExport.Status.RUNNING)


def catalog_export_stalled(record: CatalogExport) -> bool:
    """Queued or running for longer than the job may run: its worker died (or no worker takes the queue)."""
    return (
        record.status in EXPORT_ACTIVE_STATUSES
        and timezone.now() - (record.started_at or record.created_at) > STALLED_AFTER
    )


def catalog_export_progress(record: CatalogExport) -> dict[str, Any]:
    """What the export's progress bar shows: a label, rows written so far and a percentage (of the variants
    counted when the job started); 100 once the record reached an end state."""
    if record.status not in EXPORT_ACTIVE_STATUSES:
        return {
            "label": record.get_status_display(),
            "rows": record.rows,
            "percent": 100,
            "active": False,
            "stalled": False,
        }
    if catalog_export_stalled(record):
        return {"label": "Stalled", "rows": 0, "percent": 0, "active": False, "stalled": True}
    stored = cache.get(export_progress_key(record.pk)) or {}
    rows, total = int(stored.get("rows", 0)), int(stored.get("total", 0))
    default = "Waiting for a worker" if record.status == CatalogExport.Status.QUEUED else "Starting"
    return {
        "label": stored.get("label", default),
        "rows": rows,
        "total": total,
        "percent": min(rows * 100 // total, 99) if total else 0,
        "active": True,
        "stalled": False,
    }
