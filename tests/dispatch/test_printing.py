"""Print jobs from the dispatch services to a PrintNode emulator and a loopback ESC/POS listener."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from dispatch.models import Document, PackingStation, Printer, PrinterKind, PrintJob
from dispatch.printers import PrinterUnavailable
from dispatch.services import DispatchError, document_store, pack_next, print_document
from dispatch.services_print import packing_slip_pdf, print_job_send
from tests.emulators.escpos_listener import EscposListener
from tests.emulators.printnode import PrintNodeEmulator
from tests.factories import ingested_order, staff_user

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def printnode() -> Iterator[PrintNodeEmulator]:
    with PrintNodeEmulator() as emulator:
        yield emulator


@pytest.fixture
def listener() -> Iterator[EscposListener]:
    with EscposListener() as peer:
        yield peer


def cloud_printer(emulator: PrintNodeEmulator) -> Printer:
    return Printer.objects.create(
        name="Labels",
        kind=PrinterKind.PRINTNODE,
        api_key=emulator.api_key,
        printnode_printer_id=emulator.printer_id,
        api_base_url=emulator.base_url,
    )


def thermal_printer(peer: EscposListener) -> Printer:
    return Printer.objects.create(name="Receipts", kind=PrinterKind.ESCPOS, host=peer.host, port=peer.port)


def label() -> Document:
    return document_store(
        kind="label", title="Label 9400", content=PDF, content_type="application/pdf", filename="l.pdf"
    )


def test_a_label_goes_to_the_cloud_printer_once(printnode, django_capture_on_commit_callbacks):
    printer = cloud_printer(printnode)
    with django_capture_on_commit_callbacks(execute=True):  # jobs run inline once the transaction commits
        job = print_document(document=label(), printer=printer, station=None, actor=None)
    job.refresh_from_db()
    assert job.state in (PrintJob.State.SENT, PrintJob.State.DONE)
    assert job.attempts == 1
    assert job.external_id
    [post] = printnode.job_posts()
    assert post.json["contentType"] == "pdf_base64"
    assert base64.b64decode(post.json["content"]) == PDF
    assert post.json["printerId"] == printnode.printer_id
    assert f"[oms-print-{job.pk}]" in post.json["title"]
    # The job running again (a retry, a second worker) sends nothing more.
    assert print_job_send(print_job_id=job.pk).state == job.state
    assert len(printnode.job_posts()) == 1


def test_a_reprint_needs_a_reason_and_is_a_new_job(printnode, django_capture_on_commit_callbacks):
    printer = cloud_printer(printnode)
    with django_capture_on_commit_callbacks(execute=True):
        first = print_document(document=label(), printer=printer, station=None, actor=None)
    with pytest.raises(DispatchError, match="say why"):
        print_document(document=first.document, printer=printer, station=None, actor=None, reprint_of=first)
    with django_capture_on_commit_callbacks(execute=True):
        again = print_document(
            document=first.document, printer=printer, station=None, actor=None, reprint_of=first, reason="label jammed"
        )
    assert again.pk != first.pk
    assert again.reason == "label jammed"
    assert len(printnode.job_posts()) == 2


def test_a_printer_that_is_off_leaves_the_job_queued_and_the_document_downloadable(
    listener, django_capture_on_commit_callbacks
):
    printer = thermal_printer(listener)
    listener.refuse()
    doc = document_store(
        kind="slip", title="Slip", content=b"\x1b@hello\x1dV\x00", content_type="application/escpos", filename="s.bin"
    )
    job = PrintJob.objects.create(printer=printer, document=doc)
    with pytest.raises(PrinterUnavailable):
        print_job_send(print_job_id=job.pk)
    job.refresh_from_db()
    assert job.state == PrintJob.State.QUEUED
    assert "unreachable" in job.error
    with Document.objects.get(pk=doc.pk).file.open("rb") as fh:
        assert fh.read().startswith(b"\x1b@")
    listener.listen()
    assert print_job_send(print_job_id=job.pk).state == PrintJob.State.DONE
    assert listener.wait_for(1)[0] == b"\x1b@hello\x1dV\x00"


def test_a_pdf_sent_to_a_thermal_printer_fails_in_words(listener, django_capture_on_commit_callbacks):
    printer = thermal_printer(listener)
    with django_capture_on_commit_callbacks(execute=True):
        job = print_document(document=label(), printer=printer, station=None, actor=None)
    job.refresh_from_db()
    assert job.state == PrintJob.State.FAILED
    assert "pdf" in job.error.lower()
    assert listener.received == []


def test_taking_an_order_prints_its_slip_at_the_station(channel, listener, django_capture_on_commit_callbacks):
    station = PackingStation.objects.create(name="Bench 1", document_printer=thermal_printer(listener))
    order = ingested_order(channel, note="Gift: no invoice please")
    with django_capture_on_commit_callbacks(execute=True):
        session = pack_next(packer=staff_user("Packer"), station=station)
    assert session is not None
    assert session.order_id == order.pk
    [sent] = listener.wait_for(1)
    assert sent.startswith(b"\x1b@")
    assert order.number.encode() in sent
    assert b"MUG-BLUE" in sent
    assert b"Gift: no invoice please" in sent
    assert b"\x1dk" in sent  # the order's barcode
    job = PrintJob.objects.get()
    assert job.document.kind == Document.Kind.PACKING_SLIP
    assert job.state == PrintJob.State.DONE


def test_the_slip_pdf_names_the_order_and_its_lines(channel):
    from io import BytesIO

    from pypdf import PdfReader

    order = ingested_order(channel, note="Leave at the back door")
    text = "".join(p.extract_text() for p in PdfReader(BytesIO(packing_slip_pdf(order=order))).pages)
    assert order.number in text
    assert "MUG-BLUE" in text
    assert "TEE-M" in text
    assert "Leave at the back door" in text


def test_the_slip_job_run_twice_prints_one_slip(channel, listener, django_capture_on_commit_callbacks):
    from dispatch import jobs

    station = PackingStation.objects.create(name="Bench 2", document_printer=thermal_printer(listener))
    ingested_order(channel)
    with django_capture_on_commit_callbacks(execute=True):
        session = pack_next(packer=staff_user("Packer"), station=station)
    assert session is not None
    assert jobs.packing_slip_print(session.pk) == PrintJob.objects.get().pk  # RQ ran it again
    assert PrintJob.objects.count() == 1
    assert len(listener.wait_for(1)) == 1
