"""A USPS REST API emulator on 127.0.0.1: OAuth 2.0, Payments 3.0, Labels 3.0, Tracking 3.0 and Prices 3.0.

Built from USPS's published examples (USPS/api-examples: README, domesticlabel-v3-request/response):

- `POST /oauth2/v3/token` takes JSON (or a form) `{grant_type: client_credentials, client_id, client_secret}` and
  answers `{access_token, token_type: "Bearer", expires_in, ...}`; wrong credentials are a 401
  `{"error": "invalid_client", ...}`. Every other call needs `Authorization: Bearer <token>` (401 otherwise).
- `POST /payments/v3/payment-authorization` with PAYER and LABEL_OWNER roles (CRID, MID, EPS account) answers a
  `paymentAuthorizationToken`; labels need it in `X-Payment-Authorization-Token` (an unknown one is a 401).
- `POST /labels/v3/label` answers `multipart/form-data`: a `labelMetadata` JSON part (trackingNumber, postage,
  SKU, zone, commitment, ...) and a base64 `labelImage` part (PDF, or ZPL for ZPL203DPI/ZPL300DPI). A repeated
  `X-Idempotency-Key` with the same body answers the first label again without booking; with another body it
  is a 422. `DELETE /labels/v3/label/{trackingNumber}` cancels (refunds) an unused label, once.
- `GET /tracking/v3/tracking/{number}?expand=DETAIL` answers TrackingDetails with `trackingEvents` newest
  first (`eventTimestamp` local time without offset, `GMTTimestamp` in UTC); an unknown number is a 400 with
  error code 150002. Without `expand=DETAIL` it answers the summary form (`eventSummaries`).
- `POST /prices/v3/base-rates/search` answers `{totalBasePrice, rates: [...]}` from a small price table.

Errors use USPS's envelope `{"apiVersion", "error": {"code", "message", "errors": [{"status", "code", "title",
"detail", "source": {"parameter", "example"}}]}}`. The emulator refuses ZIP codes starting "000" (there are
none), parcels over 70 lb, unknown mail classes and missing address parts; the error codes it uses for these
are illustrative, the envelope is USPS's. `shipments_booked` counts labels created (the conformance suite's
requirement); `advance` moves a label's tracking along (the `advance_tracking` fixture).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs

from carriers.base import TrackingStatus
from tests.emulators._carrier_server import CarrierEmulator, RecordedRequest, Reply, pdf_document, zpl_document

LOCAL = timezone(timedelta(hours=-5))  # the zone of the emulated facilities' local times (Central, daylight)
MAX_POUNDS = Decimal(70)
IMAGE_TYPES = frozenset({"PDF", "ZPL203DPI", "ZPL300DPI", "TIFF", "SVG", "LABEL_BROKER", "NONE"})
# Base price (USD) and price per pound of each mail class the emulator sells; a toy table, not USPS's prices.
PRICES: Mapping[str, tuple[Decimal, Decimal, str]] = {
    "USPS_GROUND_ADVANTAGE": (Decimal("5.40"), Decimal("0.85"), "USPS Ground Advantage Machinable Single-piece"),
    "PRIORITY_MAIL": (Decimal("8.70"), Decimal("1.20"), "Priority Mail Machinable Single-piece"),
    "PRIORITY_MAIL_EXPRESS": (Decimal("28.75"), Decimal("2.10"), "Priority Mail Express Machinable Single-piece"),
    "PARCEL_SELECT": (Decimal("7.95"), Decimal("0.90"), "Parcel Select Ground Machinable Single-piece"),
    "MEDIA_MAIL": (Decimal("4.13"), Decimal("0.75"), "Media Mail Machinable Single-piece"),
}

# The scans a parcel passes on its way, in order; `advance` adds them up to the status asked for.
LADDER: tuple[tuple[TrackingStatus, str, str, str], ...] = (
    (TrackingStatus.PRE_TRANSIT, "MA", "Shipping Label Created, USPS Awaiting Item", "origin"),
    (TrackingStatus.IN_TRANSIT, "03", "USPS in possession of item", "origin"),
    (TrackingStatus.IN_TRANSIT, "10", "Arrived at USPS Regional Facility", "hub"),
    (TrackingStatus.OUT_FOR_DELIVERY, "OF", "Out for Delivery", "destination"),
    (TrackingStatus.DELIVERED, "01", "Delivered, Front Door/Porch", "destination"),
)
OFF_LADDER: Mapping[TrackingStatus, tuple[str, str, str]] = {
    TrackingStatus.EXCEPTION: ("02", "Notice Left (No Authorized Recipient Available)", "destination"),
    TrackingStatus.AVAILABLE_FOR_PICKUP: ("", "Available for Pickup", "destination"),
    TrackingStatus.RETURNED: ("09", "Return to Sender", "destination"),
    TrackingStatus.CANCELLED: ("GX", "Shipping Label Cancelled", "origin"),
}
CATEGORY: Mapping[TrackingStatus, str] = {
    TrackingStatus.PRE_TRANSIT: "Pre-Shipment",
    TrackingStatus.IN_TRANSIT: "In Transit",
    TrackingStatus.OUT_FOR_DELIVERY: "Out for Delivery",
    TrackingStatus.DELIVERED: "Delivered",
    TrackingStatus.EXCEPTION: "Alert",
    TrackingStatus.AVAILABLE_FOR_PICKUP: "Available for Pickup",
    TrackingStatus.RETURNED: "Return to Sender",
    TrackingStatus.CANCELLED: "Label Cancelled",
}
HUB = {"eventCity": "SAINT LOUIS", "eventState": "MO", "eventZIP": "63155", "eventCountry": ""}

_serial = itertools.count(random.Random().randrange(10**8, 10**9))


def tracking_number() -> str:
    """A fresh 22-digit IMpb-like tracking number (92055 + serial), unique within this process."""
    return f"92055901097699{next(_serial):08d}"[-22:]


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def error_body(status: int, message: str, errors: list[dict[str, Any]], api: str = "/labels/v3") -> dict[str, Any]:
    return {
        "apiVersion": api,
        "error": {"code": str(status), "message": message, "errors": errors},
    }


def error_item(status: int, code: str, title: str, detail: str, parameter: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {"status": str(status), "code": code, "title": title, "detail": detail}
    if parameter:
        item["source"] = {"parameter": parameter, "example": ""}
    return item


@dataclass
class Scan:
    status: TrackingStatus
    code: str
    text: str
    place: str  # origin, hub or destination
    at: datetime  # UTC


@dataclass
class EmulatedLabel:
    tracking_number: str
    metadata: dict[str, Any]
    image: bytes
    image_type: str
    request: dict[str, Any]
    fingerprint: str
    created_at: datetime
    scans: list[Scan] = field(default_factory=list)
    cancelled: bool = False

    @property
    def status(self) -> TrackingStatus:
        return self.scans[-1].status


class USPSEmulator(CarrierEmulator):
    """One USPS business account (CRID, MID, EPS account) and the app's consumer key and secret."""

    name = "usps"

    def __init__(
        self,
        *,
        client_id: str = "usps-consumer-key",
        client_secret: str = "usps-consumer-secret",
        crid: str = "56982563",
        mid: str = "903829283",
        account_number: str = "1000123456",
        token_lifetime: float = 28_800.0,
        clock: Callable[[], float] = time.monotonic,
        latency: float = 0.0,
        unavailable_classes: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(latency=latency)
        self.client_id = client_id
        self.client_secret = client_secret
        self.crid = crid
        self.mid = mid
        self.account_number = account_number
        self.token_lifetime = token_lifetime
        self.unavailable_classes = unavailable_classes  # mail classes the price search refuses
        self._clock = clock
        self._tokens: dict[str, float] = {}  # access token -> when it expires (on `clock`)
        self._payment_tokens: set[str] = set()
        self._labels: dict[str, EmulatedLabel] = {}
        self._keys: dict[str, str] = {}  # X-Idempotency-Key -> tracking number
        self._booked = 0

    # ------------------------------------------------------------------------------------ test helpers

    @property
    def shipments_booked(self) -> int:
        with self._lock:
            return self._booked

    def label(self, number: str) -> EmulatedLabel:
        with self._lock:
            return self._labels[number]

    @property
    def labels(self) -> list[EmulatedLabel]:
        with self._lock:
            return list(self._labels.values())

    def revoke_tokens(self) -> None:
        """Forget every access and payment token, as when USPS rotates them: the next call is a 401."""
        with self._lock:
            self._tokens.clear()
            self._payment_tokens.clear()

    def advance(self, number: str, status: TrackingStatus) -> None:
        """Add the scans that bring the parcel to `status` (the ones in between included), 3 hours apart."""
        with self._lock:
            label = self._labels[number]
            steps: list[tuple[TrackingStatus, str, str, str]] = []
            reached = max(i for i, step in enumerate(LADDER) if any(s.code == step[1] for s in label.scans))
            if status in OFF_LADDER:
                if reached < 2 and status is not TrackingStatus.CANCELLED:
                    steps.extend(LADDER[reached + 1 : 3])
                steps.append((status, *OFF_LADDER[status]))
            else:
                target = max(i for i, step in enumerate(LADDER) if step[0] is status)
                steps.extend(LADDER[reached + 1 : target + 1])
            for step_status, code, text, place in steps:
                self._scan(label, step_status, code, text, place)

    def _scan(self, label: EmulatedLabel, status: TrackingStatus, code: str, text: str, place: str) -> None:
        at = label.scans[-1].at + timedelta(hours=3) if label.scans else label.created_at
        label.scans.append(Scan(status, code, text, place, at))

    # ---------------------------------------------------------------------------------------- dispatch

    def dispatch(self, request: RecordedRequest) -> Reply:
        method, path = request.method, request.path
        if (method, path) == ("POST", "/oauth2/v3/token"):
            return self._token(request)
        if not self._authorized(request):
            return Reply.json(
                401,
                error_body(
                    401,
                    "Unauthorized",
                    [
                        error_item(
                            401,
                            "UNAUTHORIZED",
                            "Invalid access token",
                            "The access token is missing, invalid or expired.",
                        )
                    ],
                    api="/oauth2/v3",
                ),
            )
        if (method, path) == ("POST", "/payments/v3/payment-authorization"):
            return self._payment_authorization(request)
        if (method, path) == ("POST", "/labels/v3/label"):
            return self._create_label(request)
        if method == "DELETE" and path.startswith("/labels/v3/label/"):
            return self._cancel_label(path.rsplit("/", 1)[-1])
        if method == "GET" and path.startswith("/tracking/v3/tracking/"):
            return self._tracking(path.rsplit("/", 1)[-1], request.query.get("expand", [""])[0])
        if (method, path) == ("POST", "/prices/v3/base-rates/search"):
            return self._base_rates(request)
        return Reply.json(404, error_body(404, "Not Found", [], api=path))

    # -------------------------------------------------------------------------------------------- auth

    def _token(self, request: RecordedRequest) -> Reply:
        body = request.json
        if not isinstance(body, dict):
            body = {key: values[0] for key, values in parse_qs(request.text).items()}
        if body.get("grant_type") != "client_credentials":
            return Reply.json(400, {"error": "unsupported_grant_type", "error_description": "grant_type"})
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return Reply.json(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = self._clock() + self.token_lifetime
        return Reply.json(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "expires_in": str(int(self.token_lifetime)),
                "status": "approved",
                "scope": "addresses prices labels tracking payments",
                "issuer": "api.usps.com",
                "client_id": self.client_id,
                "application_name": "oms",
            },
        )

    def _authorized(self, request: RecordedRequest) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            expires = self._tokens.get(token)
            return scheme.lower() == "bearer" and expires is not None and self._clock() < expires

    def _payment_authorization(self, request: RecordedRequest) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        roles = body.get("roles")
        found = {r.get("roleName"): r for r in roles if isinstance(r, dict)} if isinstance(roles, list) else {}
        errors = []
        for name in ("PAYER", "LABEL_OWNER"):
            role = found.get(name)
            if role is None:
                errors.append(error_item(400, "PAY-001", "Missing role", f"The {name} role is required.", "roles"))
                continue
            for key, expected in (("CRID", self.crid), ("MID", self.mid), ("accountNumber", self.account_number)):
                if name == "LABEL_OWNER" and key == "accountNumber":
                    continue
                if str(role.get(key) or "") != expected:
                    errors.append(
                        error_item(
                            400, "PAY-002", f"Invalid {key}", f"{key} does not match the account.", f"roles.{key}"
                        )
                    )
        if errors:
            return Reply.json(400, error_body(400, "Bad Request", errors, api="/payments/v3"))
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._payment_tokens.add(token)
        return Reply.json(200, {"paymentAuthorizationToken": token, "roles": roles})

    # ------------------------------------------------------------------------------------------ labels

    def _label_errors(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = []
        image = _object(body.get("imageInfo"))
        if image.get("imageType") not in IMAGE_TYPES:
            errors.append(
                error_item(400, "LBL-010", "Invalid imageType", "imageType is not supported.", "imageInfo.imageType")
            )
        for side in ("toAddress", "fromAddress"):
            address = _object(body.get(side))
            errors.extend(
                error_item(400, "ADR-001", f"Missing {key}", f"{side}.{key} is required.", f"{side}.{key}")
                for key in ("streetAddress", "city", "state")
                if not str(address.get(key) or "").strip()
            )
            if not (address.get("firstName") or address.get("lastName") or address.get("firm")):
                errors.append(
                    error_item(400, "ADR-002", "Missing name", "A name or firm is required.", f"{side}.firstName")
                )
            zip_code = str(address.get("ZIPCode") or "")
            if not re.fullmatch(r"\d{5}", zip_code) or zip_code.startswith("000"):
                errors.append(
                    error_item(
                        400,
                        "ADR-010",
                        "Invalid ZIP Code",
                        f"The ZIP Code {zip_code!r} is not valid for the city and state.",
                        f"{side}.ZIPCode",
                    )
                )
        package = _object(body.get("packageDescription"))
        if package.get("mailClass") not in PRICES:
            errors.append(
                error_item(
                    400, "PKG-001", "Invalid mailClass", "mailClass is not supported.", "packageDescription.mailClass"
                )
            )
        try:
            weight = Decimal(str(package.get("weight")))
        except ArithmeticError:
            weight = Decimal(-1)
        if not weight.is_finite() or weight <= 0 or weight > MAX_POUNDS:
            errors.append(
                error_item(
                    400,
                    "PKG-020",
                    "Invalid weight",
                    f"The package weight must be more than 0 and at most {MAX_POUNDS} lb.",
                    "packageDescription.weight",
                )
            )
        return errors

    def _create_label(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if request.headers.get("x-payment-authorization-token", "") not in self._payment_tokens:
                return Reply.json(
                    401,
                    error_body(
                        401,
                        "Unauthorized",
                        [
                            error_item(
                                401, "PAY-401", "Invalid payment token", "The payment authorization token is invalid."
                            )
                        ],
                    ),
                )
        body = request.json
        if not isinstance(body, dict):
            return Reply.json(
                400,
                error_body(400, "Bad Request", [error_item(400, "REQ-001", "Malformed body", "The body is not JSON.")]),
            )
        key = request.headers.get("x-idempotency-key", "")
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self._lock:
            if key and key in self._keys:
                earlier = self._labels[self._keys[key]]
                if earlier.fingerprint != fingerprint:
                    return Reply.json(
                        422,
                        error_body(
                            422,
                            "Unprocessable Entity",
                            [
                                error_item(
                                    422,
                                    "IDM-001",
                                    "Idempotency key reused",
                                    "X-Idempotency-Key was used with a different request.",
                                )
                            ],
                        ),
                    )
                return self._label_reply(earlier)
        errors = self._label_errors(body)
        if errors:
            return Reply.json(400, error_body(400, "Bad Request", errors))
        label = self._book(body, fingerprint)
        with self._lock:
            if key:
                self._keys[key] = label.tracking_number
        return self._label_reply(label)

    def _book(self, body: Mapping[str, Any], fingerprint: str) -> EmulatedLabel:
        package = body["packageDescription"]
        to = body["toAddress"]
        price = self._price(package["mailClass"], Decimal(str(package["weight"])))
        number = tracking_number()
        image_type = body["imageInfo"]["imageType"]
        lines = [
            f"USPS {package['mailClass'].replace('_', ' ')}",
            f"TRACKING # {number}",
            f"{to.get('firstName', '')} {to.get('lastName', '')}".strip(),
            str(to.get("streetAddress")),
            f"{to.get('city')} {to.get('state')} {to.get('ZIPCode')}",
        ]
        if image_type.startswith("ZPL"):
            image = zpl_document([lines], dpi=300 if image_type == "ZPL300DPI" else 203)
        else:
            image = pdf_document([lines])
        metadata = {
            "labelAddress": {
                key: to.get(key)
                for key in (
                    "streetAddress",
                    "secondaryAddress",
                    "city",
                    "state",
                    "ZIPCode",
                    "ZIPPlus4",
                    "firstName",
                    "lastName",
                )
            },
            "routingInformation": f"420{to.get('ZIPCode')}",
            "trackingNumber": number,
            "postage": float(price),
            "extraServices": [{"name": "USPS Tracking", "price": 0}],
            "zone": "04",
            "commitment": {
                "name": "3 Days",
                "scheduleDeliveryDate": (datetime.now(UTC) + timedelta(days=3)).date().isoformat(),
            },
            "weightUOM": "LB",
            "weight": float(package["weight"]),
            "fees": [],
            "SKU": "DUXP0XXXXC01" + str(int(Decimal(str(package["weight"])) + 1)).zfill(3),
        }
        label = EmulatedLabel(
            number, metadata, image, image_type, dict(body), fingerprint, datetime.now(UTC).replace(microsecond=0)
        )
        self._scan(label, *LADDER[0])
        with self._lock:
            self._labels[number] = label
            self._booked += 1
        return label

    @staticmethod
    def _price(mail_class: str, pounds: Decimal) -> Decimal:
        base, per_pound, _ = PRICES[mail_class]
        return (base + per_pound * pounds).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    @staticmethod
    def _label_reply(label: EmulatedLabel) -> Reply:
        boundary = uuid.uuid4().hex
        is_zpl = label.image_type.startswith("ZPL")
        file_type, extension = ("application/zpl", "zpl") if is_zpl else ("application/pdf", "pdf")
        body = (
            f"--{boundary}\r\n"
            "Content-Type: application/json\r\n"
            'Content-Disposition: form-data; name="labelMetadata"\r\n\r\n'
            f"{json.dumps(label.metadata, indent=4)}\r\n"
            f"--{boundary}\r\n"
            f"Content-Type: {file_type}\r\n"
            f'Content-Disposition: form-data; filename="labelImage.{extension}"; name="labelImage"\r\n\r\n'
            f"{base64.b64encode(label.image).decode()}\r\n"
            f"--{boundary}--\r\n"
        ).encode()
        return Reply(200, body, content_type=f"multipart/form-data; boundary={boundary}")

    def _cancel_label(self, number: str) -> Reply:
        with self._lock:
            label = self._labels.get(number)
            if label is None:
                return Reply.json(
                    404,
                    error_body(
                        404,
                        "Not Found",
                        [error_item(404, "LBL-404", "Label not found", f"No label with tracking number {number}.")],
                    ),
                )
            if label.cancelled:
                return Reply.json(
                    400,
                    error_body(
                        400,
                        "Bad Request",
                        [
                            error_item(
                                400,
                                "LBL-301",
                                "Label already cancelled",
                                f"The label {number} has already been cancelled.",
                            )
                        ],
                    ),
                )
            if label.status is not TrackingStatus.PRE_TRANSIT:
                return Reply.json(
                    400,
                    error_body(
                        400,
                        "Bad Request",
                        [
                            error_item(
                                400,
                                "LBL-302",
                                "Label used",
                                f"The label {number} has been scanned and cannot be cancelled.",
                            )
                        ],
                    ),
                )
            label.cancelled = True
            self._scan(label, TrackingStatus.CANCELLED, *OFF_LADDER[TrackingStatus.CANCELLED])
        return Reply.json(200, {"trackingNumber": number, "status": "CANCELED"})

    # ---------------------------------------------------------------------------------------- tracking

    def _place(self, label: EmulatedLabel, place: str) -> dict[str, str]:
        if place == "hub":
            return dict(HUB)
        side = label.request["toAddress" if place == "destination" else "fromAddress"]
        return {
            "eventCity": str(side.get("city", "")).upper(),
            "eventState": str(side.get("state", "")),
            "eventZIP": str(side.get("ZIPCode", "")),
            "eventCountry": "",
        }

    def _tracking(self, number: str, expand: str) -> Reply:
        with self._lock:
            label = self._labels.get(number)
            if label is None:
                return Reply.json(
                    400,
                    error_body(
                        400,
                        "Bad Request",
                        [
                            error_item(
                                400,
                                "150002",
                                "Invalid Tracking Number",
                                "7: The tracking number may be incorrect or the status update is not yet available. "
                                "Please verify your tracking number and try again later. - ",
                            )
                        ],
                        api="3.0",
                    ),
                )
            scans = list(label.scans)
            request = label.request
        latest = scans[-1]
        events = [
            {
                "eventType": scan.text,
                "eventTimestamp": scan.at.astimezone(LOCAL).replace(tzinfo=None).isoformat(),
                "GMTTimestamp": scan.at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "GMTOffset": "-05:00",
                **self._place(label, scan.place),
                "firm": None,
                "name": None,
                "authorizedAgent": False,
                "eventCode": scan.code,
            }
            for scan in reversed(scans)
        ]
        if expand.upper() != "DETAIL":
            return Reply.json(
                200,
                {
                    "trackingNumber": number,
                    "eventSummaries": [
                        f"{e['eventType']}, {e['eventCity']} {e['eventState']}".strip(", ") for e in events
                    ],
                },
            )
        to = request["toAddress"]
        origin = request["fromAddress"]
        return Reply.json(
            200,
            {
                "trackingNumber": number,
                "mailClass": request["packageDescription"]["mailClass"],
                "mailType": "DOMESTIC_MAIL",
                "originCity": origin.get("city"),
                "originState": origin.get("state"),
                "originZIP": origin.get("ZIPCode"),
                "destinationCity": to.get("city"),
                "destinationState": to.get("state"),
                "destinationZIP": to.get("ZIPCode"),
                "expectedDeliveryDate": (label.created_at + timedelta(days=3)).date().isoformat(),
                "status": latest.text,
                "statusCategory": CATEGORY[latest.status],
                "statusSummary": f"{latest.text}, {latest.at.astimezone(LOCAL):%B %d, %Y, %I:%M %p}",
                "trackingEvents": events,
            },
        )

    # ------------------------------------------------------------------------------------------ prices

    def _base_rates(self, request: RecordedRequest) -> Reply:
        body = request.json if isinstance(request.json, dict) else {}
        mail_class = str(body.get("mailClass") or "")
        errors = []
        if mail_class not in PRICES or mail_class in self.unavailable_classes:
            errors.append(
                error_item(400, "PRC-001", "No rates", f"No rates found for mailClass {mail_class}.", "mailClass")
            )
        for key in ("originZIPCode", "destinationZIPCode"):
            value = str(body.get(key) or "")
            if not re.fullmatch(r"\d{5}", value) or value.startswith("000"):
                errors.append(error_item(400, "PRC-010", "Invalid ZIP Code", f"{key} is not valid.", key))
        try:
            weight = Decimal(str(body.get("weight")))
        except ArithmeticError:
            weight = Decimal(-1)
        if not weight.is_finite() or weight <= 0 or weight > MAX_POUNDS:
            errors.append(error_item(400, "PRC-020", "Invalid weight", "weight is out of range.", "weight"))
        if errors:
            return Reply.json(400, error_body(400, "Bad Request", errors, api="/prices/v3"))
        price = self._price(mail_class, weight)
        return Reply.json(
            200,
            {
                "totalBasePrice": float(price),
                "rates": [
                    {
                        "SKU": "DUXR0XXXXC00050",
                        "description": PRICES[mail_class][2],
                        "priceType": body.get("priceType", "COMMERCIAL"),
                        "price": float(price),
                        "weight": float(weight),
                        "dimWeight": 0,
                        "fees": [],
                        "startDate": "2026-01-18",
                        "endDate": "",
                        "warnings": [],
                        "mailClass": mail_class,
                        "zone": "04",
                    }
                ],
            },
        )
