"""Printers: the contract for sending a rendered document to a packer's printer, and its two drivers.

Plain Python, no Django and no models: services build a `PrintDocument`, get a driver from
`printer_for(kind, config)`, call `print()` and decide on retries from `PrinterError.retryable`. Only this
module knows PrintNode's JSON or speaks ESC/POS.

Nothing here ever prints a document twice on its own. We found no idempotency key for print jobs in
PrintNode's API reference, so a POST that may have reached PrintNode is never repeated: when its answer is
lost the driver raises `PrinterUnavailable(outcome_unknown=True)` (not retryable) and the caller decides, with
`find_job()` to look for the job by title. The same holds for an ESC/POS connection that broke mid-receipt.
"""

from __future__ import annotations

import abc
import base64
import enum
import json
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import requests
import urllib3.exceptions
from escpos.capabilities import get_profile
from escpos.exceptions import DeviceNotFoundError
from escpos.printer import Dummy, Network

# What a PrintDocument can hold. RECEIPT is a Receipt serialised to JSON (see PrintDocument.for_receipt), so
# that it can be stored and queued like any other document and rendered by the ESC/POS driver at the printer.
PDF = "application/pdf"
ZPL = "application/zpl"
ESCPOS = "application/escpos"
RECEIPT = "application/vnd.oms.receipt+json"
CONTENT_TYPES = frozenset({PDF, ZPL, ESCPOS, RECEIPT})
MAX_COPIES = 100


# --------------------------------------------------------------------------------------------------- errors


class PrinterError(Exception):
    """Printing failed; `retryable` says whether sending the same document again later may help."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class PrinterUnavailable(PrinterError):
    """The printer or print service could not be reached or is busy: connection refused, a timeout, a 5xx, a 429.

    `outcome_unknown` means the document may already have been taken (a POST whose answer was lost, a socket
    that broke mid-send): printing it again may print it twice, so such an error is not retryable.
    """

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, outcome_unknown: bool = False) -> None:
        super().__init__(message, retryable=not outcome_unknown)
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown


class PrinterRejected(PrinterError):
    """The printer or service refused this document as it is (wrong format, empty, a 4xx): do not send it again."""

    retryable = False


class PrinterAuthFailed(PrinterRejected):
    """The print service refused our credentials (PrintNode 401/403)."""


class NotSupported(PrinterError):
    """An optional operation this kind of printer does not offer."""

    retryable = False


# ---------------------------------------------------------------------------------------------- documents


@dataclass(frozen=True, slots=True)
class ReceiptItem:
    qty: int
    sku: str
    title: str
    bin: str = ""


@dataclass(frozen=True, slots=True)
class Receipt:
    """A small thermal-printer document: rendered to ESC/POS by `render_receipt_escpos`.

    `fields` are key-value lines ("Order", "#1001"); `barcode` is printed as CODE128 (printable ASCII only);
    `qr` is any text, printed as a QR code image; `footer` may hold several lines.
    """

    title_lines: Sequence[str]
    fields: Sequence[tuple[str, str]] = ()
    items: Sequence[ReceiptItem] = ()
    barcode: str = ""
    qr: str = ""
    footer: str = ""

    def __post_init__(self) -> None:
        # Tuples keep a frozen receipt hashable and immutable whatever sequences it was built from.
        object.__setattr__(self, "title_lines", tuple(self.title_lines))
        object.__setattr__(self, "fields", tuple((str(k), str(v)) for k, v in self.fields))
        object.__setattr__(self, "items", tuple(self.items))
        if self.barcode and not all(" " <= ch <= "~" for ch in self.barcode):
            raise ValueError(f"a CODE128 barcode takes printable ASCII only, not {self.barcode!r}")
        if len(self.barcode) > 80:
            raise ValueError("a CODE128 barcode of more than 80 characters does not fit a receipt")

    def to_bytes(self) -> bytes:
        data = {
            "title_lines": list(self.title_lines),
            "fields": [list(pair) for pair in self.fields],
            "items": [{"qty": i.qty, "sku": i.sku, "title": i.title, "bin": i.bin} for i in self.items],
            "barcode": self.barcode,
            "qr": self.qr,
            "footer": self.footer,
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Receipt:
        """The receipt `to_bytes` wrote; ValueError for anything else."""
        try:
            raw = json.loads(data.decode())
            return cls(
                title_lines=[str(line) for line in raw["title_lines"]],
                fields=[(str(k), str(v)) for k, v in raw.get("fields", [])],
                items=[
                    ReceiptItem(qty=int(i["qty"]), sku=str(i["sku"]), title=str(i["title"]), bin=str(i.get("bin", "")))
                    for i in raw.get("items", [])
                ],
                barcode=str(raw.get("barcode", "")),
                qr=str(raw.get("qr", "")),
                footer=str(raw.get("footer", "")),
            )
        except (UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a receipt: {exc}") from exc


@dataclass(frozen=True, slots=True)
class PrintDocument:
    """Bytes to print. `content_type` is one of CONTENT_TYPES: PDF, ZPL (raw), ESCPOS (raw) or RECEIPT."""

    content: bytes
    content_type: str
    title: str
    copies: int = 1

    def __post_init__(self) -> None:
        if self.content_type not in CONTENT_TYPES:
            raise ValueError(f"unknown content type {self.content_type!r}; expected one of {sorted(CONTENT_TYPES)}")
        if not 1 <= self.copies <= MAX_COPIES:
            raise ValueError(f"copies must be 1..{MAX_COPIES}, not {self.copies}")

    @classmethod
    def for_receipt(cls, receipt: Receipt, *, title: str, copies: int = 1) -> PrintDocument:
        return cls(content=receipt.to_bytes(), content_type=RECEIPT, title=title, copies=copies)


class JobState(enum.StrEnum):
    QUEUED = "queued"  # accepted by the print service, not yet at the printer's computer
    SENT = "sent"  # on its way to or at the printer
    DONE = "done"  # the printer (or its spooler) took it
    FAILED = "failed"  # it will not print: error, expired, deleted

    @property
    def final(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED)


@dataclass(frozen=True, slots=True)
class PrintResult:
    """What print() achieved. `job_id` is the print service's id (None where there is none to ask about)."""

    job_id: str | None
    state: JobState


