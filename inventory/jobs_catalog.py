"""RQ entry points of the catalog import (queue "low"): take the record's id, call one service. Both are safe to
run twice: each acts only on a record in the state it expects."""

from __future__ import annotations

from inventory import services_catalog


def catalog_import_check(import_id: int) -> str | None:
    """The dry run of an uploaded file."""
    record = services_catalog.catalog_import_check_run(import_id=import_id)
    return record.status if record is not None else None


def catalog_import_run(import_id: int) -> str | None:
    """The import of a confirmed file."""
    record = services_catalog.catalog_import_execute(import_id=import_id)
    return record.status if record is not None else None
