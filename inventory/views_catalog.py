"""Staff screens of the catalog import and export, mounted at /inventory/catalog/.

Upload -> dry run (a job) -> row errors or what would change -> confirm -> import (a job) with a live progress
bar -> result. Export: CSV streamed at once; XLSX (too slow for a request) as a job -> progress -> download.
Views validate and delegate: writes to inventory.services_catalog(_export), reads to selectors_catalog.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from inventory import selectors_catalog, services_catalog, services_catalog_export
from inventory.catalog_format import COLUMNS, csv_stream
from inventory.forms_catalog import CatalogUploadForm
from inventory.models import CatalogExport, CatalogImport
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
_EXPORT_BADGES = {
    CatalogExport.Status.QUEUED: "running",
    CatalogExport.Status.RUNNING: "running",
    CatalogExport.Status.DONE: "succeeded",
    CatalogExport.Status.FAILED: "failed",
}


def _see_other(url: str) -> HttpResponseRedirect:
    response = HttpResponseRedirect(url)
    response.status_code = 303  # after a POST, and for the old GET link: the browser GETs the new page
    return response


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
            "exports": [
                (r, _EXPORT_BADGES.get(CatalogExport.Status(r.status), "running"))
                for r in selectors_catalog.catalog_export_recent()
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


@require_http_methods(["GET", "HEAD", "POST"])
@staff_view(PERM)
def catalog_export(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """The whole catalog in the import's format. GET .csv streams it row by row (a few seconds). POST starts an
    export job and shows its page: an XLSX takes too long to build in a request. GET .xlsx, the old download
    link, leads to the import page, whose button starts one."""
    if fmt not in CatalogExport.Format.values:
        raise Http404("Export as csv or xlsx.")
    if request.method == "POST":
        record = services_catalog_export.catalog_export_create(file_format=fmt, actor=request.user)
        return _see_other(reverse("inventory:catalog-export-detail", args=[record.pk]))
    if fmt != CatalogExport.Format.CSV:
        messages.info(request, "An XLSX export is prepared in the background: press Export XLSX, then download it.")
        return _see_other(reverse("inventory:catalog-import"))
    if request.method == "GET":  # a HEAD takes no rows
        services_catalog_export.catalog_export_streamed(actor=request.user)
    locations = selectors_catalog.catalog_export_locations()
    header = selectors_catalog.catalog_export_header(locations)
    rows = selectors_catalog.catalog_export_rows(locations=locations)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(csv_stream(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="catalog-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


def _export_or_404(pk: int) -> CatalogExport:
    try:
        return selectors_catalog.catalog_export_get(pk=pk)
    except CatalogExport.DoesNotExist:
        raise Http404("No such export.") from None


def _download_name(record: CatalogExport) -> str:
    return f"catalog-{timezone.localtime(record.created_at):%Y%m%d-%H%M}.{record.file_format}"


def _export_context(record: CatalogExport) -> dict[str, Any]:
    return {
        "export": record,
        "badge": _EXPORT_BADGES.get(CatalogExport.Status(record.status), "running"),
        "progress": selectors_catalog.catalog_export_progress(record),
        "download_name": _download_name(record),
        "keep_days": services_catalog_export.KEEP.days,
    }


@require_safe
@staff_view(PERM)
def catalog_export_detail(request: HttpRequest, pk: int) -> HttpResponse:
    record = _export_or_404(pk)
    return render(request, "inventory/catalog/export_detail.html", _export_context(record))


@require_safe
@staff_view(PERM)
def catalog_export_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress endpoint the export page polls (htmx): rows written while the job runs, then the download."""
    record = _export_or_404(pk)
    return render(request, "inventory/catalog/_export_status.html", _export_context(record))


@require_safe
@staff_view(PERM)
def catalog_export_download(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The stored file, streamed from the storage (local media or S3); 404 until the job has finished it."""
    record = _export_or_404(pk)
    if record.status != CatalogExport.Status.DONE or not record.file.name:
        raise Http404("This export is not ready.")
    try:
        handle = record.file.open("rb")
    except OSError:
        raise Http404("This export's file is no longer stored.") from None
    if request.method == "GET":  # a HEAD takes no file
        services_catalog_export.catalog_export_downloaded(record=record, actor=request.user)
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=_download_name(record),
        content_type=services_catalog_export.CONTENT_TYPES[CatalogExport.Format(record.file_format)],
    )
    response["Cache-Control"] = "no-store"
    return response