@dataclass(frozen=True, slots=True)
class JobStatus:
    state: JobState
    vendor_state: str  # the service's own word, for the packer's screen and the logs


# ------------------------------------------------------------------------------------------------ configs


@dataclass(frozen=True, slots=True)
class PrintNodeConfig:
    api_key: str
    printer_id: int
    base_url: str = "https://api.printnode.com"
    timeout: float = 20.0  # seconds to wait for an answer once connected
    connect_timeout: float = 5.0
    source: str = "OMS"  # PrintNode's free-text "where did this job come from"
    expire_after: int | None = None  # seconds PrintNode keeps trying to deliver (its default is 14 days)


@dataclass(frozen=True, slots=True)
class EscposConfig:
    host: str
    port: int = 9100
    profile: str = ""  # a python-escpos capabilities profile ("TM-T88V"); "" for the generic one
    timeout: float = 10.0


PrinterConfig = PrintNodeConfig | EscposConfig


# ----------------------------------------------------------------------------------------------- contract


class PrinterDriver(abc.ABC):
    """One printer. `print()` checks the document against `accepts`, then hands it to the driver."""

    kind: ClassVar[str]
    accepts: ClassVar[frozenset[str]]
    # Why a content type outside `accepts` is refused, where a plain "cannot print" would not help.
    refusal_hints: ClassVar[dict[str, str]] = {}

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: PrinterConfig) -> Self:
        """The driver for `config`; TypeError when it is another kind's config."""

    def print(self, document: PrintDocument) -> PrintResult:
        if document.content_type not in self.accepts:
            hint = self.refusal_hints.get(document.content_type, "")
            takes = ", ".join(sorted(self.accepts))
            raise PrinterRejected(
                f"a {self.kind} printer cannot print {document.content_type} (it takes {takes})"
                + (f": {hint}" if hint else "")
            )
        if not document.content:
            raise PrinterRejected(f"{document.title or 'the document'} is empty")
        return self._deliver(document)

    @abc.abstractmethod
    def _deliver(self, document: PrintDocument) -> PrintResult:
        """Send a document that `print()` has checked."""

    def job_state(self, job_id: str) -> JobStatus:
        raise NotSupported(f"a {self.kind} printer reports no job state")


# ---------------------------------------------------------------------------------------------- PrintNode

# The job states PrintNode reports, as far as its reference and client libraries show them ("new" when created,
# then what the PrintNode client says); a state not listed counts as still in flight, so that a caller
# polling with a deadline gives up rather than trusting a guess.
_PRINTNODE_STATES: dict[str, JobState] = {
    "new": JobState.QUEUED,
    "sent_to_client": JobState.SENT,
    "queued": JobState.SENT,
    "in_progress": JobState.SENT,
    "done": JobState.DONE,
    "error": JobState.FAILED,
    "expired": JobState.FAILED,
    "deleted": JobState.FAILED,
    "cancelled": JobState.FAILED,
}


