"""A DPD group "Shipping API" (NST, v1.1) emulator on 127.0.0.1.

Wire format, as public clients of `shipping.dpdgroup.com/api/v1.1` (test: nst-preprod.dpsin.dpdgroup.com) use it;
see carriers/dpd.py for what is documented and what is assumed:

- `POST /api/v1.1/login` with headers X-DPD-LOGIN, X-DPD-PASSWORD, X-DPD-BUCODE: 200 with the JWT in the
  X-DPD-TOKEN response header (valid `token_ttl` seconds), 401 for bad credentials.
- Every other call needs `Authorization: Bearer <jwt>`; a missing, forged or expired token is a 401.
- `POST /api/v1.1/shipments` `{buCode, customerId, shipments: [{numOrder, senderAddressId, receiver, parcels,
  service, reference1.., saveMode, printFormat, labelSize}]}` answers 200 `{transactionId, shipmentResults:
  [{numOrder, shipmentId, mpsId, parcelResults: [{parcelNumber}], labelFile: "data:...;base64,..."}]}`; a
  shipment DPD refuses gets `errors: [{errorCode, errorContent}]` (errorContent starts with DPD's field path)
  and no shipmentId. A request-level problem (unknown customerId, bad JSON) is a 400 `{transactionId, errors}`.
- `PUT /api/v1.1/shipments/cancellation` `{buCode, customerId, shipmentIdList}` answers `{transactionId,
  shipmentResults: [{shipmentId, status: "CANCELLED"} | {shipmentId, errors}]}`; a shipment already cancelled
  or already picked up by the driver cannot be cancelled.
- `POST /api/v1.0/label/parcel-numbers` `{buCode, customerId, labelSize, printFormat, startPosition,
  parcelNumberList}` answers `{transactionId, pdfFile | zplFile: "data:...;base64,..."}` (a reprint).
- `GET /api/v1.1/parcels/{parcelNumber}/statuses` answers `{transactionId, parcelNumber, shipmentId,
  statuses: [{statusCode: "SA..", statusDescription, date: "YYYYMMDD", time: "HHMMSS", depot}]}` (local time,
  Europe/Prague), oldest first; an unknown parcel is a 404.

`advance_tracking(parcel_number, status)` scans a parcel through DPD's network up to `status`;
`shipments_booked` counts shipments DPD created; `inline_labels=False` makes the create call answer without
`labelFile` (saveMode "parcel number"), so the client has to fetch the label.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from carriers.base import TrackingStatus
from tests.emulators._carrier_server import CarrierEmulator, RecordedRequest, Reply, pdf_document, zpl_document

API = "/api/v1.1"
LOCAL_TZ = ZoneInfo("Europe/Prague")
MAX_WEIGHT_KG = Decimal("31.5")
MAX_LENGTH_CM = Decimal("175")
# Postal codes DPD routes to, by country (the emulator's stand-in for DPD's routing tables).
ZIP_PATTERNS = {
    "CZ": r"[1-7]\d{4}",
    "SK": r"[089]\d{4}",
    "DE": r"\d{5}",
    "AT": r"[1-9]\d{3}",
    "HU": r"[1-9]\d{3}",
    "PL": r"\d{2}-?\d{3}",
    "SI": r"[1-9]\d{3}",
    "HR": r"[1-5]\d{4}",
    "RO": r"\d{6}",
    "NL": r"\d{4}\s?[A-Z]{2}",
}
KNOWN_ELEMENTS = {"001", "013", "200", "101", "327", "337"}
PICKUP_ELEMENT = "200"
PREDICT_ELEMENT = "013"

# The scans of a parcel on its way, by where it goes: (DPD code, description, depot).
HOME_ROUTE = (
    ("SA05", "Received by DPD from consignor (pickup scan)", "Praha-Chrastany"),
    ("SA07", "In transit (outbound)", "Praha-Chrastany"),
    ("SA10", "In transit (HUB scan)", "Brno Hub"),
    ("SA02", "In transit (inbound scan)", "Ostrava"),
    ("SA03", "Out for delivery", "Ostrava"),
    ("SA13", "Delivered", "Ostrava"),
)
PICKUP_ROUTE = (*HOME_ROUTE[:4], ("SA23", "Delivered to pick-up point", "Ostrava"), ("SA13", "Delivered", "Ostrava"))
TARGETS = {
    TrackingStatus.IN_TRANSIT: "SA02",
    TrackingStatus.OUT_FOR_DELIVERY: "SA03",
    TrackingStatus.AVAILABLE_FOR_PICKUP: "SA23",
    TrackingStatus.DELIVERED: "SA13",
}
SIDE_EVENTS = {
    TrackingStatus.EXCEPTION: ("SA14", "Back at parcel delivery centre after an unsuccessful delivery attempt"),
    TrackingStatus.RETURNED: ("SA06", "Return to sender (system return)"),
}


@dataclass
class _Parcel:
    number: str
    shipment_id: int
    pickup: bool
    events: list[tuple[str, str, datetime, str]] = field(default_factory=list)


@dataclass
class _Shipment:
    shipment_id: int
    body: dict[str, Any]
    parcel_numbers: list[str]
    print_format: str
    cancelled: bool = False


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DpdEmulator(CarrierEmulator):
    """One DPD customer account behind DPD's Shipping API."""

    name = "dpd"

    def __init__(
        self,
        *,
        username: str = "oms-dpd-api",
        password: str | None = None,
        bu_code: str = "015",
        customer_id: str = "OMS-CZ-1001",
        sender_address_ids: tuple[str, ...] = ("53001",),
        pudo_ids: tuple[str, ...] = ("CZ10203", "CZ10457", "CZ11802"),
        token_ttl: float = 24 * 3600,
        inline_labels: bool = True,
        latency: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(latency=latency)
        self.username = username
        self.password = password or secrets.token_urlsafe(12)
        self.bu_code = bu_code
        self.customer_id = customer_id
        self.sender_address_ids = set(sender_address_ids)
        self.pudo_ids = set(pudo_ids)
        self.token_ttl = token_ttl
        self.inline_labels = inline_labels
        self.clock = clock
        self._secret = secrets.token_bytes(32)
        self._transactions = itertools.count(4300)
        self._shipment_ids = itertools.count(52172)
        self._parcel_seq = itertools.count(int(time.time()) % 10_000_000 * 10)
        self._shipments: dict[int, _Shipment] = {}
        self._parcels: dict[str, _Parcel] = {}
        self._booked = 0
        self.logins = 0
        self._state = threading.RLock()

    # ------------------------------------------------------------------------------------------ helpers

    @property
    def api_url(self) -> str:
        return f"{self.base_url}{API}"

    @property
    def shipments_booked(self) -> int:
        with self._state:
            return self._booked

    def issue_token(self, *, ttl: float | None = None) -> str:
        now = int(self.clock())
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {"sub": self.username, "bu": self.bu_code, "iat": now, "exp": now + int(ttl or self.token_ttl)}
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(payload).encode())}"
        signature = hmac.new(self._secret, signing.encode(), hashlib.sha256).digest()
        return f"{signing}.{_b64url(signature)}"

    def _token_valid(self, authorization: str) -> bool:
        if not authorization.startswith("Bearer "):
            return False
        parts = authorization[len("Bearer ") :].strip().split(".")
        if len(parts) != 3:
            return False
        expected = hmac.new(self._secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(expected, _b64url_decode(parts[2])):
                return False
            payload = json.loads(_b64url_decode(parts[1]))
        except ValueError:
            return False
        return bool(payload.get("exp", 0) > self.clock())

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far (as a key rotation on DPD's side would)."""
        self._secret = secrets.token_bytes(32)

    def shipment(self, shipment_id: int | str) -> dict[str, Any]:
        """What the emulator stored of a shipment: the request DPD accepted, its parcels, whether cancelled."""
        with self._state:
            stored = self._shipments[int(shipment_id)]
            return {
                "request": stored.body,
                "parcel_numbers": list(stored.parcel_numbers),
                "cancelled": stored.cancelled,
            }

    def advance_tracking(self, parcel_number: str, status: TrackingStatus) -> None:
        """Scan the parcel through the network up to `status` (the scans in between included)."""
        with self._state:
            parcel = self._parcels[parcel_number]
            done = {code for code, *_ in parcel.events}
            if status in SIDE_EVENTS:
                self._scan(parcel, *SIDE_EVENTS[status], "Ostrava")
                return
            if status not in TARGETS:
                raise ValueError(f"the DPD emulator cannot make a parcel {status}")
            route = PICKUP_ROUTE if parcel.pickup else HOME_ROUTE
            target = TARGETS[status]
            if target not in {code for code, *_ in route}:
                raise ValueError(f"a {'pickup' if parcel.pickup else 'home'} parcel never becomes {status}")
            for code, description, depot in route:
                if code not in done:
                    self._scan(parcel, code, description, depot)
                if code == target:
                    return

    def _scan(self, parcel: _Parcel, code: str, description: str, depot: str) -> None:
        now = datetime.fromtimestamp(self.clock(), UTC).replace(microsecond=0)
        if parcel.events:
            now = max(now, parcel.events[-1][2] + timedelta(minutes=7))
        parcel.events.append((code, description, now, depot))

    # ----------------------------------------------------------------------------------------- dispatch

    def dispatch(self, request: RecordedRequest) -> Reply:
        path = request.path.rstrip("/")
        if path == f"{API}/login" and request.method == "POST":
            return self._login(request)
        if not path.startswith(("/api/v1.1/", "/api/v1.0/")):
            return Reply.text(404, "<html><body>Not Found</body></html>")
        if not self._token_valid(request.headers.get("authorization", "")):
            return self._errors(401, "UNAUTHORIZED", "JWT token is missing, invalid or expired")
        if path == f"{API}/shipments" and request.method == "POST":
            return self._create(request)
        if path == f"{API}/shipments/cancellation" and request.method == "PUT":
            return self._cancel(request)
        if path == "/api/v1.0/label/parcel-numbers" and request.method == "POST":
            return self._reprint(request)
        match = re.fullmatch(rf"{re.escape(API)}/parcels/([^/]+)/statuses", path)
        if match and request.method == "GET":
            return self._statuses(match.group(1))
        return Reply.text(404, "<html><body>Not Found</body></html>")

    def _errors(self, status: int, code: str, content: str) -> Reply:
        payload = {"transactionId": next(self._transactions), "errors": [{"errorCode": code, "errorContent": content}]}
        return Reply.json(status, payload)

    def _login(self, request: RecordedRequest) -> Reply:
        headers = request.headers
        if (
            headers.get("x-dpd-login") != self.username
            or headers.get("x-dpd-password") != self.password
            or headers.get("x-dpd-bucode") != self.bu_code
        ):
            return self._errors(401, "LOGIN_FAILED", "Invalid login, password or business unit code")
        with self._state:
            self.logins += 1
        return Reply(200, b"", headers={"X-DPD-TOKEN": self.issue_token()})

    def _account_error(self, body: Any) -> Reply | None:
        if not isinstance(body, dict):
            return self._errors(400, "INVALID_REQUEST", "The request body is not a JSON object")
        if body.get("customerId") != self.customer_id:
            return self._errors(400, "CUSTOMER_NOT_FOUND", f"customerId: customer {body.get('customerId')!r} unknown")
        if str(body.get("buCode", self.bu_code)) != self.bu_code:
            return self._errors(400, "INVALID_BU_CODE", f"buCode: business unit {body.get('buCode')!r} unknown")
        return None

    def _create(self, request: RecordedRequest) -> Reply:
        body = request.json
        refused = self._account_error(body)
        if refused is not None:
            return refused
        shipments = body.get("shipments")
        if not isinstance(shipments, list) or not shipments:
            return self._errors(400, "INVALID_REQUEST", "shipments: at least one shipment is required")
        results = []
        with self._state:
            for item in shipments:
                errors = self._validate(item) if isinstance(item, dict) else [("INVALID_REQUEST", "shipment: object")]
                num_order = item.get("numOrder") if isinstance(item, dict) else None
                if errors:
                    results.append(
                        {
                            "numOrder": num_order,
                            "errors": [{"errorCode": code, "errorContent": text} for code, text in errors],
                        }
                    )
                    continue
                results.append(self._book(item, num_order))
        return Reply.json(200, {"transactionId": next(self._transactions), "shipmentResults": results})

    def _book(self, item: dict[str, Any], num_order: Any) -> dict[str, Any]:
        shipment_id = next(self._shipment_ids)
        elements = set(item["service"].get("mainServiceElementCodes") or [])
        pickup = PICKUP_ELEMENT in elements
        numbers = []
        for _ in item["parcels"]:
            number = f"1395{next(self._parcel_seq) % 10**10:010d}"
            numbers.append(number)
            self._parcels[number] = _Parcel(number, shipment_id, pickup)
        print_format = str(item.get("printFormat", "PDF")).upper()
        self._shipments[shipment_id] = _Shipment(shipment_id, item, numbers, print_format)
        self._booked += 1
        result: dict[str, Any] = {
            "numOrder": num_order,
            "shipmentId": shipment_id,
            "mpsId": numbers[0],
            "parcelResults": [{"parcelNumber": n} for n in numbers],
        }
        if self.inline_labels and item.get("saveMode", "printed") == "printed":
            result["labelFile"] = self._label_data_uri(item, numbers, print_format)
        return result

    def _label_data_uri(self, item: dict[str, Any], numbers: list[str], print_format: str) -> str:
        receiver = item.get("receiver") or {}
        pages = [
            [
                "DPD",
                f"Parcel {number}",
                f"{index}/{len(numbers)}",
                str(receiver.get("name", "")),
                f"{receiver.get('zipCode', '')} {receiver.get('city', '')} {receiver.get('countryCode', '')}",
                f"Ref {item.get('reference1', '')}",
            ]
            for index, number in enumerate(numbers, start=1)
        ]
        if print_format == "ZPL":
            return "data:application/zpl;base64," + base64.b64encode(zpl_document(pages)).decode()
        return "data:application/pdf;base64," + base64.b64encode(pdf_document(pages)).decode()

    def _validate(self, item: dict[str, Any]) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        if str(item.get("senderAddressId", "")) not in self.sender_address_ids:
            errors.append(
                ("SENDER_ADDRESS_NOT_FOUND", f"senderAddressId: sender address {item.get('senderAddressId')!r} unknown")
            )
        receiver = item.get("receiver")
        if not isinstance(receiver, dict):
            return [*errors, ("MISSING_MANDATORY_FIELD", "receiver: the receiver is required")]
        errors.extend(
            ("MISSING_MANDATORY_FIELD", f"receiver.{key}: value is required")
            for key in ("name", "street", "city", "zipCode", "countryCode")
            if not str(receiver.get(key) or "").strip()
        )
        country = str(receiver.get("countryCode") or "").upper()
        zip_code = str(receiver.get("zipCode") or "").strip()
        pattern = ZIP_PATTERNS.get(country)
        if country and pattern is None:
            errors.append(("INVALID_COUNTRY", f"receiver.countryCode: DPD does not deliver to {country!r}"))
        elif zip_code and pattern and not re.fullmatch(pattern, zip_code.replace(" ", "")):
            errors.append(("INVALID_ZIP_CODE", f"receiver.zipCode: zip code {zip_code} does not exist in {country}"))
        service: dict[str, Any] = item["service"] if isinstance(item.get("service"), dict) else {}
        elements = service.get("mainServiceElementCodes") or []
        if not elements or not set(elements) <= KNOWN_ELEMENTS:
            errors.append(("INVALID_SERVICE", f"service.mainServiceElementCodes: {elements!r} is not a DPD product"))
        additional = service.get("additionalService") or {}
        if PREDICT_ELEMENT in elements and not (receiver.get("contactEmail") or receiver.get("contactMobile")):
            errors.append(("PREDICT_CONTACT_MISSING", "receiver.contactEmail: Predict needs an e-mail or a mobile"))
        if PICKUP_ELEMENT in elements:
            pudo = str(additional.get("pudoId") or "")
            if pudo not in self.pudo_ids:
                errors.append(("INVALID_PUDO", f"service.additionalService.pudoId: pick-up point {pudo!r} unknown"))
        cod = additional.get("cod")
        if cod is not None:
            amount = _decimal(cod.get("amount"))
            if amount is None or amount <= 0:
                errors.append(("INVALID_COD", "service.additionalService.cod.amount: must be a positive amount"))
            if not re.fullmatch(r"[A-Z]{3}", str(cod.get("currency") or "")):
                errors.append(("INVALID_COD", "service.additionalService.cod.currency: ISO 4217 code required"))
        parcels = item.get("parcels")
        if not isinstance(parcels, list) or not parcels:
            errors.append(("MISSING_MANDATORY_FIELD", "parcels: at least one parcel is required"))
            parcels = []
        for index, parcel in enumerate(parcels):
            weight = _decimal(parcel.get("weight"))
            if weight is None or weight <= 0:
                errors.append(("INVALID_WEIGHT", f"parcels[{index}].weight: weight is required"))
            elif weight > MAX_WEIGHT_KG:
                errors.append(
                    (
                        "INVALID_WEIGHT",
                        f"parcels[{index}].weight: {weight} kg exceeds the maximum of {MAX_WEIGHT_KG} kg",
                    )
                )
            for key in ("dimensionLength", "dimensionWidth", "dimensionHeight"):
                size = _decimal(parcel.get(key))
                if size is not None and size > MAX_LENGTH_CM:
                    errors.append(
                        ("INVALID_DIMENSION", f"parcels[{index}].{key}: {size} cm exceeds {MAX_LENGTH_CM} cm")
                    )
        if str(item.get("printFormat", "PDF")).upper() not in ("PDF", "ZPL"):
            errors.append(("INVALID_PRINT_FORMAT", f"printFormat: {item.get('printFormat')!r} unknown"))
        if str(item.get("labelSize", "A6")).upper() not in ("A4", "A6"):
            errors.append(("INVALID_LABEL_SIZE", f"labelSize: {item.get('labelSize')!r} unknown"))
        return errors

    def _cancel(self, request: RecordedRequest) -> Reply:
        body = request.json
        refused = self._account_error(body)
        if refused is not None:
            return refused
        ids = body.get("shipmentIdList")
        if not isinstance(ids, list) or not ids:
            return self._errors(400, "INVALID_REQUEST", "shipmentIdList: at least one shipment id is required")
        results = []
        with self._state:
            for raw in ids:
                try:
                    stored = self._shipments.get(int(raw))
                except (TypeError, ValueError):
                    stored = None
                if stored is None:
                    results.append(_cancel_error(raw, "SHIPMENT_NOT_FOUND", f"Shipment {raw} not found"))
                elif stored.cancelled:
                    results.append(_cancel_error(raw, "SHIPMENT_ALREADY_CANCELLED", f"Shipment {raw} is cancelled"))
                elif any(self._parcels[n].events for n in stored.parcel_numbers):
                    results.append(
                        _cancel_error(raw, "SHIPMENT_ALREADY_PICKED_UP", f"Shipment {raw} is already in DPD's network")
                    )
                else:
                    stored.cancelled = True
                    results.append({"shipmentId": stored.shipment_id, "status": "CANCELLED"})
        return Reply.json(200, {"transactionId": next(self._transactions), "shipmentResults": results})

    def _reprint(self, request: RecordedRequest) -> Reply:
        body = request.json
        refused = self._account_error(body)
        if refused is not None:
            return refused
        numbers = [str(n) for n in body.get("parcelNumberList") or []]
        print_format = str(body.get("printFormat", "PDF")).upper()
        with self._state:
            unknown = [n for n in numbers if n not in self._parcels]
            if not numbers or unknown:
                return self._errors(404, "PARCEL_NOT_FOUND", f"parcelNumberList: unknown parcels {unknown}")
            item = self._shipments[self._parcels[numbers[0]].shipment_id].body
        uri = self._label_data_uri(item, numbers, print_format)
        key = "zplFile" if print_format == "ZPL" else "pdfFile"
        return Reply.json(200, {"transactionId": next(self._transactions), key: uri})

    def _statuses(self, parcel_number: str) -> Reply:
        with self._state:
            parcel = self._parcels.get(parcel_number)
            if parcel is None:
                return self._errors(404, "PARCEL_NOT_FOUND", f"Parcel {parcel_number} not found")
            statuses = [
                {
                    "statusCode": code,
                    "statusDescription": description,
                    "date": moment.astimezone(LOCAL_TZ).strftime("%Y%m%d"),
                    "time": moment.astimezone(LOCAL_TZ).strftime("%H%M%S"),
                    "depot": depot,
                }
                for code, description, moment, depot in parcel.events
            ]
            payload = {
                "transactionId": next(self._transactions),
                "parcelNumber": parcel.number,
                "shipmentId": parcel.shipment_id,
                "statuses": statuses,
            }
        return Reply.json(200, payload)


def _cancel_error(shipment_id: Any, code: str, content: str) -> dict[str, Any]:
    return {"shipmentId": shipment_id, "errors": [{"errorCode": code, "errorContent": content}]}


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
