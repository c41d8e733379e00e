"""The printer contract: one conformance suite that every registered driver passes, then each driver's own
behaviour, against the PrintNode emulator and a loopback ESC/POS listener (127.0.0.1 only)."""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from dispatch.printers import (
    CONTENT_TYPES,
    ESCPOS,
    PDF,
    PRINTERS,
    RECEIPT,
    ZPL,
    EscposConfig,
    EscposPrinter,
    JobState,
    NotSupported,
    PrintDocument,
    PrinterAuthFailed,
    PrinterConfig,
    PrinterDriver,
    PrinterRejected,
    PrinterUnavailable,
    PrintNodeConfig,
    PrintNodePrinter,
    Receipt,
    ReceiptItem,
    printer_for,
    render_receipt_escpos,
)
from tests.emulators.escpos_listener import EscposListener
from tests.emulators.printnode import PrintNodeEmulator

SAMPLE_PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
SAMPLE_ZPL = b"^XA^FO50,50^A0N,40,40^FDSO-1001^FS^BY2^FO50,120^BCN,80,Y,N,N^FDSO-1001^FS^XZ"
SAMPLE_ESCPOS = b"\x1b@Packing station 3\n\x1dV\x00"
SAMPLE_RECEIPT = Receipt(
    title_lines=["Main Shop", "Order SO-1001"],
    fields=[("Placed", "2026-03-01 10:05"), ("Ship", "DPD Classic")],
    items=[
        ReceiptItem(qty=2, sku="MUG-BLUE", title="Blue enamel mug, 350 ml", bin="A-01-3"),
        ReceiptItem(qty=1, sku="TEA-EARL", title="Earl Grey loose tea 100 g", bin="C-12-1"),
    ],
    barcode="SO-1001",
    qr="https://shop.example/o/SO-1001",
    footer="Thank you for your order",
)
SAMPLES = {PDF: SAMPLE_PDF, ZPL: SAMPLE_ZPL, ESCPOS: SAMPLE_ESCPOS, RECEIPT: SAMPLE_RECEIPT.to_bytes()}


def sample(content_type: str, *, title: str = "SO-1001", copies: int = 1) -> PrintDocument:
    return PrintDocument(SAMPLES[content_type], content_type, title, copies=copies)