class PrintNodePrinter(PrinterDriver):
    """A printer behind PrintNode's cloud API (api.printnode.com): PDFs and raw ZPL/ESC-POS."""

    kind = "printnode"
    accepts = frozenset({PDF, ZPL, ESCPOS})
    refusal_hints = {RECEIPT: "render it with render_receipt_escpos() and send the ESC/POS bytes"}
    _PRINTNODE_CONTENT_TYPES: ClassVar[dict[str, str]] = {PDF: "pdf_base64", ZPL: "raw_base64", ESCPOS: "raw_base64"}

    def __init__(self, config: PrintNodeConfig, *, session: requests.Session | None = None) -> None:
        if not config.api_key:
            raise ValueError("a PrintNode printer needs an API key")
        self.config = config
        self._session = session or requests.Session()

    @classmethod
    def from_config(cls, config: PrinterConfig) -> Self:
        if not isinstance(config, PrintNodeConfig):
            raise TypeError(f"a PrintNode printer takes a PrintNodeConfig, not {type(config).__name__}")
        return cls(config)

    def _deliver(self, document: PrintDocument) -> PrintResult:
        if document.content_type == PDF and not document.content.startswith(b"%PDF-"):
            raise PrinterRejected(f"{document.title or 'the document'} is labelled PDF but is not one")
        body: dict[str, Any] = {
            "printerId": self.config.printer_id,
            "title": document.title,
            "contentType": self._PRINTNODE_CONTENT_TYPES[document.content_type],
            "content": base64.b64encode(document.content).decode("ascii"),
            "source": self.config.source,
        }
        if document.copies > 1:
            body["qty"] = document.copies
        if self.config.expire_after is not None:
            body["expireAfter"] = self.config.expire_after
        response = self._request("POST", "/printjobs", json_body=body, creates=True)
        try:
            job_id = int(response.json())
        except (ValueError, TypeError) as exc:
            # PrintNode said 2xx, so the job exists; without its id we cannot follow it.
            raise PrinterUnavailable(
                f"PrintNode accepted the job but answered {response.text[:100]!r}", outcome_unknown=True
            ) from exc
        return PrintResult(job_id=str(job_id), state=JobState.QUEUED)

    def job_state(self, job_id: str) -> JobStatus:
        jobs = self._request("GET", f"/printjobs/{int(job_id)}").json()
        if not isinstance(jobs, list) or not jobs:
            raise PrinterRejected(f"PrintNode knows no print job {job_id}")
        vendor_state = str(jobs[0].get("state") or "")
        return JobStatus(_PRINTNODE_STATES.get(vendor_state, JobState.SENT), vendor_state)

    def find_job(self, title: str, *, limit: int = 100) -> str | None:
        """The newest job on this printer titled `title` among its last `limit`, to settle an unknown outcome."""
        params = {"limit": str(limit), "dir": "desc"}
        jobs = self._request("GET", f"/printers/{self.config.printer_id}/printjobs", params=params).json()
        for job in jobs if isinstance(jobs, list) else []:
            if isinstance(job, dict) and job.get("title") == title:
                return str(job["id"])
        return None

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        creates: bool = False,
    ) -> requests.Response:
        url = self.config.base_url.rstrip("/") + path
        try:
            response = self._session.request(
                method,
                url,
                json=json_body,
                params=params,
                auth=(self.config.api_key, ""),
                headers={"Accept": "application/json"},
                timeout=(self.config.connect_timeout, self.config.timeout),
            )
        except requests.RequestException as exc:
            raise PrinterUnavailable(
                f"PrintNode {method} {path} failed: {exc}", outcome_unknown=creates and not _never_reached(exc)
            ) from exc
        status = response.status_code
        if status < 300:
            return response
        message = f"PrintNode {method} {path} answered {status}: {_printnode_message(response)}"
        if status in (401, 403):
            raise PrinterAuthFailed(message)
        if status == 429:
            # The rate limiter (10 requests/s per account) refuses before anything is created.
            raise PrinterUnavailable(message, retry_after=_retry_after(response) or 1.0)
        if status >= 500:
            raise PrinterUnavailable(message, retry_after=_retry_after(response), outcome_unknown=creates)
        raise PrinterRejected(message)


def _never_reached(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the server: no connection was ever made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # requests wraps urllib3's MaxRetryError(reason=...)
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _printnode_message(response: requests.Response) -> str:
    # PrintNode's errors are {"uid", "code", "message"}.
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("code") or body)[:200]
    return str(body)[:200]


# ------------------------------------------------------------------------------------------------ ESC/POS


