"""FedEx through its REST APIs (apis.fedex.com): OAuth, Ship (create, cancel), Track and Rate.

One shipment of n parcels is one Ship call (a multi-piece shipment: requestedPackageLineItems in, one
pieceResponse with its own tracking number and label out). FedEx takes no purchase idempotency key and offers
no look-up of a shipment by our reference, so a Ship call is sent once: a timeout or a 5xx leaves its outcome
unknown and raises CarrierUnavailable for the OMS to resolve (carriers/base.py). Nothing here knows the OMS.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any, ClassVar

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

__all__ = ["IMAGE_TYPES", "FedExAdapter", "fedex_field"]

IMAGE_TYPES: Mapping[LabelFormat, tuple[str, str]] = {  # imageType, labelStockType
    LabelFormat.PDF: ("PDF", "PAPER_4X6"),
    LabelFormat.ZPL: ("ZPLII", "STOCK_4X6"),
}
TRACK_BATCH = 30  # tracking numbers per Track call, FedEx's limit
NOT_FOUND_CODES = frozenset({"TRACKING.TRACKINGNUMBER.NOTFOUND", "TRACKING.TRACKINGNUMBER.INVALID"})
TRANSIT_DAYS = {
    "ONE_DAY": 1,
    "TWO_DAYS": 2,
    "THREE_DAYS": 3,
    "FOUR_DAYS": 4,
    "FIVE_DAYS": 5,
    "SIX_DAYS": 6,
    "SEVEN_DAYS": 7,
    "EIGHT_DAYS": 8,
    "NINE_DAYS": 9,
    "TEN_DAYS": 10,
}

# Scan event types (and derived status codes) onto the OMS's vocabulary.
_EVENT_TYPES: Mapping[str, TrackingStatus] = {
    "OC": TrackingStatus.PRE_TRANSIT,  # shipment information sent to FedEx (label created)
    "IN": TrackingStatus.PRE_TRANSIT,  # initiated
    "PU": TrackingStatus.IN_TRANSIT,
    "PX": TrackingStatus.IN_TRANSIT,
    "AR": TrackingStatus.IN_TRANSIT,
    "AF": TrackingStatus.IN_TRANSIT,
    "AO": TrackingStatus.IN_TRANSIT,
    "AE": TrackingStatus.IN_TRANSIT,
    "DP": TrackingStatus.IN_TRANSIT,
    "IT": TrackingStatus.IN_TRANSIT,
    "FD": TrackingStatus.IN_TRANSIT,
    "RL": TrackingStatus.IN_TRANSIT,  # running late, still moving
    "OD": TrackingStatus.OUT_FOR_DELIVERY,
    "DL": TrackingStatus.DELIVERED,
    "HP": TrackingStatus.AVAILABLE_FOR_PICKUP,  # ready for recipient pickup
    "DE": TrackingStatus.EXCEPTION,  # delivery exception
    "DY": TrackingStatus.EXCEPTION,  # delay
    "SE": TrackingStatus.EXCEPTION,  # shipment exception
    "CD": TrackingStatus.EXCEPTION,  # clearance delay
    "RS": TrackingStatus.RETURNED,  # return to shipper
    "CA": TrackingStatus.CANCELLED,
}

_ADDRESS_PATHS: Mapping[str, str] = {
    "streetlines": "line1",
    "city": "city",
    "stateorprovincecode": "region",
    "postalcode": "postal_code",
    "countrycode": "country_code",
    "personname": "name",
    "companyname": "company",
    "phonenumber": "phone",
    "emailaddress": "email",
}
_PACKAGE_PATHS: Mapping[str, str] = {
    "weight": "weight_grams",
    "length": "length_cm",
    "width": "width_cm",
    "height": "height_cm",
    "customerreferences": "reference",
}
# Words in FedEx error codes ("SHIP.RECIPIENT.POSTALCITY.MISMATCH") onto address fields, most specific first.
_CODE_WORDS: tuple[tuple[str, str], ...] = (
    ("POSTAL", "postal_code"),
    ("ZIP", "postal_code"),
    ("STATE", "region"),
    ("PROVINCE", "region"),
    ("COUNTRY", "country_code"),
    ("CITY", "city"),
    ("STREET", "line1"),
    ("ADDRESS", "line1"),
    ("PHONE", "phone"),
    ("EMAIL", "email"),
    ("COMPANY", "company"),
    ("PERSON", "name"),
    ("NAME", "name"),
    ("CONTACT", "name"),
)
_INDEX = re.compile(r"\[(\d+)\]")


# ------------------------------------------------------------------------------------------------ mapping


def _path_field(path: str) -> str:
    """An OMS field for a FedEx JSON path ("requestedShipment.recipients[0].address.postalCode"), or ""."""
    lowered = path.lower()
    parts = [p for p in re.split(r"[.\[\]]+", lowered) if p and not p.isdigit()]
    if not parts:
        return ""
    if "requestedpackagelineitems" in parts:
        index = _INDEX.search(lowered[lowered.index("requestedpackagelineitems") :])
        position = int(index.group(1)) if index else 0
        for part in reversed(parts):
            if part in _PACKAGE_PATHS:
                return f"parcels[{position}].{_PACKAGE_PATHS[part]}"
        return ""
    side = "ship_to" if "recipients" in parts or "recipient" in parts else "ship_from" if "shipper" in parts else ""
    if side:
        for part in reversed(parts):
            if part in _ADDRESS_PATHS:
                return f"{side}.{_ADDRESS_PATHS[part]}"
        return ""
    leaf = parts[-1]
    return {"servicetype": "service", "shipdatestamp": "ship_date"}.get(leaf, "")


def fedex_field(code: str, parameters: Sequence[Mapping[str, Any]] = ()) -> str:
    """The OMS field a FedEx error points at: from a JSON path in its parameterList, else from the words of
    its code ("SHIP.RECIPIENT.POSTALCITY.MISMATCH" -> "ship_to.postal_code"); "" when it names none."""
    sequence: int | None = None
    for parameter in parameters:
        for text in (str(parameter.get("key") or ""), str(parameter.get("value") or "")):
            if "." in text or "[" in text:
                found = _path_field(text)
                if found:
                    return found
        if str(parameter.get("key") or "").lower() in ("sequencenumber", "packagesequencenumber"):
            try:
                sequence = int(str(parameter.get("value"))) - 1
            except ValueError:
                sequence = None
    words = code.upper().split(".")
    side = "ship_to" if "RECIPIENT" in words else "ship_from" if "SHIPPER" in words else ""
    if side:
        for word, name in _CODE_WORDS:
            if any(word in w for w in words):
                return f"{side}.{name}"
        return ""
    if any("WEIGHT" in w for w in words):
        return f"parcels[{max(sequence or 0, 0)}].weight_grams"
    for word, name in (("LENGTH", "length_cm"), ("WIDTH", "width_cm"), ("HEIGHT", "height_cm")):
        if any(word in w for w in words):
            return f"parcels[{max(sequence or 0, 0)}].{name}"
    if any("SERVICE" in w for w in words):
        return "service"
    if any("SHIPDATE" in w for w in words):
        return "ship_date"
    return ""


def _fedex_errors(body: Any) -> tuple[list[FieldError], set[str]]:
    """FedEx's `{"transactionId", "errors": [{"code", "message", "parameterList": [{"key", "value"}]}]}`."""
    items = body.get("errors") if isinstance(body, Mapping) else None
    found: list[FieldError] = []
    codes: set[str] = set()
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        code = str(item.get("code") or "")
        codes.add(code)
        parameters = item.get("parameterList")
        listed = [p for p in parameters if isinstance(p, Mapping)] if isinstance(parameters, list) else []
        message = str(item.get("message") or code or "refused").strip()
        found.append(FieldError(fedex_field(code, listed), message))
    return found, codes


