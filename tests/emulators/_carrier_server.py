"""What the DPD, GLS and Packeta emulators share: a ThreadingHTTPServer on 127.0.0.1, recording, outages, labels.

An emulator subclasses CarrierEmulator and implements `dispatch(request) -> Reply`. The base records every
request it received (method, path, query, headers, raw body) with the status it answered, can be told to answer
the next requests with a failure (`fail_next`: a 5xx or a 429 with Retry-After, before running the request or
after it, when the request's effects stay and only the answer is lost), and can answer slowly (`latency`,
for every path or only for paths containing `latency_path`).

`pdf_document` and `zpl_document` make small, valid label documents: a real PDF (one A6 page per label, text
in Helvetica, readable by pypdf) and ZPL II (one ^XA...^XZ block per label).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    received_at: float
    status: int = 0  # what the emulator answered (0 until it answered)

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, **headers: str) -> Reply:
        return cls(status, json.dumps(payload, ensure_ascii=False).encode(), headers=dict(headers))

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/html; charset=utf-8") -> Reply:
        return cls(status, text.encode(), content_type=content_type)


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    after: bool  # run the request first: its effects stay, only the answer is lost
    path_contains: str
    when: Callable[[RecordedRequest], bool] | None = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall
    server_version = "nginx"
    sys_version = ""
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _dispatch(self) -> None:
        self.server.emulator._handle(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: CarrierEmulator


class CarrierEmulator:
    """Lifecycle, recording and failure injection; subclasses implement `dispatch` and `shipments_booked`."""

    name = "carrier"

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency  # seconds before each answer
        self.latency_path = ""  # only requests whose path contains this are slow ("" = all)
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._failures: deque[_Failure] = deque()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start()")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ----------------------------------------------------------------------------------------- control

    def fail_next(
        self,
        status: int = 503,
        *,
        count: int = 1,
        retry_after: str | None = None,
        after: bool = False,
        path_contains: str = "",
        when: Callable[[RecordedRequest], bool] | None = None,
    ) -> None:
        """Answer the next `count` requests whose path contains `path_contains` (and for which `when` is true,
        when given) with `status`."""
        with self._lock:
            for _ in range(count):
                self._failures.append(_Failure(status, retry_after, after, path_contains, when))

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path_part: str) -> list[RecordedRequest]:
        return [r for r in self.requests if path_part in r.path]

    @property
    def shipments_booked(self) -> int:
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ serving

    def dispatch(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def _take_failure(self, request: RecordedRequest) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.path_contains in request.path and (failure.when is None or failure.when(request)):
                    self._failures.remove(failure)
                    return failure
        return None

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        request = RecordedRequest(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            received_at=time.time(),
        )
        if self.latency and self.latency_path in request.path:
            time.sleep(self.latency)
        failure = self._take_failure(request)
        if failure is not None and failure.after:
            self._safe_dispatch(request)
        if failure is not None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
            reply = Reply.text(failure.status, f"<html><body><h1>{failure.status}</h1></body></html>")
            reply.headers.update(headers)
        else:
            reply = self._safe_dispatch(request)
        with self._lock:
            self._requests.append(_with_status(request, reply.status))
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout): nothing to tell
            return

    def _safe_dispatch(self, request: RecordedRequest) -> Reply:
        try:
            return self.dispatch(request)
        except Exception as exc:  # an emulator bug must show as a 500, not hang the client
            return Reply.text(500, f"emulator error: {exc!r}", content_type="text/plain")


def _with_status(request: RecordedRequest, status: int) -> RecordedRequest:
    return RecordedRequest(
        request.method, request.path, request.query, request.headers, request.body, request.received_at, status
    )


# ---------------------------------------------------------------------------------------------- labels


def _pdf_text(text: str) -> str:
    latin = text.encode("latin-1", "replace").decode("latin-1")
    return latin.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_document(pages: list[list[str]]) -> bytes:
    """A valid PDF with one A6 page per entry of `pages`, each showing its lines of text."""
    objects: list[bytes] = []
    font_number = 3
    page_numbers = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{n} 0 R" for n in page_numbers)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for number, lines in zip(page_numbers, pages, strict=True):
        text = " T* ".join(f"({_pdf_text(line)}) Tj" for line in lines)
        stream = f"BT /F1 11 Tf 14 TL 20 390 Td {text} ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 298 420] "
            f"/Resources << /Font << /F1 {font_number} 0 R >> >> /Contents {number + 1} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for index, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % index + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def zpl_document(labels: list[list[str]], *, dpi: int = 203) -> bytes:
    """ZPL II: one ^XA...^XZ block per label, each line a field; 4x6 in at `dpi`."""
    scale = dpi / 203
    blocks = []
    for lines in labels:
        fields = "".join(
            f"^FO{int(30 * scale)},{int((30 + 45 * i) * scale)}^A0N,{int(32 * scale)},{int(32 * scale)}"
            f"^FD{line.replace('^', ' ').replace('~', ' ')}^FS"
            for i, line in enumerate(lines)
        )
        blocks.append(f"^XA^CI28^PW{int(812 * scale)}^LL{int(1218 * scale)}{fields}^XZ")
    return "\n".join(blocks).encode()
