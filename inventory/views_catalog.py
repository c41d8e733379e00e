"""Staff screens of the catalog import and export, mounted at /inventory/catalog/.

Upload -> dry run (a job) -> row errors or what would change -> confirm -> import (a job) with a live progress
bar -> result. Views validate and delegate: writes to inventory.services_catalog, reads to selectors_catalog.
"""

from __future__ import annotations

import tempfile
from typing import Any

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from inventory import selectors_catalog, services_catalog
from inventory.catalog_format import COLUMNS, csv_stream, xlsx_write
from inventory.forms_catalog import CatalogUploadForm
from inventory.models import CatalogImport
from oms.core.views import staff_view

PERM = "inventory.import_catalog"
SHOWN_ERRORS = 200
_BADGES = {
    CatalogImport.Status.CHECKING: "running",
    CatalogImport.Status.QUEUED: "running",
    CatalogImport.Status.IMPORTING: "running",
    CatalogImport.Status.CHECKED: "partial",
    CatalogImport.Status.INVALID: "failed",
    CatalogImport.Status.FAILED: "failed",
    CatalogImport.Status.DONE: "succeeded",
}


def _record_or_404(pk: int) -> CatalogImport:
    try:
        return selectors_catalog.catalog_import_get(pk=pk)
    except CatalogImport.DoesNotExist:
        raise Http404("No such import.") from None


def _status_context(record: CatalogImport) -> dict[str, Any]:
    summary = record.summary or {}
    return {
        "record": record,
        "badge": _BADGES.get(CatalogImport.Status(record.status), "running"),
        "progress": selectors_catalog.catalog_import_progress(record),
        "summary_items": [
            (label, summary[key]) for key, label in services_catalog.SUMMARY_LABELS.items() if key in summary
        ],
        "errors": (record.errors or [])[:SHOWN_ERRORS],
        "more_errors": max(record.error_count - min(len(record.errors or []), SHOWN_ERRORS), 0),
        "can_confirm": record.status == CatalogImport.Status.CHECKED,
    }


@require_http_methods(["GET", "HEAD", "POST"])
@staff_view(PERM)
def catalog_import(request: HttpRequest) -> HttpResponse:
    status = 200
    if request.method == "POST":
        form = CatalogUploadForm(request.POST, request.FILES)
        if form.is_valid():
            record = services_catalog.catalog_import_create(
                file_name=form.cleaned_data["file"].name,
                content=form.content,
                file_format=form.catalog.format,
                actor=request.user,
            )
            return HttpResponseRedirect(reverse("inventory:catalog-import-detail", args=[record.pk]))
        status = 422
    else:
        form = CatalogUploadForm()
    return render(
        request,
        "inventory/catalog/import.html",
        {
            "form": form,
            "imports": [
                (r, _BADGES.get(CatalogImport.Status(r.status), "running"))
                for r in selectors_catalog.catalog_import_recent()
            ],
            "columns": COLUMNS,
        },
        status=status,
    )


@require_safe
@staff_view(PERM)
def catalog_import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    record = _record_or_404(pk)
    return render(request, "inventory/catalog/import_detail.html", _status_context(record))


@require_safe
@staff_view(PERM)
def catalog_import_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress endpoint the detail page polls (htmx): the bar while a job runs, then the result."""
    record = _record_or_404(pk)
    return render(request, "inventory/catalog/_import_status.html", _status_context(record))


@require_POST
@staff_view(PERM)
def catalog_import_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    record = _record_or_404(pk)
    try:
        services_catalog.catalog_import_confirm(catalog_import=record, actor=request.user)
    except services_catalog.CatalogImportStateError as exc:
        messages.error(request, str(exc))
    return HttpResponseRedirect(reverse("inventory:catalog-import-detail", args=[record.pk]))


@require_safe
@staff_view(PERM)
def catalog_export(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """The whole catalog in the import's format: CSV streamed row by row, XLSX built in a temporary file."""
    locations = selectors_catalog.catalog_export_locations()
    header = selectors_catalog.catalog_export_header(locations)
    rows = selectors_catalog.catalog_export_rows(locations=locations)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    if fmt == "csv":
        response: HttpResponseBase = StreamingHttpResponse(
            csv_stream(header, rows), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="catalog-{stamp}.csv"'
    elif fmt == "xlsx":
        out = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it when the response is sent
        xlsx_write(header, rows, out)
        out.seek(0)
        response = FileResponse(
            out,
            as_attachment=True,
            filename=f"catalog-{stamp}.xlsx",
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    else:
        raise Http404("Export as csv or xlsx.")
    response["Cache-Control"] = "no-store"
    return response