def _describe(errors: Sequence[FieldError], fallback: str) -> str:
    return "; ".join(error.message for error in errors if error.message) or fallback


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _kilograms(grams: int) -> float:
    kilograms = (Decimal(grams) / 1000).quantize(Decimal("0.1"), rounding=ROUND_CEILING)
    return float(max(kilograms, Decimal("0.1")))


def _centimetres(value: Decimal) -> int:
    return int(Decimal(value).to_integral_value(rounding=ROUND_CEILING))


def _party(address: Address) -> dict[str, Any]:
    contact = {
        "personName": address.name,
        "companyName": address.company,
        "phoneNumber": re.sub(r"[^\d+]", "", address.phone),
        "emailAddress": address.email,
    }
    location: dict[str, Any] = {
        "streetLines": [line for line in (address.line1, address.line2) if line],
        "city": address.city,
        "postalCode": address.postal_code,
        "countryCode": address.country_code.upper(),
    }
    if address.region:
        location["stateOrProvinceCode"] = address.region
    return {"contact": {k: v for k, v in contact.items() if v}, "address": location}


def _package(parcel: Parcel, sequence: int, reference: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "sequenceNumber": sequence,
        "weight": {"units": "KG", "value": _kilograms(parcel.weight_grams)},
    }
    if parcel.length_cm and parcel.width_cm and parcel.height_cm:
        item["dimensions"] = {
            "length": _centimetres(parcel.length_cm),
            "width": _centimetres(parcel.width_cm),
            "height": _centimetres(parcel.height_cm),
            "units": "CM",
        }
    if parcel.reference or reference:
        item["customerReferences"] = [
            {"customerReferenceType": "CUSTOMER_REFERENCE", "value": (parcel.reference or reference)[:40]}
        ]
    return item


