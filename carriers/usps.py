"""USPS through its REST APIs (apis.usps.com): OAuth 2.0, Payments 3.0, Labels 3.0, Tracking 3.0, Prices 3.0.

USPS prints one label per parcel: a shipment of n parcels is n label calls, each with its own idempotency key
derived from the attempt's (`key:index`), so a retried attempt answers the labels already bought and buys only
the rest. Labels come back as multipart bodies (JSON metadata, then the base64 label file); the standard
library's email parser reads them. Nothing here knows the OMS; domestic US shipments only.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from email.message import Message
from email.parser import BytesParser
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from carriers._transport import Transport
from carriers.base import (
    Address,
    CarrierAdapter,
    CarrierAuthFailed,
    CarrierConfig,
    CarrierError,
    CarrierRejected,
    CarrierUnavailable,
    FieldError,
    Label,
    LabelDocument,
    LabelFormat,
    Parcel,
    Rate,
    ShipmentRequest,
    TrackingEvent,
    TrackingResult,
    TrackingStatus,
)
from carriers.oauth import TokenCache, json_body

__all__ = ["IMAGE_TYPES", "USPSAdapter", "parse_label_response", "usps_field"]

IMAGE_TYPES: Mapping[LabelFormat, str] = {LabelFormat.PDF: "PDF", LabelFormat.ZPL: "ZPL203DPI"}
PAYMENT_TOKEN_LIFETIME = 3600.0  # seconds we keep a payment authorization before asking for a fresh one
DOMESTIC = frozenset({"US", "PR", "VI", "GU", "AS", "MP"})  # what the domestic label API ships to
GRAMS_PER_POUND = Decimal("453.59237")
CM_PER_INCH = Decimal("2.54")
UNKNOWN_NUMBER_CODES = frozenset({"150002"})  # Tracking: "Invalid Tracking Number"
ZIP = re.compile(r"^(\d{5})(?:-?(\d{4}))?$")

_ADDRESS_FIELDS: Mapping[str, str] = {
    "firstname": "name",
    "lastname": "name",
    "firm": "company",
    "streetaddress": "line1",
    "secondaryaddress": "line2",
    "city": "city",
    "state": "region",
    "zipcode": "postal_code",
    "zipplus4": "postal_code",
    "phone": "phone",
    "email": "email",
}
_PACKAGE_FIELDS: Mapping[str, str] = {
    "weight": "weight_grams",
    "weightuom": "weight_grams",
    "length": "length_cm",
    "width": "width_cm",
    "height": "height_cm",
    "girth": "length_cm",
}
_SHIPMENT_FIELDS: Mapping[str, str] = {
    "mailclass": "service",
    "rateindicator": "service",
    "processingcategory": "service",
    "destinationentryfacilitytype": "service",
    "mailingdate": "ship_date",
    "packagevalue": "value",
    "customerreference": "reference",
}

# Tracking 3.0 event codes (USPS Publication 199 scan codes) onto the OMS's vocabulary; events with other
# codes are read by their words (`_event_status`).
_EVENT_CODES: Mapping[str, TrackingStatus] = {
    "MA": TrackingStatus.PRE_TRANSIT,  # shipping label created, USPS awaiting item
    "GX": TrackingStatus.CANCELLED,  # shipping label cancelled
    "03": TrackingStatus.IN_TRANSIT,  # accepted
    "07": TrackingStatus.IN_TRANSIT,  # arrived at the delivery unit
    "10": TrackingStatus.IN_TRANSIT,  # processed through a facility
    "OF": TrackingStatus.OUT_FOR_DELIVERY,
    "01": TrackingStatus.DELIVERED,
    "17": TrackingStatus.DELIVERED,  # picked up by agent
    "02": TrackingStatus.EXCEPTION,  # notice left: nobody to sign
    "04": TrackingStatus.EXCEPTION,  # refused
    "05": TrackingStatus.EXCEPTION,  # undeliverable as addressed
    "21": TrackingStatus.EXCEPTION,  # no such number
    "22": TrackingStatus.EXCEPTION,  # insufficient address
    "23": TrackingStatus.EXCEPTION,  # moved, left no address
    "09": TrackingStatus.RETURNED,  # return to sender
}
_CATEGORIES: Mapping[str, TrackingStatus] = {
    "pre-shipment": TrackingStatus.PRE_TRANSIT,
    "accepted": TrackingStatus.IN_TRANSIT,
    "in transit": TrackingStatus.IN_TRANSIT,
    "in-transit": TrackingStatus.IN_TRANSIT,
    "out for delivery": TrackingStatus.OUT_FOR_DELIVERY,
    "delivered": TrackingStatus.DELIVERED,
    "available for pickup": TrackingStatus.AVAILABLE_FOR_PICKUP,
    "delivery attempt": TrackingStatus.EXCEPTION,
    "alert": TrackingStatus.EXCEPTION,
    "return to sender": TrackingStatus.RETURNED,
    "label cancelled": TrackingStatus.CANCELLED,
}


# ------------------------------------------------------------------------------------------------ mapping


def usps_field(parameter: str, *, parcel_index: int = 0) -> str:
    """The OMS field path for a USPS request parameter ("toAddress.ZIPCode" -> "ship_to.postal_code");
    "" when the parameter is not one the OMS can point at."""
    parts = [p for p in re.split(r"[./\[\]$]+", parameter) if p and not p.isdigit()]
    if not parts:
        return ""
    head, leaf = parts[0].lower(), parts[-1].lower()
    if head in ("toaddress", "fromaddress") and len(parts) > 1:
        side = "ship_to" if head == "toaddress" else "ship_from"
        name = _ADDRESS_FIELDS.get(leaf)
        return f"{side}.{name}" if name else ""
    if head == "packagedescription" and len(parts) > 1:
        if leaf in _PACKAGE_FIELDS:
            return f"parcels[{parcel_index}].{_PACKAGE_FIELDS[leaf]}"
        return _SHIPMENT_FIELDS.get(leaf, "")
    return _SHIPMENT_FIELDS.get(leaf, "")


def _usps_errors(body: Any, *, parcel_index: int = 0) -> tuple[str, list[FieldError], set[str]]:
    """USPS's error envelope `{"apiVersion", "error": {"code", "message", "errors": [{"code", "title",
    "detail", "source": {"parameter"}}]}}` as (summary, field errors, codes)."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return "", [], set()
    summary = str(error.get("message") or "").strip()
    found: list[FieldError] = []
    codes: set[str] = set()
    items = error.get("errors")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        if item.get("code") is not None:
            codes.add(str(item["code"]))
        source = item.get("source")
        parameter = str(source.get("parameter") or "") if isinstance(source, Mapping) else ""
        message = str(item.get("detail") or item.get("title") or summary or "refused").strip()
        found.append(FieldError(usps_field(parameter, parcel_index=parcel_index), message))
    if error.get("code") is not None:
        codes.add(str(error["code"]))
    return summary, found, codes


def _label_charge(metadata: Mapping[str, Any]) -> Decimal | None:
    """Postage plus fees of one label, as USPS reports them; None when it reports no postage."""
    postage = _decimal(metadata.get("postage"))
    if postage is None:
        return None
    fees = metadata.get("fees")
    for fee in fees if isinstance(fees, list) else []:
        if isinstance(fee, Mapping):
            postage += _decimal(fee.get("price")) or Decimal(0)
    return postage


def _describe(summary: str, errors: Sequence[FieldError], fallback: str) -> str:
    details = "; ".join(error.message for error in errors if error.message and error.message != summary)
    text = ": ".join(part for part in (summary, details) if part)
    return text or fallback


def _pounds(grams: int) -> Decimal:
    pounds = (Decimal(grams) / GRAMS_PER_POUND).quantize(Decimal("0.01"), rounding=ROUND_CEILING)
    return max(pounds, Decimal("0.01"))


def _inches(cm: Decimal) -> Decimal:
    return (Decimal(cm) / CM_PER_INCH).quantize(Decimal("0.1"), rounding=ROUND_CEILING)


def _number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().rpartition(" ")
    return (first, last) if first else (last, "")


def _address(address: Address) -> dict[str, Any]:
    first, last = _split_name(address.name)
    body: dict[str, Any] = {
        "firstName": first,
        "lastName": last,
        "streetAddress": address.line1,
        "city": address.city,
        "state": address.region,
    }
    match = ZIP.match(address.postal_code.strip())
    if match:
        body["ZIPCode"] = match.group(1)
        if match.group(2):
            body["ZIPPlus4"] = match.group(2)
    else:
        body["ZIPCode"] = address.postal_code.strip()
    optional = {
        "firm": address.company,
        "secondaryAddress": address.line2,
        "phone": re.sub(r"\D", "", address.phone)[-10:],
        "email": address.email,
    }
    body.update({key: value for key, value in optional.items() if value})
    return body


def _package(shipment: ShipmentRequest, parcel: Parcel, mailing_date: date) -> dict[str, Any]:
    package: dict[str, Any] = {
        "mailClass": shipment.service,
        "rateIndicator": "SP",  # single piece
        "weightUOM": "lb",
        "weight": _number(_pounds(parcel.weight_grams)),
        "processingCategory": "MACHINABLE",
        "destinationEntryFacilityType": "NONE",
        "mailingDate": mailing_date.isoformat(),
    }
    if parcel.length_cm and parcel.width_cm and parcel.height_cm:
        package["dimensionsUOM"] = "in"
        package["length"] = _number(_inches(parcel.length_cm))
        package["width"] = _number(_inches(parcel.width_cm))
        package["height"] = _number(_inches(parcel.height_cm))
    reference = parcel.reference or shipment.reference
    if reference:
        package["customerReference"] = [{"referenceNumber": reference[:30], "printReferenceNumber": True}]
    if shipment.value is not None:
        package["packageOptions"] = {"packageValue": _number(shipment.value)}
    return package


# ------------------------------------------------------------------------------------------------ labels


def _part_name(part: Message) -> str:
    return str(part.get_param("name", header="content-disposition") or "")


def _decoded_file(raw: bytes) -> bytes | None:
    if raw.lstrip().startswith((b"%PDF", b"^XA")):
        return raw.lstrip()
    try:
        decoded = base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded or None


def _label_bytes(part: Message) -> bytes:
    """The label file: USPS sends it base64-encoded, with or without a Content-Transfer-Encoding header, and
    its own example has a header line ("File Name: label.pdf") that is no header, which ends the headers early."""
    payload = part.get_payload(decode=True)
    raw = payload if isinstance(payload, bytes) else b""
    decoded = _decoded_file(raw)
    if decoded is None:
        _, _, tail = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
        decoded = _decoded_file(tail)
    return decoded if decoded is not None else raw


def parse_label_response(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes]:
    """(label metadata, label file bytes) from a Labels 3.0 multipart answer."""
    message = BytesParser().parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise CarrierError("USPS answered the label request without a multipart body", retryable=False)
    metadata: dict[str, Any] | None = None
    image: bytes | None = None
    for part in message.get_payload():
        if not isinstance(part, Message):
            continue
        name = _part_name(part)
        if part.get_content_type() == "application/json" and (name in ("", "labelMetadata")) and metadata is None:
            payload = part.get_payload(decode=True)
            parsed = json.loads(payload) if isinstance(payload, bytes) and payload.strip() else None
            if isinstance(parsed, dict):
                metadata = parsed
        elif part.get_content_type() != "application/json" and (
            name == "labelImage" or (image is None and name not in ("receiptImage", "labelMetadata"))
        ):
            image = _label_bytes(part)
    if metadata is None or not metadata.get("trackingNumber"):
        raise CarrierError("USPS label answer has no labelMetadata with a trackingNumber", retryable=False)
    if not image:
        raise CarrierError("USPS label answer has no labelImage", retryable=False)
    return metadata, image


# ---------------------------------------------------------------------------------------------- tracking


def _moment(event: Mapping[str, Any]) -> datetime | None:
    """The event's time, aware: GMTTimestamp is UTC; eventTimestamp is local time and read as UTC if alone."""
    for key in ("GMTTimestamp", "eventTimestamp"):
        value = event.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _event_status(code: str, text: str) -> TrackingStatus:
    if code in _EVENT_CODES:
        return _EVENT_CODES[code]
    lowered = text.lower()
    if lowered.startswith("delivered"):
        return TrackingStatus.DELIVERED
    if "out for delivery" in lowered:
        return TrackingStatus.OUT_FOR_DELIVERY
    if "available for pickup" in lowered:
        return TrackingStatus.AVAILABLE_FOR_PICKUP
    if "return to sender" in lowered or "returned" in lowered:
        return TrackingStatus.RETURNED
    if "label created" in lowered or "pre-shipment" in lowered:
        return TrackingStatus.PRE_TRANSIT
    if "cancel" in lowered:
        return TrackingStatus.CANCELLED
    if any(word in lowered for word in ("notice left", "refused", "undeliverable", "attempt", "alert")):
        return TrackingStatus.EXCEPTION
    if text:
        return TrackingStatus.IN_TRANSIT
    return TrackingStatus.UNKNOWN


def _location(event: Mapping[str, Any]) -> str:
    parts = [str(event.get(key) or "").strip() for key in ("eventCity", "eventState", "eventZIP", "eventCountry")]
    return ", ".join(part for part in parts if part)


def parse_tracking(number: str, body: Mapping[str, Any]) -> TrackingResult:
    events: list[TrackingEvent] = []
    raw_events = body.get("trackingEvents")
    for raw in raw_events if isinstance(raw_events, list) else []:
        if not isinstance(raw, Mapping):
            continue
        moment = _moment(raw)
        if moment is None:
            continue
        code = str(raw.get("eventCode") or "").strip()
        text = str(raw.get("eventType") or raw.get("event") or "").strip()
        events.append(TrackingEvent(_event_status(code, text), moment, text, code=code, location=_location(raw)))
    events.sort(key=lambda event: event.occurred_at)  # USPS lists the newest first
    category = str(body.get("statusCategory") or "").strip().lower()
    status = _CATEGORIES.get(category)
    if status is None:
        status = events[-1].status if events else TrackingStatus.UNKNOWN
    estimated: date | None = None
    expected = body.get("expectedDeliveryDate")
    if isinstance(expected, str) and expected.strip():
        try:
            estimated = date.fromisoformat(expected.strip()[:10])
        except ValueError:
            estimated = None
    return TrackingResult(str(body.get("trackingNumber") or number), status, tuple(events), estimated)


# ----------------------------------------------------------------------------------------------- adapter


class USPSAdapter(CarrierAdapter):
    """USPS labels, voids, tracking and base rates for one USPS business account (an EPS or permit payer)."""

    kind: ClassVar[str] = "usps"
    label: ClassVar[str] = "USPS"
    credential_names: ClassVar[frozenset[str]] = frozenset({"client_id", "client_secret"})
    options: ClassVar[frozenset[str]] = frozenset(
        {"crid", "mid", "manifest_mid", "account_type", "account_number", "permit_zip", "price_type"}
    )
    default_api_base_url: ClassVar[str] = "https://apis.usps.com"
    label_formats: ClassVar[frozenset[LabelFormat]] = frozenset({LabelFormat.PDF, LabelFormat.ZPL})
    services: ClassVar[Mapping[str, str]] = {
        "USPS_GROUND_ADVANTAGE": "USPS Ground Advantage",
        "PRIORITY_MAIL": "Priority Mail",
        "PRIORITY_MAIL_EXPRESS": "Priority Mail Express",
        "PARCEL_SELECT": "Parcel Select Ground",
        "MEDIA_MAIL": "Media Mail",
    }
    idempotent_purchase: ClassVar[bool] = True

    def __init__(
        self,
        config: CarrierConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        max_retries: int = 3,
    ) -> None:
        super().__init__(config)
        self.base_url = (config.api_base_url or self.default_api_base_url).rstrip("/")
        self.http = Transport(
            carrier="USPS",
            timeout=config.timeout,
            session=session,
            sleep=sleep,
            rng=rng,
            max_retries=max_retries,
        )
        self._access = TokenCache(clock=clock)
        self._payment = TokenCache(clock=clock)

    # ------------------------------------------------------------------------------------------ auth

    def _fetch_access_token(self) -> tuple[str, float]:
        body = {
            "grant_type": "client_credentials",
            "client_id": self.config.credentials.get("client_id", ""),
            "client_secret": self.config.credentials.get("client_secret", ""),
        }
        response = self.http.request("POST", f"{self.base_url}/oauth2/v3/token", safe=True, json=body)
        payload = json_body(response)
        if response.status_code in (400, 401, 403):
            reason = ""
            if isinstance(payload, Mapping):
                reason = str(payload.get("error_description") or payload.get("error") or "")
            raise CarrierAuthFailed(f"USPS refused the client credentials (HTTP {response.status_code}) {reason}")
        token = payload.get("access_token") if isinstance(payload, Mapping) else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise CarrierUnavailable(f"USPS token endpoint answered HTTP {response.status_code} without a token")
        try:
            lifetime = float(payload.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        return token, lifetime

    def _roles(self) -> list[dict[str, str]]:
        options = self.config.options
        role = {
            "CRID": options.get("crid", ""),
            "MID": options.get("mid", ""),
            "manifestMID": options.get("manifest_mid") or options.get("mid", ""),
            "accountType": options.get("account_type", "EPS"),
            "accountNumber": options.get("account_number", ""),
        }
        if options.get("permit_zip"):
            role["permitZIP"] = options["permit_zip"]
        return [{"roleName": name, **role} for name in ("PAYER", "LABEL_OWNER")]

    def _fetch_payment_token(self) -> tuple[str, float]:
        response = self._authorized(
            "POST", "/payments/v3/payment-authorization", safe=True, json={"roles": self._roles()}
        )
        payload = json_body(response)
        token = payload.get("paymentAuthorizationToken") if isinstance(payload, Mapping) else None
        if response.status_code in (400, 403, 404, 422):
            summary, errors, _codes = _usps_errors(payload)
            raise CarrierAuthFailed(
                f"USPS refused the payment account (HTTP {response.status_code}): "
                + "; ".join([summary, *(e.message for e in errors)]).strip("; ")
            )
        if response.status_code not in (200, 201) or not isinstance(token, str) or not token:
            raise CarrierUnavailable(f"USPS payment authorization answered HTTP {response.status_code}")
        return token, PAYMENT_TOKEN_LIFETIME

    def _tokens(self, *, payment: bool) -> dict[str, str]:
        """The bearer token (and the payment token) a call needs. An outage while fetching them comes before the
        call itself, so that call surely never reached USPS (`request_sent` False: nothing was bought)."""
        try:
            tokens = {"Authorization": f"Bearer {self._access.get(self._fetch_access_token)}"}
            if payment:
                tokens["X-Payment-Authorization-Token"] = self._payment.get(self._fetch_payment_token)
        except CarrierUnavailable as exc:
            raise CarrierUnavailable(str(exc), retry_after=exc.retry_after, request_sent=False) from exc
        return tokens

    def _authorized(
        self,
        method: str,
        path: str,
        *,
        safe: bool,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        payment: bool = False,
    ) -> requests.Response:
        """A call with the bearer token (and the payment token): a 401 means the token went stale, so both
        are fetched again and the call is made once more (USPS ran nothing for a 401)."""
        for attempt in range(2):
            sent = {**self._tokens(payment=payment), **(headers or {})}
            sent.setdefault("Accept", "application/json")
            response = self.http.request(method, f"{self.base_url}{path}", safe=safe, headers=sent, json=json)
            if response.status_code != 401:
                return response
            self._access.clear()
            self._payment.clear()
            if attempt:
                break
        raise CarrierAuthFailed(f"USPS refused a fresh access token for {method} {path} (HTTP 401)")

    # --------------------------------------------------------------------------------------- buying

    def _check_bookable(self, shipment: ShipmentRequest) -> None:
        errors = [
            FieldError(f"{side}.country_code", f"USPS domestic labels ship within the US only, not {code!r}")
            for side, code in (
                ("ship_from", shipment.ship_from.country_code),
                ("ship_to", shipment.ship_to.country_code),
            )
            if code.upper() not in DOMESTIC
        ]
        if not shipment.parcels:
            errors.append(FieldError("parcels", "a shipment needs at least one parcel"))
        if shipment.service not in self.services:
            errors.append(FieldError("service", f"{shipment.service!r} is not a USPS mail class we book"))
        if errors:
            raise CarrierRejected("USPS cannot book this shipment as it stands", errors=errors)

    def _label_body(self, shipment: ShipmentRequest, parcel: Parcel, label_format: LabelFormat) -> dict[str, Any]:
        mailing_date = shipment.ship_date or datetime.now(UTC).date()
        return {
            "imageInfo": {
                "imageType": IMAGE_TYPES[label_format],
                "labelType": "4X6LABEL",
                "receiptOption": "NONE",
                "suppressPostage": False,
                "returnLabel": False,
            },
            "toAddress": _address(shipment.ship_to),
            "fromAddress": _address(shipment.ship_from),
            "packageDescription": _package(shipment, parcel, mailing_date),
        }

    def _buy_one(
        self, shipment: ShipmentRequest, index: int, key: str, label_format: LabelFormat
    ) -> tuple[dict[str, Any], bytes]:
        response = self._authorized(
            "POST",
            "/labels/v3/label",
            safe=True,  # USPS answers a repeated X-Idempotency-Key with the label it already made
            headers={"X-Idempotency-Key": key, "Accept": "multipart/form-data, application/json"},
            json=self._label_body(shipment, shipment.parcels[index], label_format),
            payment=True,
        )
        status = response.status_code
        if status in (200, 201):
            return parse_label_response(response.headers.get("Content-Type", ""), response.content)
        payload = json_body(response)
        summary, errors, _codes = _usps_errors(payload, parcel_index=index)
        if status == 403:
            raise CarrierAuthFailed(f"USPS refused the label request (HTTP 403): {summary}")
        if status == 409:  # the same key is still being processed
            raise CarrierUnavailable(f"USPS is still processing idempotency key {key}: {summary}")
        if 400 <= status < 500:
            raise CarrierRejected(
                f"USPS refused the label for parcel {index + 1}: {_describe(summary, errors, f'HTTP {status}')}",
                errors=errors or [FieldError("", summary or f"HTTP {status}")],
            )
        raise CarrierUnavailable(f"USPS answered the label request with HTTP {status}")

    def buy_label(self, shipment: ShipmentRequest, *, idempotency_key: str) -> Label:
        self._check_bookable(shipment)
        label_format = self.config.label_format
        if label_format not in self.label_formats:
            raise CarrierRejected(f"USPS prints no {label_format} labels")
        bought: list[tuple[dict[str, Any], bytes]] = []
        for index in range(len(shipment.parcels)):
            try:
                bought.append(self._buy_one(shipment, index, f"{idempotency_key}:{index}", label_format))
            except CarrierRejected:
                # The labels of the earlier parcels are paid for: refund them, the attempt is dead.
                self._void_quietly(str(metadata["trackingNumber"]) for metadata, _ in bought)
                raise
            except CarrierUnavailable as exc:
                if bought and not exc.request_sent:  # this parcel's call never left, but the earlier ones bought
                    raise CarrierUnavailable(str(exc), retry_after=exc.retry_after) from exc
                raise
        numbers = tuple(str(metadata["trackingNumber"]) for metadata, _ in bought)
        charges = [_label_charge(metadata) for metadata, _ in bought]
        cost = None if any(charge is None for charge in charges) else sum(filter(None, charges), Decimal(0))
        return Label(
            tracking_numbers=numbers,
            documents=tuple(
                LabelDocument(number, image, label_format) for number, (_, image) in zip(numbers, bought, strict=True)
            ),
            cost=cost,
            currency="USD" if cost is not None else "",
            service=shipment.service,
            raw={"labels": [metadata for metadata, _ in bought]},
        )

    # -------------------------------------------------------------------------------------- voiding

    def _void_one(self, number: str) -> None:
        response = self._authorized("DELETE", f"/labels/v3/label/{quote(number, safe='')}", safe=True, payment=True)
        if response.status_code in (200, 202, 204):
            return
        summary, errors, _codes = _usps_errors(json_body(response))
        if response.status_code == 403:
            raise CarrierAuthFailed(f"USPS refused to cancel label {number} (HTTP 403): {summary}")
        raise CarrierRejected(
            f"USPS would not cancel label {number}: {_describe(summary, errors, f'HTTP {response.status_code}')}",
            errors=[FieldError("", e.message) for e in errors],
        )

    def _void_quietly(self, numbers: Iterable[str]) -> None:
        for number in numbers:
            try:
                self._void_one(number)
            except CarrierError:
                continue  # support can refund it by hand; the rejection is what the caller must see

    def void_label(self, label: Label) -> None:
        """Cancel every parcel's label (USPS refunds unused postage); refused ones raise after the others."""
        refused: list[str] = []
        for number in label.tracking_numbers:
            try:
                self._void_one(number)
            except CarrierRejected as exc:
                refused.append(str(exc))
        if refused:
            raise CarrierRejected("; ".join(refused))

    # ------------------------------------------------------------------------------------- tracking

    def track(self, tracking_numbers: Sequence[str]) -> list[TrackingResult]:
        results: list[TrackingResult] = []
        for number in tracking_numbers:
            if not number or not number.isalnum():
                continue  # not a USPS number; it would reshape the URL
            response = self._authorized("GET", f"/tracking/v3/tracking/{number}?expand=DETAIL", safe=True)
            payload = json_body(response)
            if response.status_code in (400, 404):
                _summary, _errors, codes = _usps_errors(payload)
                if response.status_code == 404 or codes & UNKNOWN_NUMBER_CODES or not codes:
                    continue
                raise CarrierRejected(f"USPS refused to track {number}: {_summary}")
            if response.status_code == 403:
                raise CarrierAuthFailed("USPS refused the tracking request (HTTP 403)")
            if response.status_code != 200 or not isinstance(payload, Mapping):
                raise CarrierUnavailable(f"USPS tracking answered HTTP {response.status_code}")
            if isinstance(payload.get("error"), Mapping):
                continue  # an error envelope in a 200: USPS knows nothing of the number yet
            results.append(parse_tracking(number, payload))
        return results

    # ---------------------------------------------------------------------------------------- rates

    def rates(self, shipment: ShipmentRequest) -> list[Rate]:
        """Base postage of every mail class we book, for all the parcels; classes USPS refuses are left out."""
        self._check_bookable(shipment)
        quotes: list[Rate] = []
        for service, name in self.services.items():
            total: Decimal | None = Decimal(0)
            description = name
            for parcel in shipment.parcels:
                found = self._base_rate(replace(shipment, service=service), parcel)
                if found is None:
                    total = None
                    break
                price, description = found
                total = (total or Decimal(0)) + price
            if total is not None:
                quotes.append(Rate(service=service, amount=total, currency="USD", description=description or name))
        return quotes

    def _base_rate(self, shipment: ShipmentRequest, parcel: Parcel) -> tuple[Decimal, str] | None:
        """One parcel's base postage and USPS's name for it; None when USPS does not offer the class."""
        mailing_date = shipment.ship_date or datetime.now(UTC).date()
        package = _package(shipment, parcel, mailing_date)
        options = self.config.options
        body: dict[str, Any] = {
            "originZIPCode": _address(shipment.ship_from)["ZIPCode"],
            "destinationZIPCode": _address(shipment.ship_to)["ZIPCode"],
            "weight": package["weight"],
            "length": package.get("length", 0),
            "width": package.get("width", 0),
            "height": package.get("height", 0),
            "mailClass": shipment.service,
            "processingCategory": "MACHINABLE",
            "destinationEntryFacilityType": "NONE",
            "rateIndicator": "SP",
            "priceType": options.get("price_type", "COMMERCIAL"),
            "mailingDate": mailing_date.isoformat(),
        }
        if options.get("account_number"):
            body["accountType"] = options.get("account_type", "EPS")
            body["accountNumber"] = options["account_number"]
        response = self._authorized("POST", "/prices/v3/base-rates/search", safe=True, json=body)
        payload = json_body(response)
        if 400 <= response.status_code < 500:
            return None
        if response.status_code != 200 or not isinstance(payload, Mapping):
            raise CarrierUnavailable(f"USPS prices answered HTTP {response.status_code}")
        rates = payload.get("rates")
        first = rates[0] if isinstance(rates, list) and rates and isinstance(rates[0], Mapping) else {}
        price = _decimal(payload.get("totalBasePrice"))
        if price is None:
            price = _decimal(first.get("price"))
        return None if price is None else (price, str(first.get("description") or ""))
