"""Printing: packing slips as documents, and print jobs sent to a station's printer without ever printing twice
by accident. A printer that is down never blocks packing: the job fails visibly and the document stays
downloadable.
"""

from __future__ import annotations

import logging
from typing import Literal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from dispatch.documents import SlipData, SlipLine, render_packing_slip
from dispatch.models import Document, PackingStation, Printer, PrinterKind, PrintJob
from dispatch.printers import (
    PDF,
    RECEIPT,
    EscposConfig,
    JobState,
    PrintDocument,
    PrinterDriver,
    PrinterError,
    PrinterUnavailable,
    PrintNodeConfig,
    Receipt,
    ReceiptItem,
    printer_for,
)
from dispatch.selectors import pack_rows
from dispatch.services import DispatchError, document_store, pack_expected, print_document
from oms.core.services import Actor
from oms.orders.models import Order

logger = logging.getLogger(__name__)

PRINTNODE_URL = "https://api.printnode.com"


def printer_driver(printer: Printer) -> PrinterDriver:
    if printer.kind == PrinterKind.PRINTNODE:
        if not (printer.api_key and printer.printnode_printer_id):
            raise DispatchError(f"{printer.name} needs a PrintNode API key and printer id")
        return printer_for(
            "printnode",
            PrintNodeConfig(
                api_key=printer.api_key,
                printer_id=printer.printnode_printer_id,
                base_url=printer.api_base_url or PRINTNODE_URL,
            ),
        )
    if not printer.host:
        raise DispatchError(f"{printer.name} needs a host name or address")
    return printer_for("escpos", EscposConfig(host=printer.host, port=printer.port))


def _job_title(job: PrintJob) -> str:
    # Unique per job, so that a lost answer can be looked up on the cloud printer by its title.
    return f"{job.document.title} [oms-print-{job.pk}]"[:200]


def _claim(print_job_id: int) -> PrintJob | None:
    """QUEUED -> SENT with a conditional update: of two workers running the same job, only one sends."""
    now = timezone.now()
    with transaction.atomic():
        claimed = PrintJob.objects.filter(pk=print_job_id, state=PrintJob.State.QUEUED).update(
            state=PrintJob.State.SENT, sent_at=now
        )
    if not claimed:
        return None
    return PrintJob.objects.select_related("printer", "document").get(pk=print_job_id)


def _finish(job: PrintJob, **fields: object) -> None:
    PrintJob.objects.filter(pk=job.pk).update(**fields)


def print_job_send(*, print_job_id: int) -> PrintJob:
    """Send one queued print job. Raises PrinterUnavailable when the printer could not be reached and the job
    went back to the queue (the RQ job retries it); every other outcome is recorded on the row."""
    job = _claim(print_job_id)
    if job is None:
        return PrintJob.objects.get(pk=print_job_id)
    attempts = job.attempts + 1
    try:
        driver = printer_driver(job.printer)
        with job.document.file.open("rb") as fh:
            content = fh.read()
        document = PrintDocument(content=content, content_type=job.document.content_type, title=_job_title(job))
        result = driver.print(document)
    except PrinterUnavailable as exc:
        if exc.retryable:
            _finish(job, state=PrintJob.State.QUEUED, attempts=attempts, error=f"printer unreachable: {exc}")
            raise
        found = _lookup(driver, job)
        if found:
            _finish(job, state=PrintJob.State.SENT, attempts=attempts, external_id=found, error="")
        else:
            _finish(
                job,
                state=PrintJob.State.FAILED,
                attempts=attempts,
                error=f"the printer stopped answering mid-job: check the printout, reprint if it is missing ({exc})",
            )
        return PrintJob.objects.get(pk=job.pk)
    except (PrinterError, DispatchError, ValueError, OSError) as exc:
        _finish(job, state=PrintJob.State.FAILED, attempts=attempts, error=str(exc)[:2000])
        return PrintJob.objects.get(pk=job.pk)
    state = PrintJob.State.DONE if result.state == JobState.DONE else PrintJob.State.SENT
    _finish(job, state=state, attempts=attempts, external_id=result.job_id or "", error="")
    return PrintJob.objects.get(pk=job.pk)