# ---------------------------------------------------------------------------------------------- tracking


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _status(*codes: str) -> TrackingStatus | None:
    for code in codes:
        if code in _EVENT_TYPES:
            return _EVENT_TYPES[code]
    return None


def _location(scan: Mapping[str, Any]) -> str:
    place = scan.get("scanLocation")
    if not isinstance(place, Mapping):
        return ""
    parts = [str(place.get(key) or "").strip() for key in ("city", "stateOrProvinceCode", "postalCode", "countryCode")]
    return ", ".join(part for part in parts if part)


def parse_track_result(number: str, result: Mapping[str, Any]) -> TrackingResult:
    events: list[TrackingEvent] = []
    scans = result.get("scanEvents")
    for scan in scans if isinstance(scans, list) else []:
        if not isinstance(scan, Mapping):
            continue
        moment = _moment(scan.get("date"))
        if moment is None:
            continue
        code = str(scan.get("eventType") or "")
        description = str(scan.get("eventDescription") or scan.get("derivedStatus") or "").strip()
        scanned = _status(code, str(scan.get("derivedStatusCode") or "")) or (
            TrackingStatus.IN_TRANSIT if description else TrackingStatus.UNKNOWN
        )
        events.append(TrackingEvent(scanned, moment, description, code=code, location=_location(scan)))
    events.sort(key=lambda event: event.occurred_at)  # FedEx lists the newest first
    latest = result.get("latestStatusDetail")
    latest = latest if isinstance(latest, Mapping) else {}
    status = _status(str(latest.get("code") or ""), str(latest.get("derivedCode") or "")) or (
        events[-1].status if events else TrackingStatus.UNKNOWN
    )
    estimated: date | None = None
    stamps = result.get("dateAndTimes")
    for stamp in stamps if isinstance(stamps, list) else []:
        if isinstance(stamp, Mapping) and stamp.get("type") == "ESTIMATED_DELIVERY":
            moment = _moment(stamp.get("dateTime"))
            estimated = moment.date() if moment else None
    info = result.get("trackingNumberInfo")
    tracked = str(info.get("trackingNumber") or number) if isinstance(info, Mapping) else number
    return TrackingResult(tracked, status, tuple(events), estimated)


# ----------------------------------------------------------------------------------------------- adapter


