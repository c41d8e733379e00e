"""Catalog export as a job: the request records a CatalogExport (with an audit row) and enqueues the job on the
"low" queue; the job writes the file into a temporary file, then into the default storage through the FileField
(never a local path: production stores on S3); a daily job deletes exports older than KEEP with their files.

The rows come from inventory.selectors_catalog; `manage.py export_catalog` and the CSV download stay synchronous.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.core.files import File
from django.db import DatabaseError, transaction
from django.utils import timezone

from inventory import selectors_catalog
from inventory.catalog_format import csv_stream, xlsx_write
from inventory.models import CatalogExport
from inventory.services_catalog import JOB_TIMEOUT, PROGRESS_TTL
from oms.core.queue import enqueue_after_commit
from oms.core.services import Actor, acting_user, audit_record

logger = logging.getLogger(__name__)

EXPORT_JOB = "inventory.jobs_catalog.catalog_export_run"
SYSTEM = "catalog export"
KEEP = timedelta(days=7)
CONTENT_TYPES = {
    CatalogExport.Format.CSV: "text/csv; charset=utf-8",
    CatalogExport.Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_REPORT_EVERY_ROWS = 500
_REPORT_EVERY_SECONDS = 0.3


@transaction.atomic
def catalog_export_create(*, file_format: str, actor: Actor) -> CatalogExport:
    """Record a requested export of the whole catalog, audit who asked (the file holds every SKU, price and stock
    level), and start its job after commit. The same user asking again for the same format while theirs is still
    queued or running gets that one back: a double click is not a second export."""
    if file_format not in CatalogExport.Format.values:
        raise ValueError(f"unknown export format {file_format!r}")
    user = acting_user(actor)
    if user is not None:
        pending = CatalogExport.objects.filter(
            created_by=user, file_format=file_format, status__in=selectors_catalog.EXPORT_ACTIVE_STATUSES
        ).first()
        if pending is not None and not selectors_catalog.catalog_export_stalled(pending):
            return pending
    record = CatalogExport.objects.create(file_format=file_format, created_by=user)
    audit_record(actor=actor, verb="catalog.export", obj=record, after={"file_format": file_format}, system=SYSTEM)
    enqueue_after_commit(EXPORT_JOB, record.pk, queue="low", job_timeout=JOB_TIMEOUT)
    return record


def catalog_export_streamed(*, actor: Actor) -> None:
    """Audit a CSV export streamed straight to the browser: no CatalogExport record, the same data."""
    audit_record(
        actor=actor, verb="catalog.export", obj=None, after={"file_format": "csv", "streamed": True}, system=SYSTEM
    )


def catalog_export_downloaded(*, record: CatalogExport, actor: Actor) -> None:
    """Audit each download of a stored export: who asked for the file is not always who takes it."""
    audit_record(actor=actor, verb="catalog.export_download", obj=record, system=SYSTEM)


class _Progress:
    """Rows written so far, into the cache a few times a second at most (one clock read per 500 rows)."""

    def __init__(self, export_id: int, total: int) -> None:
        self.key = selectors_catalog.export_progress_key(export_id)
        self.total = total
        self.rows = 0
        self._last = 0.0

    def report(self, label: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < _REPORT_EVERY_SECONDS:
            return
        self._last = now
        cache.set(self.key, {"label": label, "rows": self.rows, "total": self.total}, PROGRESS_TTL)

    def counted(self, rows: Iterable[list[Any]]) -> Iterator[list[Any]]:
        self.report("Writing rows", force=True)
        for row in rows:
            self.rows += 1
            if self.rows % _REPORT_EVERY_ROWS == 0:
                self.report("Writing rows")
            yield row
        self.report("Finishing the file", force=True)


def _write_and_store(record: CatalogExport) -> int:
    """Write the export into a temporary file and save it to the storage (record.file is set, not saved)."""
    locations = selectors_catalog.catalog_export_locations()
    header = selectors_catalog.catalog_export_header(locations)
    progress = _Progress(record.pk, total=selectors_catalog.catalog_export_count())
    rows = progress.counted(selectors_catalog.catalog_export_rows(locations=locations))
    with tempfile.TemporaryFile() as out:
        if record.file_format == CatalogExport.Format.XLSX:
            xlsx_write(header, rows, out)
        else:
            out.writelines(chunk.encode("utf-8") for chunk in csv_stream(header, rows))
        progress.report("Storing the file", force=True)
        stamp = timezone.localtime(record.created_at).strftime("%Y%m%d-%H%M")
        name = f"catalog-{stamp}-{record.pk}.{record.file_format}"
        record.file.save(name, File(out, name=name), save=False)
    return progress.rows


def _error_text(exc: Exception) -> str:
    """The failure as staff read it on the export's page (the traceback goes to the log)."""
    if isinstance(exc, OSError):
        detail = exc.strerror or str(exc) or type(exc).__name__
        return (
            f"The file could not be written or stored: {detail}. "
            "Export again; if it fails again, tell an administrator."
        )
    if isinstance(exc, DatabaseError):
        return f"The catalog could not be read from the database ({type(exc).__name__}). Export again."
    return (
        f"The export stopped on an unexpected error ({type(exc).__name__}). "
        "Export again; if it fails again, tell an administrator."
    )


def _fail(record: CatalogExport, error: str) -> None:
    if record.file.name:  # stored, but the record could not say so: the file would be orphaned
        try:
            record.file.delete(save=False)
        except Exception:
            logger.exception("catalog export %s: could not delete %s", record.pk, record.file.name)
    CatalogExport.objects.filter(pk=record.pk).update(
        status=CatalogExport.Status.FAILED, error=error, file="", finished_at=timezone.now()
    )


def catalog_export_execute(*, export_id: int) -> CatalogExport | None:
    """The job: write and store the file, then record its rows and "done". It runs once (only a queued record),
    and leaves no record running: any error marks it failed with a message for staff."""
    claimed = CatalogExport.objects.filter(pk=export_id, status=CatalogExport.Status.QUEUED).update(
        status=CatalogExport.Status.RUNNING, started_at=timezone.now()
    )
    record = CatalogExport.objects.filter(pk=export_id).first()
    if not claimed or record is None:
        return record
    try:
        rows = _write_and_store(record)
        CatalogExport.objects.filter(pk=export_id).update(
            status=CatalogExport.Status.DONE, rows=rows, file=record.file.name, finished_at=timezone.now()
        )
    except Exception as exc:
        logger.exception("catalog export %s failed", export_id)
        _fail(record, _error_text(exc))
    except BaseException:  # the worker is being stopped: say so, and let it stop
        _fail(record, "The export was interrupted: its worker stopped. Export again.")
        raise
    finally:
        cache.delete(selectors_catalog.export_progress_key(export_id))
    record.refresh_from_db()
    return record


def catalog_exports_prune(*, older_than: timedelta = KEEP) -> int:
    """Delete exports older than `older_than` with their files, each file before its row: a file the storage
    will not delete keeps its row, so the next run tries again. Returns how many were deleted."""
    cutoff = timezone.now() - older_than
    deleted = 0
    for record in CatalogExport.objects.filter(created_at__lt=cutoff).order_by("pk").only("pk", "file"):
        if record.file.name:
            try:
                record.file.delete(save=False)
            except Exception:
                logger.exception(
                    "catalog export %s: could not delete %s; kept for the next run", record.pk, record.file
                )
                continue
        CatalogExport.objects.filter(pk=record.pk).delete()
        deleted += 1
    if deleted:
        logger.info("deleted %s catalog export(s) older than %s", deleted, older_than)
    return deleted
