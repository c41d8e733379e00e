"""A PrintNode API emulator on 127.0.0.1: one account with a computer and its printers, and print jobs.

Speaks the wire format of PrintNode's API reference: HTTP Basic with the API key as username and an empty
password, JSON bodies, errors as `{"uid", "code", "message"}` with the uid repeated in `X-Request-Id`.
`POST /printjobs` checks every field (printerId of a known printer, title, source, contentType one of
pdf_uri/pdf_base64/raw_uri/raw_base64, content strict base64 and a real PDF for pdf_base64, qty and
expireAfter positive integers, no unknown keys) and answers 201 with the new job id as a bare JSON integer.
Reads: `/whoami`, `/computers`, `/printers`, `/printers/{set}`, `/printers/{set}/printjobs`,
`/printjobs`, `/printjobs/{set}`, `/printjobs/{set}/states`; sets are "1,2,3" or ranges "4-9"; lists take
`limit`, `after` and `dir` (default desc).

Jobs start `new`; `set_job_state()` moves them as the PrintNode client would (`sent_to_client`, `done`,
`error`, ...). The account allows `rate_per_second` requests (10, as PrintNode's) with a burst of `burst`,
then answers 429; `fail_next()` forces 5xx/429 answers, optionally after doing the work (`after=True`, the
answer is lost, the job exists). Every request is recorded for tests to assert on what a driver really sent.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from requests.structures import CaseInsensitiveDict

CONTENT_TYPES = frozenset({"pdf_uri", "pdf_base64", "raw_uri", "raw_base64"})
JOB_FIELDS = frozenset(
    {"printerId", "title", "contentType", "content", "source", "options", "expireAfter", "qty", "authentication"}
)
REQUIRED_JOB_FIELDS = ("printerId", "title", "contentType", "content", "source")
DEFAULT_EXPIRE_AFTER = 14 * 24 * 3600
_ERROR_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
}


def _timestamp(moment: float | None = None) -> str:
    when = datetime.fromtimestamp(moment if moment is not None else time.time(), UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query_string: str
    headers: CaseInsensitiveDict[str]
    raw_body: bytes
    json: Any  # the parsed body, or None when it was not JSON
    status: int
    response: Any


@dataclass
class PrintJob:
    id: int
    printer_id: int
    title: str
    content_type: str
    content: str  # as posted (base64 or a URI)
    source: str
    qty: int
    options: dict[str, Any]
    expire_after: int
    created_at: float
    states: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> str:
        return str(self.states[-1]["state"])

    @property
    def data(self) -> bytes:
        """The decoded document, for *_base64 jobs."""
        return base64.b64decode(self.content)


@dataclass
class _Failure:
    status: int
    retry_after: float | None
    after: bool


class _ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


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
    emulator: PrintNodeEmulator


class PrintNodeEmulator:
    """One PrintNode account on 127.0.0.1. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        rate_per_second: float = 10.0,
        burst: float = 20.0,
        latency: float = 0.0,
        computer_name: str = "PACKING-01",
    ) -> None:
        self.api_key = api_key or uuid.uuid4().hex
        self.account_id = 40000 + (uuid.uuid4().int % 10000)
        self.rate_per_second = rate_per_second
        self.burst = burst
        self.latency = latency  # seconds slept before answering (after the work is done)
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._failures: list[_Failure] = []
        self._tokens = burst
        self._tokens_at = time.monotonic()
        self._ids = itertools.count(1_000_001)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.computer = {
            "id": next(self._ids),
            "name": computer_name,
            "inet": "192.168.1.20",
            "inet6": None,
            "hostname": f"{computer_name.lower()}@warehouse",
            "version": "4.27.17",
            "jre": None,
            "createTimestamp": _timestamp(),
            "state": "connected",
        }
        self._printers: dict[int, dict[str, Any]] = {}
        self.jobs: dict[int, PrintJob] = {}
        self.printer_id = self.add_printer("Zebra ZD421")  # the default label printer
        self.receipt_printer_id = self.add_printer("EPSON TM-T88V Receipt")

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> PrintNodeEmulator:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="printnode-emulator", daemon=True
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

    def __enter__(self) -> PrintNodeEmulator:
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

    # ---------------------------------------------------------------------------------------- the account

    def add_printer(self, name: str, *, state: str = "online") -> int:
        with self._lock:
            printer_id = next(self._ids)
            self._printers[printer_id] = {
                "id": printer_id,
                "computer": self.computer,
                "name": name,
                "description": name,
                "capabilities": {"supports_custom_paper_size": True, "copies": 1, "dpis": ["203x203"]},
                "default": not self._printers,
                "createTimestamp": _timestamp(),
                "state": state,
            }
            return printer_id

    def set_job_state(self, job_id: int | str, state: str, message: str = "") -> None:
        """Move a job on, as the PrintNode client reports it (`sent_to_client`, `done`, `error`, ...)."""
        with self._lock:
            job = self.jobs[int(job_id)]
            job.states.append(self._state(job, state, message))

    def fail_next(
        self, count: int = 1, *, status: int = 503, retry_after: float | None = None, after: bool = False
    ) -> None:
        """Answer the next `count` API calls with `status`. With `after=True` the call is carried out first (a
        job is created) and only its answer is lost, as when a gateway times out after PrintNode committed."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after, after) for _ in range(count))

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def job_posts(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/printjobs"]

    # --------------------------------------------------------------------------------------------- HTTP

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        path, _, query_string = handler.path.partition("?")
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(dict(handler.headers.items()))
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        uid = str(uuid.uuid4())
        extra = {"X-Request-Id": uid}
        try:
            status, body = self._respond(handler.command, path, query_string, headers, raw, parsed, extra)
        except _ApiError as error:
            status = error.status
            body = {"uid": uid, "code": _ERROR_CODES.get(status, HTTPStatus(status).phrase), "message": error.message}
            extra.update(error.headers)
        with self._lock:
            self._requests.append(
                RecordedRequest(handler.command, path, query_string, headers, raw, parsed, status, body)
            )
        if self.latency > 0:
            time.sleep(self.latency)
        data = json.dumps(body, separators=(",", ":")).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            return  # the client gave up waiting (a timeout test): the work above stands

    def _respond(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: CaseInsensitiveDict[str],
        raw: bytes,
        parsed: Any,
        extra: dict[str, str],
    ) -> tuple[int, Any]:
        self._authenticate(headers)
        extra["X-Account"] = str(self.account_id)
        self._take_token()
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            if failure.after:
                self._route(method, path, query_string, raw, parsed)
            more = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else {}
            raise _ApiError(failure.status, HTTPStatus(failure.status).phrase, more)
        return self._route(method, path, query_string, raw, parsed)

    def _authenticate(self, headers: CaseInsensitiveDict[str]) -> None:
        scheme, _, encoded = headers.get("Authorization", "").partition(" ")
        try:
            username, _, _password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            username = ""
        if scheme.lower() != "basic" or not username or not hmac.compare_digest(username, self.api_key):
            raise _ApiError(401, "API Key not found")

    def _take_token(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._tokens_at) * self.rate_per_second)
            self._tokens_at = now
            if self._tokens < 1:
                wait = (1 - self._tokens) / self.rate_per_second
                raise _ApiError(429, "Too many requests: the limit is 10 per second", {"Retry-After": f"{wait:.2f}"})
            self._tokens -= 1

    def _route(self, method: str, path: str, query_string: str, raw: bytes, parsed: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(query_string).items()}
        if method == "POST" and parts == ["printjobs"]:
            return 201, self._create_job(raw, parsed)
        if method != "GET":
            raise _ApiError(404, f"No route for {method} {path}")
        with self._lock:
            match parts:
                case ["whoami"]:
                    return 200, {"id": self.account_id, "firstname": "Ware", "lastname": "House", "state": "active"}
                case ["computers"]:
                    return 200, [self.computer]
                case ["printers"]:
                    return 200, self._page(list(self._printers.values()), query)
                case ["printers", ids]:
                    return 200, [self._printers[i] for i in self._set(ids) if i in self._printers]
                case ["printers", ids, "printjobs"]:
                    wanted = self._set(ids)
                    jobs = [self._job_json(j) for j in self.jobs.values() if j.printer_id in wanted]
                    return 200, self._page(jobs, query)
                case ["printjobs"]:
                    return 200, self._page([self._job_json(j) for j in self.jobs.values()], query)
                case ["printjobs", "states"]:
                    return 200, [list(j.states) for j in self.jobs.values()]
                case ["printjobs", ids]:
                    return 200, [self._job_json(self.jobs[i]) for i in self._set(ids) if i in self.jobs]
                case ["printjobs", ids, "states"]:
                    return 200, [list(self.jobs[i].states) for i in self._set(ids) if i in self.jobs]
        raise _ApiError(404, f"No route for {method} {path}")

    @staticmethod
    def _set(text: str) -> list[int]:
        ids: list[int] = []
        try:
            for part in text.split(","):
                low, dash, high = part.partition("-")
                ids.extend(range(int(low), int(high) + 1) if dash else [int(low)])
        except ValueError:
            raise _ApiError(400, f"'{text}' is not a valid set") from None
        return ids

    @staticmethod
    def _page(rows: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
        try:
            limit = int(query.get("limit", "100"))
            after = int(query["after"]) if "after" in query else None
        except ValueError:
            raise _ApiError(400, "limit and after must be integers") from None
        descending = query.get("dir", "desc") != "asc"
        rows = sorted(rows, key=lambda r: int(r["id"]), reverse=descending)
        if after is not None:
            rows = [r for r in rows if (int(r["id"]) < after if descending else int(r["id"]) > after)]
        return rows[:limit]

    def _create_job(self, raw: bytes, body: Any) -> int:
        if not isinstance(body, dict):
            raise _ApiError(400, "Request body must be a JSON object" if raw else "Request body is empty")
        unknown = sorted(set(body) - JOB_FIELDS)
        if unknown:
            raise _ApiError(400, f"Unrecognised properties: {', '.join(unknown)}")
        missing = [name for name in REQUIRED_JOB_FIELDS if name not in body]
        if missing:
            raise _ApiError(400, f"Missing required properties: {', '.join(missing)}")
        printer_id = body["printerId"]
        if not isinstance(printer_id, int) or isinstance(printer_id, bool) or printer_id not in self._printers:
            raise _ApiError(400, f"printerId {printer_id!r} does not identify a printer on this account")
        for name in ("title", "source", "content"):
            if not isinstance(body[name], str):
                raise _ApiError(400, f"{name} must be a string")
        content_type = body["contentType"]
        if content_type not in CONTENT_TYPES:
            raise _ApiError(400, f"contentType must be one of {', '.join(sorted(CONTENT_TYPES))}")
        content = body["content"]
        if content_type.endswith("_base64"):
            try:
                data = base64.b64decode(content, validate=True)
            except binascii.Error:
                raise _ApiError(400, "content is not valid base64") from None
            if not data:
                raise _ApiError(400, "content is empty")
            if content_type == "pdf_base64" and not data.startswith(b"%PDF-"):
                raise _ApiError(400, "content is not a PDF document")
        elif not content.startswith(("http://", "https://")):
            raise _ApiError(400, "content must be an http(s) URI for *_uri content types")
        for name in ("qty", "expireAfter"):
            value = body.get(name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise _ApiError(400, f"{name} must be a positive integer")
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise _ApiError(400, "options must be an object")
        with self._lock:
            job = PrintJob(
                id=next(self._ids),
                printer_id=printer_id,
                title=body["title"],
                content_type=content_type,
                content=content,
                source=body["source"],
                qty=body.get("qty") or 1,
                options=options,
                expire_after=body.get("expireAfter") or DEFAULT_EXPIRE_AFTER,
                created_at=time.time(),
            )
            job.states.append(self._state(job, "new", ""))
            self.jobs[job.id] = job
            return job.id

    def _state(self, job: PrintJob, state: str, message: str) -> dict[str, Any]:
        now = time.time()
        return {
            "printJobId": job.id,
            "state": state,
            "message": message,
            "data": None,
            "clientVersion": self.computer["version"] if state != "new" else None,
            "createTimestamp": _timestamp(now),
            "age": int((now - job.created_at) * 1000),
        }

    def _job_json(self, job: PrintJob) -> dict[str, Any]:
        return {
            "id": job.id,
            "printer": self._printers[job.printer_id],
            "title": job.title,
            "contentType": job.content_type,
            "source": job.source,
            "expireAt": _timestamp(job.created_at + job.expire_after),
            "createTimestamp": _timestamp(job.created_at),
            "state": job.state,
        }