class FedExAdapter(CarrierAdapter):
    """FedEx labels, cancellations, tracking and rate quotes for one FedEx shipping account."""

    kind: ClassVar[str] = "fedex"
    label: ClassVar[str] = "FedEx"
    credential_names: ClassVar[frozenset[str]] = frozenset({"client_id", "client_secret"})
    options: ClassVar[frozenset[str]] = frozenset({"account_number", "pickup_type"})
    default_api_base_url: ClassVar[str] = "https://apis.fedex.com"
    label_formats: ClassVar[frozenset[LabelFormat]] = frozenset({LabelFormat.PDF, LabelFormat.ZPL})
    services: ClassVar[Mapping[str, str]] = {
        "FEDEX_GROUND": "FedEx Ground",
        "GROUND_HOME_DELIVERY": "FedEx Home Delivery",
        "FEDEX_EXPRESS_SAVER": "FedEx Express Saver",
        "FEDEX_2_DAY": "FedEx 2Day",
        "STANDARD_OVERNIGHT": "FedEx Standard Overnight",
        "PRIORITY_OVERNIGHT": "FedEx Priority Overnight",
        "FEDEX_INTERNATIONAL_PRIORITY": "FedEx International Priority",
    }
    idempotent_purchase: ClassVar[bool] = False

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
            carrier="FedEx", timeout=config.timeout, session=session, sleep=sleep, rng=rng, max_retries=max_retries
        )
        self._token = TokenCache(clock=clock)

    @property
    def account_number(self) -> str:
        return self.config.options.get("account_number", "")

    # ------------------------------------------------------------------------------------------ auth

    def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.config.credentials.get("client_id", ""),
            "client_secret": self.config.credentials.get("client_secret", ""),
        }
        response = self.http.request("POST", f"{self.base_url}/oauth/token", safe=True, data=form)
        payload = json_body(response)
        if response.status_code in (400, 401, 403):
            errors, _codes = _fedex_errors(payload)
            raise CarrierAuthFailed(f"FedEx refused the API key (HTTP {response.status_code}): {_describe(errors, '')}")
        token = payload.get("access_token") if isinstance(payload, Mapping) else None
        if response.status_code != 200 or not isinstance(token, str) or not token:
            raise CarrierUnavailable(f"FedEx token endpoint answered HTTP {response.status_code} without a token")
        try:
            lifetime = float(payload.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        return token, lifetime

    def _call(
        self, method: str, path: str, *, safe: bool, body: Any, transaction_id: str = ""
    ) -> tuple[requests.Response, Any]:
        """A JSON call with the bearer token; a 401 (FedEx ran nothing) gets a fresh token and one more try."""
        for attempt in range(2):
            try:
                token = self._token.get(self._fetch_token)
            except CarrierUnavailable as exc:  # before the call itself: it surely never reached FedEx
                raise CarrierUnavailable(str(exc), retry_after=exc.retry_after, request_sent=False) from exc
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "X-locale": "en_US",
            }
            if transaction_id:
                headers["x-customer-transaction-id"] = transaction_id
            response = self.http.request(method, f"{self.base_url}{path}", safe=safe, headers=headers, json=body)
            if response.status_code != 401:
                return response, json_body(response)
            self._token.clear()
            if attempt:
                break
        raise CarrierAuthFailed(f"FedEx refused a fresh access token for {method} {path} (HTTP 401)")

    def _refusal(self, response: requests.Response, payload: Any, what: str) -> CarrierError:
        errors, _codes = _fedex_errors(payload)
        status = response.status_code
        if status == 403:
            return CarrierAuthFailed(f"FedEx refused {what} for this account (HTTP 403): {_describe(errors, '')}")
        if 400 <= status < 500:
            return CarrierRejected(
                f"FedEx refused {what}: {_describe(errors, f'HTTP {status}')}",
                errors=errors or [FieldError("", f"HTTP {status}")],
            )
        return CarrierUnavailable(f"FedEx answered {what} with HTTP {status}")

    # --------------------------------------------------------------------------------------- buying

    def _ship_body(self, shipment: ShipmentRequest) -> dict[str, Any]:
        image_type, stock = IMAGE_TYPES[self.config.label_format]
        ship_date = shipment.ship_date or datetime.now(UTC).date()
        requested: dict[str, Any] = {
            "shipDatestamp": ship_date.isoformat(),
            "pickupType": self.config.options.get("pickup_type", "USE_SCHEDULED_PICKUP"),
            "serviceType": shipment.service,
            "packagingType": "YOUR_PACKAGING",
            "shipper": _party(shipment.ship_from),
            "recipients": [_party(shipment.ship_to)],
            "shippingChargesPayment": {"paymentType": "SENDER"},
            "labelSpecification": {"imageType": image_type, "labelStockType": stock},
            "totalPackageCount": len(shipment.parcels),
            "requestedPackageLineItems": [
                _package(parcel, index + 1, shipment.reference) for index, parcel in enumerate(shipment.parcels)
            ],
        }
        return {
            "labelResponseOptions": "LABEL",
            "accountNumber": {"value": self.account_number},
            "requestedShipment": requested,
        }

    def buy_label(self, shipment: ShipmentRequest, *, idempotency_key: str) -> Label:
        """Book the shipment with one Ship call, sent once (FedEx takes no idempotency key): an answer that
        does not come is CarrierUnavailable with an unknown outcome. The key goes along as FedEx's customer
        transaction id, so that support can find the call."""
        if not shipment.parcels:
            raise CarrierRejected("a shipment needs a parcel", errors=[FieldError("parcels", "no parcels")])
        label_format = self.config.label_format
        if label_format not in self.label_formats:
            raise CarrierRejected(f"FedEx prints no {label_format} labels")
        response, payload = self._call(
            "POST", "/ship/v1/shipments", safe=False, body=self._ship_body(shipment), transaction_id=idempotency_key
        )
        if response.status_code != 200:
            raise self._refusal(response, payload, "the shipment")
        output = payload.get("output") if isinstance(payload, Mapping) else None
        shipments = output.get("transactionShipments") if isinstance(output, Mapping) else None
        if not isinstance(shipments, list) or not shipments or not isinstance(shipments[0], Mapping):
            raise CarrierError("FedEx booked a shipment but sent no transactionShipments", retryable=False)
        booked: Mapping[str, Any] = shipments[0]
        pieces = [p for p in booked.get("pieceResponses") or [] if isinstance(p, Mapping)]
        documents = [self._document(piece, label_format) for piece in pieces]
        numbers = tuple(document.tracking_number for document in documents)
        if len(numbers) != len(shipment.parcels):
            raise CarrierError(
                f"FedEx answered {len(numbers)} pieces for {len(shipment.parcels)} parcels", retryable=False
            )
        cost, currency = self._charge(booked, pieces)
        return Label(
            tracking_numbers=numbers,
            documents=tuple(documents),
            shipment_id=str(booked.get("masterTrackingNumber") or numbers[0]),
            cost=cost,
            currency=currency,
            service=str(booked.get("serviceType") or shipment.service),
            raw={**booked, "pieceResponses": [self._without_label(piece) for piece in pieces]},
        )

    @staticmethod
    def _document(piece: Mapping[str, Any], label_format: LabelFormat) -> LabelDocument:
        number = str(piece.get("trackingNumber") or "")
        documents = piece.get("packageDocuments")
        for document in documents if isinstance(documents, list) else []:
            if isinstance(document, Mapping) and document.get("encodedLabel"):
                try:
                    content = base64.b64decode(str(document["encodedLabel"]), validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise CarrierError(f"FedEx sent a label for {number} that is not base64", retryable=False) from exc
                return LabelDocument(number, content, label_format)
        raise CarrierError(f"FedEx sent no label for piece {number}", retryable=False)

    @staticmethod
    def _without_label(piece: Mapping[str, Any]) -> dict[str, Any]:
        """The piece as FedEx described it, minus the label bytes (stored once, as the document)."""
        documents = piece.get("packageDocuments")
        kept = [
            {k: v for k, v in d.items() if k != "encodedLabel"} if isinstance(d, Mapping) else d
            for d in (documents if isinstance(documents, list) else [])
        ]
        return {**piece, "packageDocuments": kept}

    @staticmethod
    def _charge(booked: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]]) -> tuple[Decimal | None, str]:
        detail = booked.get("completedShipmentDetail")
        rating = detail.get("shipmentRating") if isinstance(detail, Mapping) else None
        rates = rating.get("shipmentRateDetails") if isinstance(rating, Mapping) else None
        if isinstance(rates, list) and rates and isinstance(rates[0], Mapping):
            total = _decimal(rates[0].get("totalNetCharge"))
            if total is not None:
                return total, str(rates[0].get("currency") or "")
        charges = [_decimal(piece.get("netChargeAmount")) for piece in pieces]
        if charges and all(charge is not None for charge in charges):
            return sum(filter(None, charges), Decimal(0)), str(pieces[0].get("currency") or "")
        return None, ""

    # -------------------------------------------------------------------------------------- voiding

    def void_label(self, label: Label) -> None:
        """Cancel the whole shipment (every piece) by its master tracking number."""
        body = {
            "accountNumber": {"value": self.account_number},
            "emailShipment": False,
            "trackingNumber": label.shipment_id or label.tracking_numbers[0],
            "deletionControl": "DELETE_ALL_PACKAGES",
        }
        response, payload = self._call("PUT", "/ship/v1/shipments/cancel", safe=True, body=body)
        if response.status_code != 200:
            raise self._refusal(response, payload, "the cancellation")
        output = payload.get("output") if isinstance(payload, Mapping) else None
        if not isinstance(output, Mapping) or output.get("cancelledShipment") is not True:
            message = output.get("message") or output.get("successMessage") if isinstance(output, Mapping) else ""
            raise CarrierRejected(f"FedEx did not cancel shipment {body['trackingNumber']}: {message or 'no reason'}")

    # ------------------------------------------------------------------------------------- tracking

    def track(self, tracking_numbers: Sequence[str]) -> list[TrackingResult]:
        numbers = [number for number in dict.fromkeys(tracking_numbers) if number]
        results: list[TrackingResult] = []
        for start in range(0, len(numbers), TRACK_BATCH):
            batch = numbers[start : start + TRACK_BATCH]
            body = {
                "includeDetailedScans": True,
                "trackingInfo": [{"trackingNumberInfo": {"trackingNumber": number}} for number in batch],
            }
            response, payload = self._call("POST", "/track/v1/trackingnumbers", safe=True, body=body)
            if response.status_code != 200:
                _errors, codes = _fedex_errors(payload)
                if codes and codes <= NOT_FOUND_CODES:
                    continue
                raise self._refusal(response, payload, "the tracking request")
            output = payload.get("output") if isinstance(payload, Mapping) else None
            complete = output.get("completeTrackResults") if isinstance(output, Mapping) else None
            for entry in complete if isinstance(complete, list) else []:
                if not isinstance(entry, Mapping):
                    continue
                track_results = entry.get("trackResults")
                for result in track_results if isinstance(track_results, list) else []:
                    if isinstance(result, Mapping) and not result.get("error"):
                        results.append(parse_track_result(str(entry.get("trackingNumber") or ""), result))
                        break
        return results

    # ---------------------------------------------------------------------------------------- rates

    def rates(self, shipment: ShipmentRequest) -> list[Rate]:
        """Account rates of every service FedEx offers between the two addresses for these parcels."""
        requested: dict[str, Any] = {
            "shipper": {"address": _party(shipment.ship_from)["address"]},
            "recipient": {"address": _party(shipment.ship_to)["address"]},
            "pickupType": self.config.options.get("pickup_type", "USE_SCHEDULED_PICKUP"),
            "rateRequestType": ["ACCOUNT", "LIST"],
            "shipDateStamp": (shipment.ship_date or datetime.now(UTC).date()).isoformat(),
            "totalPackageCount": len(shipment.parcels),
            "requestedPackageLineItems": [
                _package(parcel, index + 1, "") for index, parcel in enumerate(shipment.parcels)
            ],
        }
        body = {
            "accountNumber": {"value": self.account_number},
            "rateRequestControlParameters": {"returnTransitTimes": True},
            "requestedShipment": requested,
        }
        response, payload = self._call("POST", "/rate/v1/rates/quotes", safe=True, body=body)
        if response.status_code != 200:
            raise self._refusal(response, payload, "the rate request")
        output = payload.get("output") if isinstance(payload, Mapping) else None
        details = output.get("rateReplyDetails") if isinstance(output, Mapping) else None
        quotes: list[Rate] = []
        for detail in details if isinstance(details, list) else []:
            if isinstance(detail, Mapping):
                quote = self._quote(detail)
                if quote is not None:
                    quotes.append(quote)
        return quotes

    @staticmethod
    def _quote(detail: Mapping[str, Any]) -> Rate | None:
        rated = [r for r in detail.get("ratedShipmentDetails") or [] if isinstance(r, Mapping)]
        chosen = next((r for r in rated if r.get("rateType") == "ACCOUNT"), rated[0] if rated else None)
        if chosen is None:
            return None
        amount = _decimal(chosen.get("totalNetCharge"))
        rate_detail = chosen.get("shipmentRateDetail")
        currency = str(
            chosen.get("currency") or (rate_detail.get("currency") if isinstance(rate_detail, Mapping) else "") or ""
        )
        if amount is None or not currency:
            return None
        operational = detail.get("operationalDetail")
        transit = operational.get("transitTime") if isinstance(operational, Mapping) else None
        return Rate(
            service=str(detail.get("serviceType") or ""),
            amount=amount,
            currency=currency,
            description=str(detail.get("serviceName") or ""),
            delivery_days=TRANSIT_DAYS.get(str(transit or "")),
        )