def closed_port() -> int:
    """A loopback port nobody listens on (connecting to it is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------- conformance suite


@dataclass
class Harness:
    """One printer kind wired to its test peer."""

    kind: str
    config: PrinterConfig
    unreachable: PrinterConfig
    # What the physical printer ends up printing, one entry per document, oldest first. `expected` is how many
    # documents the caller expects, so a peer that records asynchronously can wait for them.
    delivered: Callable[[int], list[bytes]]
    # The bytes the printer is sent for a document it accepts.
    printed_form: Callable[[PrintDocument], bytes]

    def driver(self) -> PrinterDriver:
        return printer_for(self.kind, self.config)


@pytest.fixture(params=sorted(PRINTERS))
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    kind = request.param
    if kind == "printnode":
        with PrintNodeEmulator() as emulator:
            config = PrintNodeConfig(
                api_key=emulator.api_key, printer_id=emulator.printer_id, base_url=emulator.base_url, timeout=5
            )
            unreachable = PrintNodeConfig(
                api_key=emulator.api_key, printer_id=emulator.printer_id, base_url=f"http://127.0.0.1:{closed_port()}"
            )
            yield Harness(
                kind,
                config,
                unreachable,
                delivered=lambda expected: [job.data * job.qty for job in emulator.jobs.values()],
                printed_form=lambda doc: doc.content * doc.copies,
            )
    elif kind == "escpos":
        with EscposListener() as listener:
            yield Harness(
                kind,
                EscposConfig(host=listener.host, port=listener.port, timeout=5),
                EscposConfig(host="127.0.0.1", port=closed_port(), timeout=2),
                delivered=lambda expected: listener.wait_for(expected, timeout=5 if expected else 0.3),
                printed_form=lambda doc: (
                    (
                        render_receipt_escpos(Receipt.from_bytes(doc.content))
                        if doc.content_type == RECEIPT
                        else doc.content
                    )
                    * doc.copies
                ),
            )
    else:
        pytest.fail(f"printer kind {kind!r} is registered but has no conformance harness here")


class TestPrinterConformance:
    """What every driver in PRINTERS must do; a new kind gets a harness above and passes all of this."""

    def test_registered_under_its_kind(self, harness: Harness) -> None:
        driver = harness.driver()

        assert isinstance(driver, PRINTERS[harness.kind])
        assert driver.kind == harness.kind
        assert driver.accepts
        assert driver.accepts <= CONTENT_TYPES

    def test_refuses_another_kinds_config(self, harness: Harness) -> None:
        other = next(
            h for h in (PrintNodeConfig("k", 1), EscposConfig("127.0.0.1")) if type(h) is not type(harness.config)
        )

        with pytest.raises(TypeError):
            printer_for(harness.kind, other)

    def test_prints_every_content_type_it_accepts(self, harness: Harness) -> None:
        driver = harness.driver()
        documents = [sample(content_type) for content_type in sorted(driver.accepts)]

        results = [driver.print(document) for document in documents]

        assert harness.delivered(len(documents)) == [harness.printed_form(d) for d in documents]
        for result in results:
            assert isinstance(result.state, JobState)
            assert result.job_id is not None or result.state.final

    def test_prints_copies(self, harness: Harness) -> None:
        driver = harness.driver()
        document = sample(ESCPOS, copies=3)

        driver.print(document)

        assert harness.delivered(1) == [SAMPLE_ESCPOS * 3]

    def test_refuses_every_other_content_type_and_sends_nothing(self, harness: Harness) -> None:
        driver = harness.driver()

        for content_type in sorted(CONTENT_TYPES - driver.accepts):
            with pytest.raises(PrinterRejected) as refused:
                driver.print(sample(content_type))
            assert refused.value.retryable is False
            assert content_type in str(refused.value)

        assert harness.delivered(0) == []

    def test_refuses_an_empty_document(self, harness: Harness) -> None:
        driver = harness.driver()
        empty = PrintDocument(b"", sorted(driver.accepts)[0], "empty label")

        with pytest.raises(PrinterRejected, match="empty"):
            driver.print(empty)

        assert harness.delivered(0) == []

    def test_an_unreachable_printer_is_worth_retrying(self, harness: Harness) -> None:
        driver = printer_for(harness.kind, harness.unreachable)

        with pytest.raises(PrinterUnavailable) as unavailable:
            driver.print(sample(ESCPOS))

        assert unavailable.value.retryable is True
        assert unavailable.value.outcome_unknown is False

    def test_job_state_is_known_or_final(self, harness: Harness) -> None:
        driver = harness.driver()

        result = driver.print(sample(ESCPOS))

        if result.job_id is None:
            assert result.state.final
            with pytest.raises(NotSupported):
                driver.job_state("anything")
        else:
            assert driver.job_state(result.job_id).state in set(JobState)


# ------------------------------------------------------------------------------------- the contract itself


def test_printer_for_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="escpos, printnode"):
        printer_for("cups", EscposConfig("127.0.0.1"))


def test_a_document_of_an_unknown_content_type_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="unknown content type"):
        PrintDocument(b"^XA^XZ", "text/zpl", "label")
    with pytest.raises(ValueError, match="copies"):
        PrintDocument(b"^XA^XZ", ZPL, "label", copies=0)


def test_errors_say_whether_to_retry() -> None:
    assert PrinterUnavailable("down").retryable is True
    assert PrinterUnavailable("answer lost", outcome_unknown=True).retryable is False
    assert PrinterRejected("bad").retryable is False
    assert PrinterAuthFailed("key").retryable is False


def test_a_receipt_survives_its_byte_form() -> None:
    document = PrintDocument.for_receipt(SAMPLE_RECEIPT, title="SO-1001")

    assert document.content_type == RECEIPT
    assert Receipt.from_bytes(document.content) == SAMPLE_RECEIPT


def test_a_receipt_barcode_must_be_printable_ascii() -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        Receipt(title_lines=["x"], barcode="SO-1001-Ž")


# ------------------------------------------------------------------------------------------------ PrintNode


@pytest.fixture
def printnode() -> Iterator[PrintNodeEmulator]:
    with PrintNodeEmulator() as emulator:
        yield emulator


def printnode_printer(emulator: PrintNodeEmulator, **overrides: object) -> PrintNodePrinter:
    settings: dict[str, object] = {
        "api_key": emulator.api_key,
        "printer_id": emulator.printer_id,
        "base_url": emulator.base_url,
        "timeout": 5.0,
    }
    settings.update(overrides)
    return PrintNodePrinter(PrintNodeConfig(**settings))  # type: ignore[arg-type]


def test_printnode_posts_a_pdf_as_pdf_base64_with_the_key_as_basic_username(printnode: PrintNodeEmulator) -> None:
    printer = printnode_printer(printnode, source="OMS packing")

    result = printer.print(PrintDocument(SAMPLE_PDF, PDF, "Packing slip SO-1001"))

    [post] = printnode.job_posts()
    expected_auth = "Basic " + base64.b64encode(f"{printnode.api_key}:".encode()).decode()
    assert post.headers["Authorization"] == expected_auth
    assert post.json == {
        "printerId": printnode.printer_id,
        "title": "Packing slip SO-1001",
        "contentType": "pdf_base64",
        "content": base64.b64encode(SAMPLE_PDF).decode(),
        "source": "OMS packing",
    }
    [job] = printnode.jobs.values()
    assert result.job_id == str(job.id)
    assert result.state is JobState.QUEUED
    assert job.data == SAMPLE_PDF


@pytest.mark.parametrize("content_type", [ZPL, ESCPOS])
def test_printnode_sends_zpl_and_escpos_as_raw_base64(printnode: PrintNodeEmulator, content_type: str) -> None:
    printer = printnode_printer(printnode, expire_after=600)

    printer.print(sample(content_type, copies=2))

    [post] = printnode.job_posts()
    assert post.json["contentType"] == "raw_base64"
    assert base64.b64decode(post.json["content"]) == SAMPLES[content_type]
    assert post.json["qty"] == 2
    assert post.json["expireAfter"] == 600


def test_printnode_refuses_a_receipt_and_says_how_to_send_one(printnode: PrintNodeEmulator) -> None:
    with pytest.raises(PrinterRejected, match="render_receipt_escpos"):
        printnode_printer(printnode).print(PrintDocument.for_receipt(SAMPLE_RECEIPT, title="SO-1001"))

    assert printnode.requests == []


def test_printnode_refuses_bytes_that_are_not_a_pdf_before_posting(printnode: PrintNodeEmulator) -> None:
    with pytest.raises(PrinterRejected, match="not one"):
        printnode_printer(printnode).print(PrintDocument(b"<html>label</html>", PDF, "label"))

    assert printnode.requests == []


def test_printnode_wrong_api_key_is_an_auth_failure(printnode: PrintNodeEmulator) -> None:
    printer = printnode_printer(printnode, api_key="not-the-key")

    with pytest.raises(PrinterAuthFailed) as failed:
        printer.print(sample(ZPL))

    assert failed.value.retryable is False
    assert "401" in str(failed.value)
    assert printnode.jobs == {}


def test_printnode_unknown_printer_is_rejected_with_printnodes_message(printnode: PrintNodeEmulator) -> None:
    printer = printnode_printer(printnode, printer_id=42)

    with pytest.raises(PrinterRejected, match="printerId 42") as rejected:
        printer.print(sample(ZPL))

    assert rejected.value.retryable is False
    [post] = printnode.job_posts()
    assert post.status == 400
    assert set(post.response) == {"uid", "code", "message"}


def test_printnode_throttle_is_retryable_after_the_given_time(printnode: PrintNodeEmulator) -> None:
    printnode.fail_next(status=429, retry_after=2.5)

    with pytest.raises(PrinterUnavailable) as throttled:
        printnode_printer(printnode).print(sample(ZPL))

    assert throttled.value.retry_after == 2.5
    assert throttled.value.retryable is True
    assert throttled.value.outcome_unknown is False
    assert printnode.jobs == {}


def test_printnode_rate_limit_answers_429_beyond_the_burst() -> None:
    with PrintNodeEmulator(rate_per_second=0.01, burst=2) as emulator:
        printer = printnode_printer(emulator)
        printer.print(sample(ZPL))
        printer.print(sample(ZPL))

        with pytest.raises(PrinterUnavailable) as throttled:
            printer.print(sample(ZPL))

        assert throttled.value.retry_after is not None
        assert throttled.value.retry_after > 0
        assert len(emulator.jobs) == 2


def test_printnode_lost_answer_is_not_retried_and_can_be_found(printnode: PrintNodeEmulator) -> None:
    printnode.fail_next(status=502, after=True)  # PrintNode created the job; the gateway lost the answer
    printer = printnode_printer(printnode)

    with pytest.raises(PrinterUnavailable) as lost:
        printer.print(sample(ZPL, title="Label SO-1001 attempt 7"))

    assert lost.value.outcome_unknown is True
    assert lost.value.retryable is False
    assert len(printnode.job_posts()) == 1
    [job] = printnode.jobs.values()
    assert printer.find_job("Label SO-1001 attempt 7") == str(job.id)
    assert printer.find_job("Label SO-1001 attempt 8") is None


def test_printnode_timeout_after_posting_leaves_the_outcome_unknown() -> None:
    with PrintNodeEmulator(latency=1.5) as emulator:
        printer = printnode_printer(emulator, timeout=0.3)

        with pytest.raises(PrinterUnavailable) as timed_out:
            printer.print(sample(ZPL))

        assert timed_out.value.outcome_unknown is True
        assert len(emulator.job_posts()) == 1
        assert len(emulator.jobs) == 1


def test_printnode_job_state_follows_the_printnode_client(printnode: PrintNodeEmulator) -> None:
    printer = printnode_printer(printnode)
    job_id = printer.print(sample(ZPL)).job_id
    assert job_id is not None

    assert printer.job_state(job_id).state is JobState.QUEUED
    printnode.set_job_state(job_id, "sent_to_client")
    assert printer.job_state(job_id).state is JobState.SENT
    printnode.set_job_state(job_id, "done")
    status = printer.job_state(job_id)
    assert (status.state, status.vendor_state) == (JobState.DONE, "done")
    printnode.set_job_state(job_id, "error", "Printer out of paper")
    assert printer.job_state(job_id).state is JobState.FAILED


def test_printnode_job_state_of_an_unknown_job_is_rejected(printnode: PrintNodeEmulator) -> None:
    with pytest.raises(PrinterRejected, match="no print job 99"):
        printnode_printer(printnode).job_state("99")


# ------------------------------------------------------------------------------------------------- ESC/POS


@pytest.fixture
def listener() -> Iterator[EscposListener]:
    with EscposListener() as peer:
        yield peer


def escpos_printer(peer: EscposListener, **overrides: object) -> EscposPrinter:
    settings: dict[str, object] = {"host": peer.host, "port": peer.port, "timeout": 5.0}
    settings.update(overrides)
    return EscposPrinter(EscposConfig(**settings))  # type: ignore[arg-type]


def test_escpos_receipt_reaches_the_printer_as_escpos(listener: EscposListener) -> None:
    result = escpos_printer(listener).print(PrintDocument.for_receipt(SAMPLE_RECEIPT, title="SO-1001"))

    [received] = listener.wait_for(1)
    assert result.state is JobState.DONE
    assert received.startswith(b"\x1b@")  # ESC @: initialise
    assert b"Order SO-1001" in received
    assert b"2 x MUG-BLUE" in received
    assert b"A-01-3" in received
    assert b"\x1dkI" + bytes([len("{BSO-1001")]) + b"{BSO-1001" in received  # GS k, CODE128, function B
    assert received.rindex(b"\x1dV") > received.index(b"\x1dk")  # GS V: the cut comes last
    assert received.endswith(b"\x1dV\x00")


def test_escpos_raw_bytes_are_sent_as_they_are(listener: EscposListener) -> None:
    escpos_printer(listener).print(PrintDocument(SAMPLE_ESCPOS, ESCPOS, "raw"))

    assert listener.wait_for(1) == [SAMPLE_ESCPOS]


def test_escpos_refuses_a_pdf_and_says_it_does_not_convert(listener: EscposListener) -> None:
    with pytest.raises(PrinterRejected, match="does not convert") as refused:
        escpos_printer(listener).print(PrintDocument(SAMPLE_PDF, PDF, "Packing slip"))

    assert refused.value.retryable is False
    assert listener.wait_for(1, timeout=0.3) == []


def test_escpos_refused_connection_is_unavailable_until_the_printer_is_back(listener: EscposListener) -> None:
    printer = escpos_printer(listener)
    listener.refuse()

    with pytest.raises(PrinterUnavailable, match="unreachable"):
        printer.print(PrintDocument(SAMPLE_ESCPOS, ESCPOS, "raw"))

    listener.listen()
    printer.print(PrintDocument(SAMPLE_ESCPOS, ESCPOS, "raw"))
    assert listener.wait_for(1) == [SAMPLE_ESCPOS]


def test_escpos_connection_reset_mid_job_leaves_the_outcome_unknown() -> None:
    # More than loopback's socket buffers hold, so the sender is still writing when the printer resets.
    payload = b"\x1b@" + b"x" * (32 * 1024 * 1024)
    with EscposListener(mode="reset", reset_after=4096) as peer:
        with pytest.raises(PrinterUnavailable, match="mid-job") as dropped:
            escpos_printer(peer).print(PrintDocument(payload, ESCPOS, "big"))

        assert dropped.value.outcome_unknown is True
        assert dropped.value.retryable is False
        # The listener's thread records the connection after it cut it; the sender may notice the cut first.
        peer.wait_for(1)
        [connection] = peer.connections
        assert connection.data.startswith(b"\x1b@")
        assert not connection.closed_by_peer


def test_escpos_malformed_receipt_is_rejected(listener: EscposListener) -> None:
    with pytest.raises(PrinterRejected, match="not a receipt"):
        escpos_printer(listener).print(PrintDocument(b'{"fields": []}', RECEIPT, "SO-1001"))


def test_escpos_unknown_profile_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="no printer profile"):
        EscposPrinter(EscposConfig(host="127.0.0.1", profile="TM-NOPE"))


def test_render_receipt_escpos_gives_storable_bytes() -> None:
    data = render_receipt_escpos(SAMPLE_RECEIPT, profile="TM-T88V")

    assert data.startswith(b"\x1b@")
    assert b"Main Shop" in data
    assert b"Thank you for your order" in data
    assert b"\x1dkI" in data
    assert data.endswith(b"\x1dV\x00")
    assert render_receipt_escpos(SAMPLE_RECEIPT, profile="TM-T88V") == data


def test_render_receipt_escpos_writes_accented_text_in_a_code_page() -> None:
    receipt = Receipt(title_lines=["Zásilkovna"], fields=[("Customer", "Žluťoučký kůň")], barcode="Z-1")

    data = render_receipt_escpos(receipt)

    assert b"\x1bt" in data  # ESC t: code page selection for the accented letters
    assert b"lu" in data
    assert b"kov" in data
    for letter in "ŽťáůčýŽ":
        assert letter.encode() not in data  # never UTF-8: thermal printers read code pages
