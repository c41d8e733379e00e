"""RQ entry points of the catalog import and export (queue "low"): take the record's id, call one service. All are
safe to run twice: each acts only on a record in the state it expects."""

from __future__ import annotations

from inventory import services_catalog, services_catalog_export


def catalog_import_check(import_id: int) -> str | None:
    """The dry run of an uploaded file."""
    record = services_catalog.catalog_import_check_run(import_id=import_id)
    return record.status if record is not None else None


def catalog_import_run(import_id: int) -> str | None:
    """The import of a confirmed file."""
    record = services_catalog.catalog_import_execute(import_id=import_id)
    return record.status if record is not None else None


def catalog_export_run(export_id: int) -> str | None:
    """The export of the whole catalog into a stored file. Not retried: a failure is on the record, and staff
    export again."""
    record = services_catalog_export.catalog_export_execute(export_id=export_id)
    return record.status if record is not None else None


def catalog_exports_prune() -> int:
    """Daily: exports older than a week, file and record."""
    return services_catalog_export.catalog_exports_prune()