class EscposPrinter(PrinterDriver):
    """A thermal receipt printer on the network (raw TCP, port 9100): raw ESC/POS bytes or a Receipt."""

    kind = "escpos"
    accepts = frozenset({ESCPOS, RECEIPT})
    refusal_hints = {
        PDF: "ESC/POS printers do not read PDF and this driver does not convert one; "
        "send a Receipt, or ESC/POS bytes rendered elsewhere",
        ZPL: "ZPL is for label printers; send it to a PrintNode printer",
    }

    def __init__(self, config: EscposConfig) -> None:
        if not config.host:
            raise ValueError("an ESC/POS printer needs a host")
        _check_profile(config.profile)
        self.config = config

    @classmethod
    def from_config(cls, config: PrinterConfig) -> Self:
        if not isinstance(config, EscposConfig):
            raise TypeError(f"an ESC/POS printer takes an EscposConfig, not {type(config).__name__}")
        return cls(config)

    def _deliver(self, document: PrintDocument) -> PrintResult:
        if document.content_type == RECEIPT:
            try:
                receipt = Receipt.from_bytes(document.content)
            except ValueError as exc:
                raise PrinterRejected(f"{document.title or 'the receipt'}: {exc}") from exc
            payload = render_receipt_escpos(receipt, profile=self.config.profile)
        else:
            payload = document.content
        where = f"{self.config.host}:{self.config.port}"
        printer = Network(
            self.config.host, port=self.config.port, timeout=self.config.timeout, profile=self.config.profile or None
        )
        try:
            printer.open()
        except DeviceNotFoundError as exc:
            raise PrinterUnavailable(f"ESC/POS printer {where} unreachable: {exc}") from exc
        try:
            for _ in range(document.copies):
                # Network has no public raw write; _raw is its documented "send these bytes as they are".
                printer._raw(payload)
        except OSError as exc:
            raise PrinterUnavailable(
                f"ESC/POS printer {where} dropped the connection mid-job: {exc}", outcome_unknown=True
            ) from exc
        finally:
            printer.close()
        # Port 9100 takes bytes and says nothing back: once they are sent there is no later state to ask for.
        return PrintResult(job_id=None, state=JobState.DONE)


def _check_profile(profile: str) -> None:
    if not profile:
        return
    try:
        get_profile(profile)
    except KeyError:
        raise ValueError(f"python-escpos knows no printer profile {profile!r}") from None


def _two_columns(left: str, right: str, width: int) -> str:
    if not right:
        return left[:width]
    room = max(width - len(right) - 1, 1)
    return f"{left[:room]:<{room}} {right}"


def _wrapped(text: str, width: int, indent: str = "") -> Iterable[str]:
    for paragraph in text.splitlines() or [""]:
        yield from textwrap.wrap(paragraph, width, initial_indent=indent, subsequent_indent=indent) or [indent]


def render_receipt_escpos(receipt: Receipt, *, profile: str = "") -> bytes:
    """The ESC/POS bytes that print `receipt`: init, bold centred title, fields, items with bins, CODE128 of
    `barcode`, a QR image of `qr`, the footer, then a cut. Plain bytes, to store, download or send."""
    _check_profile(profile)
    out = Dummy(profile=profile or None)
    columns = out.profile.get_columns("a") or 42
    out.hw("INIT")
    for number, line in enumerate(receipt.title_lines):
        out.set(align="center", bold=True, double_height=number == 0, normal_textsize=number != 0)
        for chunk in _wrapped(line, columns):
            out.textln(chunk)
    out.set_with_default()
    for key, value in receipt.fields:
        out.textln(_two_columns(f"{key}:", value, columns))
    if receipt.items:
        out.textln("-" * columns)
        for item in receipt.items:
            out.set(bold=True)
            out.textln(_two_columns(f"{item.qty} x {item.sku}", item.bin, columns))
            out.set(bold=False)
            for chunk in _wrapped(item.title, columns, indent="    "):
                out.textln(chunk)
        out.textln("-" * columns)
    if receipt.barcode:
        # Function B takes "{B" to choose code set B; a literal "{" is written "{{".
        data = "{B" + receipt.barcode.replace("{", "{{")
        out.barcode(data, "CODE128", height=64, width=2, pos="BELOW", function_type="B")
        out.set_with_default()
    if receipt.qr:
        width = out.profile.profile_data.get("media", {}).get("width", {}).get("pixels")
        out.qr(receipt.qr, size=5, native=False, center=isinstance(width, int))
        out.set_with_default()
    if receipt.footer:
        out.set(align="center")
        for chunk in _wrapped(receipt.footer, columns):
            out.textln(chunk)
        out.set_with_default()
    out.cut()
    return bytes(out.output)


# ----------------------------------------------------------------------------------------------- registry

PRINTERS: dict[str, type[PrinterDriver]] = {
    PrintNodePrinter.kind: PrintNodePrinter,
    EscposPrinter.kind: EscposPrinter,
}


def printer_for(kind: str, config: PrinterConfig) -> PrinterDriver:
    """The driver for a printer of `kind` ("printnode", "escpos") set up with `config`."""
    try:
        driver = PRINTERS[kind]
    except KeyError:
        raise ValueError(f"unknown printer kind {kind!r}; known: {', '.join(sorted(PRINTERS))}") from None
    return driver.from_config(config)