def _lookup(driver: PrinterDriver, job: PrintJob) -> str | None:
    find = getattr(driver, "find_job", None)
    if find is None:
        return None
    try:
        found: str | None = find(_job_title(job))
    except PrinterError:
        return None
    return found


def print_job_refresh(*, print_job_id: int) -> PrintJob:
    """Ask a cloud printer how a sent job went (done, or failed at the printer)."""
    job = PrintJob.objects.select_related("printer").get(pk=print_job_id)
    if job.state != PrintJob.State.SENT or not job.external_id:
        return job
    try:
        status = printer_driver(job.printer).job_state(job.external_id)
    except (PrinterError, DispatchError) as exc:
        logger.info("print job %s: state not known yet (%s)", job.pk, exc)
        return job
    if status.state == JobState.DONE:
        _finish(job, state=PrintJob.State.DONE)
    elif status.state == JobState.FAILED:
        _finish(job, state=PrintJob.State.FAILED, error=f"the printer reported {status.vendor_state}")
    return PrintJob.objects.get(pk=job.pk)


def print_jobs_refresh(*, limit: int = 200) -> int:
    pending = PrintJob.objects.filter(state=PrintJob.State.SENT).exclude(external_id="").order_by("sent_at")
    ids = list(pending.values_list("pk", flat=True)[:limit])
    for pk in ids:
        print_job_refresh(print_job_id=pk)
    return len(ids)


# ---------------------------------------------------------------------------------------------------------
# Packing slips


def _slip_lines(order: Order) -> list[SlipLine]:
    rows = pack_rows(order, pack_expected(order))
    return [SlipLine(sku=r.item.sku, title=r.item.title, qty=r.item.quantity, bin_code=r.bin_code) for r in rows]


def _ship_to(order: Order) -> list[str]:
    a = order.shipping_address
    if a is None:
        return ["(no shipping address)"]
    city = " ".join(part for part in (a.postal_code, a.city, a.region) if part)
    return [part for part in (a.name, a.company, a.line1, a.line2, city, a.country) if part]


def packing_slip_pdf(*, order: Order, page: Literal["a4", "4x6"] = "a4") -> bytes:
    slip = SlipData(
        order_number=order.number,
        channel_name=order.channel.name,
        placed=timezone.localtime(order.placed_at),
        ship_to=_ship_to(order),
        lines=_slip_lines(order),
        shop_name=settings.SHOP_NAME,
        customer_note=order.note,
    )
    return render_packing_slip(slip, page=page)


def packing_slip_receipt(*, order: Order) -> Receipt:
    """The slip for a thermal printer: text, bins and the order's barcode."""
    lines = _slip_lines(order)
    return Receipt(
        title_lines=(settings.SHOP_NAME, f"Order {order.number}"),
        fields=(
            ("Channel", order.channel.name),
            ("Placed", f"{timezone.localtime(order.placed_at):%Y-%m-%d %H:%M}"),
            ("Ship to", ", ".join(_ship_to(order))),
        ),
        items=tuple(ReceiptItem(qty=x.qty, sku=x.sku, title=x.title, bin=x.bin_code) for x in lines),
        barcode="".join(ch for ch in order.number if 32 <= ord(ch) < 127)[:80] or str(order.pk),
        footer=order.note[:500],
    )


def packing_slip_print(*, order: Order, station: PackingStation, actor: Actor) -> PrintJob | None:
    """Store the order's slip in the form the station's slip printer takes, and queue it. None: no printer."""
    printer = station.document_printer or station.label_printer
    if printer is None or not printer.active:
        return None
    if printer.kind == PrinterKind.ESCPOS:
        content = packing_slip_receipt(order=order).to_bytes()
        content_type, ext = RECEIPT, "json"
    else:
        page: Literal["a4", "4x6"] = "4x6" if station.slip_page == "4x6" else "a4"
        content, content_type, ext = packing_slip_pdf(order=order, page=page), PDF, "pdf"
    doc = document_store(
        kind=Document.Kind.PACKING_SLIP,
        title=f"Packing slip {order.number}",
        content=content,
        content_type=content_type,
        filename=f"slip-{order.pk}.{ext}",
        order=order,
    )
    return print_document(document=doc, printer=printer, station=station, actor=actor)
