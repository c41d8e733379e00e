"""DPD through DPD group's "Shipping API" (NST, v1.1): REST + JSON, JWT bearer tokens.

Base URL (`CarrierConfig.api_base_url`): `https://shipping.dpdgroup.com/api/v1.1` (pre-production:
`https://nst-preprod.dpsin.dpdgroup.com/api/v1.1`). Several DPD business units (CZ 015, HU, RO, ...) sell this API;
each account has a customer id and sender address ids registered with DPD.

What public clients of this API show (and this adapter relies on):

- `POST /shipments` with `{buCode, customerId, shipments: [{numOrder, senderAddressId, receiver{name,
  companyName, contactName, street, city, zipCode, countryCode, contactEmail, contactPhone, contactMobile},
  parcels[{weight (kg), dimensionLength/Width/Height (cm), reference1}], service{mainServiceElementCodes,
  additionalService{pudoId, cod{amount, currency, paymentType, reference, split}, predicts[{type,
  destination}]}}, reference1.., saveMode: "printed", printFormat: "PDF"|"ZPL", labelSize: "A6"}]}` answers
  `{transactionId, shipmentResults: [{numOrder, shipmentId, mpsId, parcelResults[{parcelNumber}], labelFile:
  "data:application/pdf;base64,..."}]}`, and a shipment DPD refuses comes back with
  `errors: [{errorCode, errorContent}]` and no shipmentId (HTTP 200).
- `PUT /shipments/cancellation` with `{buCode, customerId, shipmentIdList}`.
- `POST /api/v1.0/label/parcel-numbers` with `{buCode, customerId, labelSize, printFormat, startPosition,
  parcelNumberList}` reprints labels (`pdfFile` as a data URI); note the v1.0 in its path.
- Status codes "SA02".."SA23" for the parcel's scans (SA03 out for delivery, SA13 delivered, SA23 delivered to
  a pick-up point, SA04/SA14 back at the depot after a failed attempt, SA06 return to sender).

Assumed where the public material is thin (the emulator in tests/emulators/dpd.py speaks exactly this):

- The token: `POST /login` with headers X-DPD-LOGIN, X-DPD-PASSWORD, X-DPD-BUCODE answers the JWT in the
  X-DPD-TOKEN response header (as DPD's META-API login does); the adapter reads its `exp` claim and logs in
  again 5 minutes before it, or at once after a 401 (a 401 means DPD acted on nothing, so the call is resent).
  Tokens are cached per process, per base URL + login + business unit.
- `errorContent` starts with DPD's own field path ("receiver.zipCode: ..."); the adapter maps that path onto
  the OMS's fields. Request-level refusals are 4xx `{transactionId, errors: [{errorCode, errorContent}]}`.
- The cancellation answers `shipmentResults: [{shipmentId, status} | {shipmentId, errors}]`.
- Tracking: `GET /parcels/{parcelNumber}/statuses` answers `{statuses: [{statusCode, statusDescription,
  date: "YYYYMMDD", time: "HHMMSS", depot}]}` in the business unit's local time (option `time_zone`,
  default Europe/Prague); an unknown parcel is a 404.
- The ZPL reprint answers `zplFile` instead of `pdfFile`.

The sender is the account's registered sender address (option `sender_address_id`), not `ship_from`. DPD takes
no idempotency key and offers no search by reference here, so `find_label` is not supported.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from carriers._transport import Transport
from carriers.base import (
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
    ShipmentRequest,
    TrackingEvent,
    TrackingResult,
    TrackingStatus,
)

__all__ = ["DpdAdapter"]

DEFAULT_BU_CODE = "015"  # DPD CZ
DEFAULT_TIME_ZONE = "Europe/Prague"
TOKEN_MARGIN = 300.0  # seconds before a token's expiry when it is renewed
FALLBACK_TOKEN_LIFETIME = 3600.0  # when the token's expiry cannot be read
PICKUP_ELEMENT = "200"
PREDICT_ELEMENT = "013"

# DPD scan code -> the OMS's status; None: informational (keeps the status the parcel had).
SCAN_STATUS: dict[str, TrackingStatus | None] = {
    "SA02": TrackingStatus.IN_TRANSIT,  # inbound scan
    "SA03": TrackingStatus.OUT_FOR_DELIVERY,
    "SA04": TrackingStatus.EXCEPTION,  # back at the depot after an unsuccessful delivery attempt
    "SA05": TrackingStatus.IN_TRANSIT,  # pickup scan: DPD has it
    "SA06": TrackingStatus.RETURNED,  # return to sender
    "SA07": TrackingStatus.IN_TRANSIT,  # outbound
    "SA08": TrackingStatus.IN_TRANSIT,  # at the parcel delivery centre
    "SA09": TrackingStatus.EXCEPTION,  # inbound exception
    "SA10": TrackingStatus.IN_TRANSIT,  # hub scan
    "SA12": TrackingStatus.IN_TRANSIT,  # customs clearance
    "SA13": TrackingStatus.DELIVERED,
    "SA14": TrackingStatus.EXCEPTION,  # back at the depot after an unsuccessful delivery attempt
    "SA15": TrackingStatus.IN_TRANSIT,  # driver's pickup
    "SA17": TrackingStatus.IN_TRANSIT,  # export / import cleared
    "SA18": None,  # additional information
    "SA20": TrackingStatus.IN_TRANSIT,  # loading
    "SA23": TrackingStatus.AVAILABLE_FOR_PICKUP,  # delivered to the pick-up point, waiting for the customer
}

# DPD's field path (from errorContent) -> the OMS field and what a packer should do about it.
_FIELD_RULES: tuple[tuple[str, str, str], ...] = (
    (
        r"receiver\.zipCode",
        "ship_to.postal_code",
        "DPD does not deliver to this postal code; check it with the customer",
    ),
    (r"receiver\.countryCode", "ship_to.country_code", "DPD does not deliver to this country with this account"),
    (r"receiver\.city", "ship_to.city", "the town is missing or DPD does not know it"),
    (r"receiver\.(?:street|houseNo)", "ship_to.line1", "the street address is missing or incomplete"),
    (r"receiver\.additionalAddressInfo", "ship_to.line2", "the second address line is too long or invalid"),
    (r"receiver\.companyName", "ship_to.company", "the company name is too long or invalid"),
    (r"receiver\.(?:name|contactName)", "ship_to.name", "the recipient's name is missing or too long"),
    (
        r"receiver\.contactEmail",
        "ship_to.email",
        "DPD needs the recipient's e-mail (or mobile) to announce the delivery",
    ),
    (
        r"receiver\.(?:contactPhone|contactMobile)",
        "ship_to.phone",
        "the recipient's phone number is missing or invalid",
    ),
    (r"parcels\[(\d+)\]\.weight", "parcels[{0}].weight_grams", "the parcel's weight is missing or over DPD's limit"),
    (r"parcels\[(\d+)\]\.dimensionLength", "parcels[{0}].length_cm", "the parcel is too long for DPD"),
    (r"parcels\[(\d+)\]\.dimensionWidth", "parcels[{0}].width_cm", "the parcel is too wide for DPD"),
    (r"parcels\[(\d+)\]\.dimensionHeight", "parcels[{0}].height_cm", "the parcel is too high for DPD"),
    (r"parcels\[(\d+)\]\.reference\d", "parcels[{0}].reference", "the parcel's reference is too long"),
    (r"parcels\b", "parcels[0].weight_grams", "DPD refused the parcels"),
    (r"service\.additionalService\.pudoId", "pickup_point_id", "DPD does not know this pick-up point; pick another"),
    (r"service\.additionalService\.cod\.currency", "currency", "DPD cannot collect cash on delivery in this currency"),
    (r"service\.additionalService\.cod", "cod_amount", "the cash-on-delivery amount is invalid"),
    (r"service", "service", "DPD does not offer this service to this account or destination"),
    (r"reference\d", "reference", "the order reference is too long for DPD"),
)
_CONFIG_CODES = {"CUSTOMER_NOT_FOUND", "INVALID_BU_CODE", "SENDER_ADDRESS_NOT_FOUND"}

_TOKENS: dict[tuple[str, str, str, str], tuple[str, float]] = {}
_TOKENS_LOCK = threading.Lock()


def _jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (read, not verified: DPD verifies it), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:  # binascii.Error included
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def _decode_document(value: str) -> bytes:
    """A label as DPD sends it: base64, usually as a data URI ("data:application/pdf;base64,....")."""
    data = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        return base64.b64decode(data, validate=True)
    except ValueError as exc:  # binascii.Error included
        raise CarrierError("DPD sent a label that is not valid base64", retryable=False) from exc


def _kg(grams: int) -> float:
    return float((Decimal(grams) / 1000).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


def _money(amount: Decimal) -> float:
    return float(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


class DpdAdapter(CarrierAdapter):
    """DPD group Shipping API (NST v1.1): labels, cancellation and tracking for one DPD customer account."""

    kind: ClassVar[str] = "dpd"
    label: ClassVar[str] = "DPD (DPD group Shipping API)"
    credential_names: ClassVar[frozenset[str]] = frozenset({"username", "password"})
    options: ClassVar[frozenset[str]] = frozenset(
        {"customer_id", "sender_address_id", "bu_code", "label_size", "time_zone"}
    )
    default_api_base_url: ClassVar[str] = "https://shipping.dpdgroup.com/api/v1.1"
    label_formats: ClassVar[frozenset[LabelFormat]] = frozenset({LabelFormat.PDF, LabelFormat.ZPL})
    # DPD's main service element codes, joined with "+".
    services: ClassVar[Mapping[str, str]] = {
        "001": "DPD Classic (business address)",
        "001+013": "DPD Private (home delivery with Predict)",
        "001+013+200": "DPD Pickup (to a DPD pick-up point)",
    }
    idempotent_purchase: ClassVar[bool] = False

    def __init__(
        self,
        config: CarrierConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config)
        self._http = Transport(carrier="DPD", timeout=config.timeout, session=session, sleep=sleep, rng=rng)
        self._clock = clock

    # ------------------------------------------------------------------------------------ configuration

    @property
    def _base(self) -> str:
        return (self.config.api_base_url or self.default_api_base_url).rstrip("/")

    @property
    def _bu_code(self) -> str:
        return self.config.options.get("bu_code") or DEFAULT_BU_CODE

    def _option(self, name: str) -> str:
        value = self.config.options.get(name, "").strip()
        if not value:
            raise CarrierRejected(
                f"the DPD account has no {name}",
                errors=[FieldError("", f"Set the DPD {name.replace('_', ' ')} in the carrier account settings")],
            )
        return value

    def _zone(self) -> ZoneInfo:
        name = self.config.options.get("time_zone") or DEFAULT_TIME_ZONE
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo(DEFAULT_TIME_ZONE)

    # ------------------------------------------------------------------------------------------- tokens

    def _token(self, *, refresh: bool = False) -> str:
        username = self.config.credentials.get("username", "")
        password = self.config.credentials.get("password", "")
        if not username or not password:
            raise CarrierAuthFailed("the DPD account has no username or password")
        key = (self._base, username, hashlib.sha256(password.encode()).hexdigest(), self._bu_code)
        if not refresh:
            with _TOKENS_LOCK:
                cached = _TOKENS.get(key)
            if cached is not None and cached[1] - TOKEN_MARGIN > self._clock():
                return cached[0]
        response = self._http.request(
            "POST",
            f"{self._base}/login",
            safe=True,  # a login books nothing
            headers={"X-DPD-LOGIN": username, "X-DPD-PASSWORD": password, "X-DPD-BUCODE": self._bu_code},
        )
        if response.status_code >= 400:  # 401 for bad credentials; any refusal of a login is about the account
            raise CarrierAuthFailed(f"DPD refused the login (HTTP {response.status_code}): {_error_text(response)}")
        token = response.headers.get("X-DPD-TOKEN", "").strip()
        if not token:
            raise CarrierUnavailable("DPD answered the login without a token (no X-DPD-TOKEN header)")
        expires = _jwt_expiry(token) or self._clock() + FALLBACK_TOKEN_LIFETIME
        with _TOKENS_LOCK:
            _TOKENS[key] = (token, expires)
        return token

    def _authorized(self, method: str, url: str, *, safe: bool, **kwargs: Any) -> requests.Response:
        """One API call with the bearer token; after a 401 (DPD did nothing) log in again and resend once."""
        for refresh in (False, True):
            headers = {"Authorization": f"Bearer {self._token(refresh=refresh)}", "Accept": "application/json"}
            response = self._http.request(method, url, safe=safe, headers=headers, **kwargs)
            if response.status_code != 401:
                break
        if response.status_code in (401, 403):
            raise CarrierAuthFailed(f"DPD refused the token (HTTP {response.status_code}): {_error_text(response)}")
        return response

    # ------------------------------------------------------------------------------------------- buying

    def buy_label(self, shipment: ShipmentRequest, *, idempotency_key: str) -> Label:
        label_format = self.config.label_format
        body = {
            "buCode": self._bu_code,
            "customerId": self._option("customer_id"),
            "shipments": [self._shipment_payload(shipment, idempotency_key)],
        }
        response = self._authorized("POST", f"{self._base}/shipments", safe=False, json=body)
        payload = _json_object(response, booking=True)
        if response.status_code >= 400:
            raise self._rejection(payload.get("errors"), f"DPD refused the shipment (HTTP {response.status_code})")
        results = payload.get("shipmentResults")
        result = results[0] if isinstance(results, list) and results and isinstance(results[0], dict) else None
        if result is None:
            raise CarrierUnavailable("DPD answered the shipment without a result; whether it booked it is unknown")
        if result.get("errors") or result.get("shipmentId") in (None, ""):
            raise self._rejection(result.get("errors"), "DPD refused the shipment")
        shipment_id = str(result["shipmentId"])
        numbers = tuple(
            str(item["parcelNumber"])
            for item in result.get("parcelResults") or []
            if isinstance(item, dict) and item.get("parcelNumber")
        )
        if len(numbers) != len(shipment.parcels):
            raise CarrierError(
                f"DPD booked shipment {shipment_id} with {len(numbers)} parcel numbers for "
                f"{len(shipment.parcels)} parcels; cancel it in DPD's portal and book again",
                retryable=False,
            )
        label_file = result.get("labelFile")
        if isinstance(label_file, str) and label_file:
            content = _decode_document(label_file)
        else:
            content = self._reprint(numbers, label_format)
        raw = {key: value for key, value in result.items() if key != "labelFile"}
        raw["transactionId"] = payload.get("transactionId")
        return Label(
            tracking_numbers=numbers,
            documents=(LabelDocument(numbers[0], content, label_format),),
            shipment_id=shipment_id,
            service=shipment.service,
            raw=raw,
        )

    def _elements(self, shipment: ShipmentRequest) -> list[str]:
        service = shipment.service.strip() or "001"
        elements = [code.strip() for code in service.split("+") if code.strip()]
        if not elements or not all(re.fullmatch(r"\d{3}", code) for code in elements):
            raise CarrierRejected(
                f"{service!r} is not a DPD service",
                errors=[FieldError("service", f"Pick a DPD service; {service!r} is not one of DPD's codes")],
            )
        if shipment.pickup_point_id and PICKUP_ELEMENT not in elements:
            elements.append(PICKUP_ELEMENT)
        if PICKUP_ELEMENT in elements and not shipment.pickup_point_id:
            raise CarrierRejected(
                "DPD Pickup needs a pick-up point",
                errors=[FieldError("pickup_point_id", "Choose the DPD pick-up point the customer wants")],
            )
        return elements

    def _shipment_payload(self, shipment: ShipmentRequest, idempotency_key: str) -> dict[str, Any]:
        to = shipment.ship_to
        elements = self._elements(shipment)
        receiver = {
            "name": to.name,
            "companyName": to.company or None,
            "contactName": to.name,
            "street": to.line1,
            "additionalAddressInfo": to.line2 or None,
            "city": to.city,
            "zipCode": to.postal_code.strip(),
            "countryCode": to.country_code.upper(),
            "contactEmail": to.email or None,
            "contactPhone": to.phone or None,
            "contactMobile": to.phone or None,
        }
        parcels = []
        for parcel in shipment.parcels:
            item: dict[str, Any] = {"weight": _kg(parcel.weight_grams)}
            for key, size in (
                ("dimensionLength", parcel.length_cm),
                ("dimensionWidth", parcel.width_cm),
                ("dimensionHeight", parcel.height_cm),
            ):
                if size is not None:
                    item[key] = math.ceil(size)
            item["reference1"] = parcel.reference or shipment.reference
            parcels.append(item)
        additional: dict[str, Any] = {}
        if shipment.pickup_point_id:
            additional["pudoId"] = shipment.pickup_point_id
        if shipment.cod_amount is not None and shipment.cod_amount > 0:
            additional["cod"] = {
                "amount": _money(shipment.cod_amount),
                "currency": shipment.currency.upper(),
                "paymentType": "Cash",
                "reference": re.sub(r"\D", "", shipment.reference)[-10:] or shipment.reference[:10],
                "split": "First parcel",
            }
        if PREDICT_ELEMENT in elements:
            predicts = []
            if to.email:
                predicts.append({"type": "email", "destination": to.email})
            if to.phone:
                predicts.append({"type": "SMS", "destination": to.phone})
            if predicts:
                additional["predicts"] = predicts
        service: dict[str, Any] = {"mainServiceElementCodes": elements}
        if additional:
            service["additionalService"] = additional
        body: dict[str, Any] = {
            "numOrder": 1,
            "senderAddressId": self._option("sender_address_id"),
            "receiver": {key: value for key, value in receiver.items() if value is not None},
            "parcels": parcels,
            "service": service,
            "reference1": shipment.reference,
            "reference2": idempotency_key[:35],  # shown in DPD's portal: ties a shipment to the OMS's attempt
            "saveMode": "printed",
            "printFormat": "ZPL" if self.config.label_format is LabelFormat.ZPL else "PDF",
            "labelSize": self.config.options.get("label_size") or "A6",
        }
        if shipment.contents:
            body["reference3"] = shipment.contents[:35]
        if shipment.ship_date is not None:
            body["pickupDate"] = shipment.ship_date.strftime("%Y%m%d")
        return body

    def _reprint(self, numbers: Sequence[str], label_format: LabelFormat) -> bytes:
        """The labels of parcels DPD already has (a safe call: it books nothing)."""
        url = re.sub(r"/v1\.1$", "/v1.0", self._base) + "/label/parcel-numbers"
        body = {
            "buCode": self._bu_code,
            "customerId": self._option("customer_id"),
            "labelSize": self.config.options.get("label_size") or "A6",
            "printFormat": "ZPL" if label_format is LabelFormat.ZPL else "PDF",
            "startPosition": 1,
            "parcelNumberList": list(numbers),
        }
        response = self._authorized("POST", url, safe=True, json=body)
        payload = _json_object(response, booking=False)
        if response.status_code >= 400:
            raise self._rejection(payload.get("errors"), f"DPD could not print the labels of {', '.join(numbers)}")
        document = payload.get("zplFile") or payload.get("pdfFile")
        if not isinstance(document, str) or not document:
            raise CarrierUnavailable(f"DPD answered the label of {', '.join(numbers)} without a document")
        return _decode_document(document)

    def _rejection(self, errors: Any, summary: str) -> CarrierRejected:
        items = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        field_errors = [self._field_error(item) for item in items]
        details = "; ".join(f"{item.get('errorCode', '')}: {item.get('errorContent', '')}" for item in items)
        return CarrierRejected(f"{summary}: {details or 'no reason given'}", errors=field_errors)

    @staticmethod
    def _field_error(item: Mapping[str, Any]) -> FieldError:
        code = str(item.get("errorCode") or "")
        content = str(item.get("errorContent") or code or "refused")
        if code in _CONFIG_CODES:
            return FieldError("", f"The DPD account settings are wrong: {content}")
        path, _, detail = content.partition(":")
        subject = path.strip() if detail else content
        for pattern, field, advice in _FIELD_RULES:
            match = re.match(pattern, subject)
            if match:
                return FieldError(field.format(*match.groups()), f"{advice} (DPD: {(detail or content).strip()})")
        return FieldError("", f"DPD: {content}")

    # ------------------------------------------------------------------------------------------ voiding

    def void_label(self, label: Label) -> None:
        shipment_id = label.shipment_id.strip()
        if not shipment_id.isdigit():
            raise CarrierRejected(
                "this label has no DPD shipment id to cancel",
                errors=[FieldError("", "Cancel the shipment in DPD's portal: the OMS did not keep its shipment id")],
            )
        body = {
            "buCode": self._bu_code,
            "customerId": self._option("customer_id"),
            "shipmentIdList": [int(shipment_id)],
        }
        response = self._authorized("PUT", f"{self._base}/shipments/cancellation", safe=False, json=body)
        payload = _json_object(response, booking=False)
        if response.status_code >= 400:
            raise self._rejection(payload.get("errors"), f"DPD refused to cancel shipment {shipment_id}")
        results = payload.get("shipmentResults") or []
        for result in results:
            if isinstance(result, dict) and result.get("errors"):
                texts = "; ".join(
                    str(e.get("errorContent") or e.get("errorCode")) for e in result["errors"] if isinstance(e, dict)
                )
                raise CarrierRejected(
                    f"DPD will not cancel shipment {shipment_id}: {texts}",
                    errors=[FieldError("", f"DPD will not cancel this shipment: {texts}")],
                )

    # ----------------------------------------------------------------------------------------- tracking

    def track(self, tracking_numbers: Sequence[str]) -> list[TrackingResult]:
        zone = self._zone()
        results = []
        for number in dict.fromkeys(n.strip() for n in tracking_numbers if n.strip()):
            response = self._authorized("GET", f"{self._base}/parcels/{quote(number, safe='')}/statuses", safe=True)
            if response.status_code in (400, 404):
                continue  # not a parcel DPD knows
            payload = _json_object(response, booking=False)
            if response.status_code >= 400:
                raise self._rejection(payload.get("errors"), f"DPD refused to track {number}")
            results.append(self._tracking_result(number, payload.get("statuses"), zone))
        return results

    @staticmethod
    def _tracking_result(number: str, statuses: Any, zone: ZoneInfo) -> TrackingResult:
        scans = []
        for item in statuses if isinstance(statuses, list) else []:
            if not isinstance(item, dict):
                continue
            try:
                moment = datetime.strptime(f"{item.get('date')}{item.get('time')}", "%Y%m%d%H%M%S").replace(tzinfo=zone)
            except ValueError:
                continue
            scans.append((moment, item))
        scans.sort(key=lambda pair: pair[0])
        events = []
        current = TrackingStatus.PRE_TRANSIT
        for moment, item in scans:
            code = str(item.get("statusCode") or "")
            mapped = SCAN_STATUS.get(code, TrackingStatus.UNKNOWN)
            if mapped is not None:
                current = mapped
            events.append(
                TrackingEvent(
                    status=current,
                    occurred_at=moment,
                    description=str(item.get("statusDescription") or code),
                    code=code,
                    location=str(item.get("depot") or ""),
                )
            )
        return TrackingResult(tracking_number=number, status=current, events=tuple(events))


def _json_object(response: requests.Response, *, booking: bool) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        return payload
    if response.status_code >= 400:
        return {"errors": [{"errorCode": str(response.status_code), "errorContent": _error_text(response)}]}
    if booking:
        raise CarrierUnavailable(
            f"DPD answered HTTP {response.status_code} with a body that is not JSON; whether it booked is unknown"
        )
    raise CarrierUnavailable(f"DPD answered HTTP {response.status_code} with a body that is not JSON")


def _error_text(response: requests.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:200] or response.reason or "no reason given"
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if isinstance(errors, list):
        return "; ".join(str(e.get("errorContent") or e.get("errorCode")) for e in errors if isinstance(e, dict))
    return str(payload)[:200]
