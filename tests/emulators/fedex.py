"""A FedEx REST API emulator on 127.0.0.1: OAuth, Ship (create, cancel), Track and Rate.

Built from FedEx's documented shapes (developer.fedex.com; karrio's FedEx fixtures):

- `POST /oauth/token`, form `grant_type=client_credentials&client_id&client_secret` -> `{access_token,
  token_type: "bearer", expires_in: 3599, scope: "CXS"}`; other calls need `Authorization: Bearer`.
- `POST /ship/v1/shipments` `{labelResponseOptions: "LABEL", accountNumber: {value}, requestedShipment: {shipper,
  recipients, serviceType, labelSpecification: {imageType: PDF|ZPLII|PNG}, requestedPackageLineItems}}` ->
  `output.transactionShipments[0]` with `masterTrackingNumber` and one `pieceResponses[i]` per package
  (`trackingNumber`, `packageDocuments[0].encodedLabel` base64) and `completedShipmentDetail.shipmentRating`.
  There is no idempotency key: every accepted call books a shipment (`shipments_booked`).
- `PUT /ship/v1/shipments/cancel` `{accountNumber, trackingNumber, deletionControl}` ->
  `output.cancelledShipment`; a cancelled shipment tracks as "CA" (cancelled) and cannot be cancelled again.
- `POST /track/v1/trackingnumbers` (at most 30 numbers) -> `output.completeTrackResults[].trackResults[]` with
  `latestStatusDetail`, `dateAndTimes` and `scanEvents` (newest first, local times with offsets); an unknown
  number gets a trackResult with `error.code` TRACKING.TRACKINGNUMBER.NOTFOUND.
- `POST /rate/v1/rates/quotes` -> `output.rateReplyDetails[]` with `ratedShipmentDetails[].totalNetCharge`.

Errors are FedEx's envelope `{"transactionId", "errors": [{"code", "message", "parameterList": [{"key",
"value"}]}]}`. The emulator refuses US ZIP codes starting "000" (SHIP.RECIPIENT.POSTALCITY.MISMATCH, a code
FedEx uses), packages over 68 kg and unknown service types; the codes of those two, and the parameterList
entries it adds (the JSON path, the package's sequenceNumber), are illustrative. `advance` moves tracking on.
"""

from __future__ import annotations

import base64
import itertools
import random
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

LOCAL = timezone(timedelta(hours=-5))
MAX_KG = Decimal(68)
TRACK_LIMIT = 30
SERVICES: Mapping[str, tuple[str, Decimal, Decimal, str]] = {  # name, base, per kg, transit time
    "FEDEX_GROUND": ("FedEx Ground", Decimal("9.80"), Decimal("1.15"), "THREE_DAYS"),
    "GROUND_HOME_DELIVERY": ("FedEx Home Delivery", Decimal("10.40"), Decimal("1.20"), "THREE_DAYS"),
    "FEDEX_EXPRESS_SAVER": ("FedEx Express Saver", Decimal("24.10"), Decimal("2.05"), "THREE_DAYS"),
    "FEDEX_2_DAY": ("FedEx 2Day", Decimal("29.60"), Decimal("2.60"), "TWO_DAYS"),
    "STANDARD_OVERNIGHT": ("FedEx Standard Overnight", Decimal("58.20"), Decimal("4.10"), "ONE_DAY"),
    "PRIORITY_OVERNIGHT": ("FedEx Priority Overnight", Decimal("71.45"), Decimal("4.90"), "ONE_DAY"),
}
LADDER: tuple[tuple[TrackingStatus, str, str, str, str], ...] = (  # status, eventType, text, derived, place
    (TrackingStatus.PRE_TRANSIT, "OC", "Shipment information sent to FedEx", "IN", "origin"),
    (TrackingStatus.IN_TRANSIT, "PU", "Picked up", "PU", "origin"),
    (TrackingStatus.IN_TRANSIT, "AR", "Arrived at FedEx location", "IT", "hub"),
    (TrackingStatus.IN_TRANSIT, "DP", "Departed FedEx location", "IT", "hub"),
    (TrackingStatus.OUT_FOR_DELIVERY, "OD", "On FedEx vehicle for delivery", "OD", "destination"),
    (TrackingStatus.DELIVERED, "DL", "Delivered", "DL", "destination"),
)
OFF_LADDER: Mapping[TrackingStatus, tuple[str, str, str, str]] = {
    TrackingStatus.EXCEPTION: ("DE", "Customer not available or business closed", "DE", "destination"),
    TrackingStatus.AVAILABLE_FOR_PICKUP: ("HP", "Ready for recipient pickup", "IT", "destination"),
    TrackingStatus.RETURNED: ("RS", "Return to shipper", "RS", "destination"),
    TrackingStatus.CANCELLED: ("CA", "Shipment cancelled by sender", "CA", "origin"),
}
HUB = {"city": "MEMPHIS", "stateOrProvinceCode": "TN", "postalCode": "38118", "countryCode": "US"}

_serial = itertools.count(random.Random().randrange(10**10, 10**11))


def tracking_number() -> str:
    """A fresh 12-digit FedEx-like tracking number, unique within this process."""
    return f"7{next(_serial) % 10**11:011d}"


def errors_body(*errors: dict[str, Any]) -> dict[str, Any]:
    return {"transactionId": str(uuid.uuid4()), "errors": list(errors)}


def error(code: str, message: str, **parameters: str) -> dict[str, Any]:
    item: dict[str, Any] = {"code": code, "message": message}
    if parameters:
        item["parameterList"] = [{"key": key, "value": value} for key, value in parameters.items()]
    return item


@dataclass
class Scan:
    status: TrackingStatus
    code: str
    text: str
    derived: str
    place: str
    at: datetime  # UTC


@dataclass
class Piece:
    tracking_number: str
    image: bytes
    net_charge: Decimal
    scans: list[Scan] = field(default_factory=list)


@dataclass
class EmulatedShipment:
    master_tracking_number: str
    request: dict[str, Any]
    pieces: list[Piece]
    created_at: datetime
    customer_transaction_id: str = ""
    cancelled: bool = False


class FedExEmulator(CarrierEmulator):
    """One FedEx account with one API project's client id and secret."""

    name = "fedex"

    def __init__(
        self,
        *,
        client_id: str = "l7fedexclientid",
        client_secret: str = "fedex-client-secret",
        account_number: str = "740561073",
        token_lifetime: float = 3599.0,
        clock: Callable[[], float] = time.monotonic,
        latency: float = 0.0,
    ) -> None:
        super().__init__(latency=latency)
        self.client_id = client_id
        self.client_secret = client_secret
        self.account_number = account_number
        self.token_lifetime = token_lifetime
        self._clock = clock
        self._tokens: dict[str, float] = {}
        self._shipments: dict[str, EmulatedShipment] = {}  # by master tracking number
        self._pieces: dict[str, tuple[EmulatedShipment, Piece]] = {}  # by piece tracking number

    # ------------------------------------------------------------------------------------ test helpers

    @property
    def shipments_booked(self) -> int:
        with self._lock:
            return len(self._shipments)

    @property
    def shipments(self) -> list[EmulatedShipment]:
        with self._lock:
            return list(self._shipments.values())

    def shipment(self, tracking_number: str) -> EmulatedShipment:
        with self._lock:
            return self._pieces[tracking_number][0]

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def advance(self, number: str, status: TrackingStatus) -> None:
        """Add the scans that bring one piece to `status` (the ones in between included), 3 hours apart."""
        with self._lock:
            _shipment, piece = self._pieces[number]
            reached = max(i for i, step in enumerate(LADDER) if any(s.code == step[1] for s in piece.scans))
            steps: list[tuple[TrackingStatus, str, str, str, str]] = []
            if status in OFF_LADDER:
                if reached < 3 and status is not TrackingStatus.CANCELLED:
                    steps.extend(LADDER[reached + 1 : 4])
                steps.append((status, *OFF_LADDER[status]))
            else:
                target = max(i for i, step in enumerate(LADDER) if step[0] is status)
                steps.extend(LADDER[reached + 1 : target + 1])
            for step in steps:
                self._scan(piece, *step)

    @staticmethod
    def _scan(piece: Piece, status: TrackingStatus, code: str, text: str, derived: str, place: str) -> None:
        at = piece.scans[-1].at + timedelta(hours=3)
        piece.scans.append(Scan(status, code, text, derived, place, at))

    # ---------------------------------------------------------------------------------------- dispatch

    def dispatch(self, request: RecordedRequest) -> Reply:
        method, path = request.method, request.path
        if (method, path) == ("POST", "/oauth/token"):
            return self._token(request)
        if not self._authorized(request):
            return Reply.json(
                401,
                errors_body(
                    error("NOT.AUTHORIZED.ERROR", "Access token expired. Please modify your request and try again.")
                ),
            )
        body = request.json if isinstance(request.json, dict) else None
        if body is None:
            return Reply.json(400, errors_body(error("INVALID.INPUT.EXCEPTION", "Invalid field value in the input")))
        if (method, path) == ("POST", "/ship/v1/shipments"):
            return self._ship(body, request.headers.get("x-customer-transaction-id", ""))
        if (method, path) == ("PUT", "/ship/v1/shipments/cancel"):
            return self._cancel(body)
        if (method, path) == ("POST", "/track/v1/trackingnumbers"):
            return self._track(body)
        if (method, path) == ("POST", "/rate/v1/rates/quotes"):
            return self._rate(body)
        return Reply.json(
            404,
            errors_body(
                error(
                    "NOT.FOUND.ERROR",
                    "The resource you requested is no longer available. Please modify your request and try again.",
                )
            ),
        )

    def _token(self, request: RecordedRequest) -> Reply:
        form = {key: values[0] for key, values in parse_qs(request.text).items()}
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return Reply.json(415, errors_body(error("UNSUPPORTED.MEDIA.TYPE", "Unsupported media type")))
        if form.get("grant_type") != "client_credentials":
            return Reply.json(
                400,
                errors_body(
                    error(
                        "BAD.REQUEST.ERROR",
                        "Missing or duplicate parameters. Please modify your request and try again.",
                    )
                ),
            )
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Reply.json(
                401,
                errors_body(
                    error(
                        "NOT.AUTHORIZED.ERROR",
                        "The given client credentials were not valid. Please modify your request and try again.",
                    )
                ),
            )
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens[token] = self._clock() + self.token_lifetime
        return Reply.json(
            200, {"access_token": token, "token_type": "bearer", "expires_in": int(self.token_lifetime), "scope": "CXS"}
        )

    def _authorized(self, request: RecordedRequest) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            expires = self._tokens.get(token)
            return scheme.lower() == "bearer" and expires is not None and self._clock() < expires

    def _account_matches(self, body: Mapping[str, Any]) -> bool:
        account = body.get("accountNumber")
        return isinstance(account, dict) and str(account.get("value") or "") == self.account_number

    # -------------------------------------------------------------------------------------------- ship

    def _ship_errors(self, shipment: Mapping[str, Any]) -> list[dict[str, Any]]:
        problems: list[dict[str, Any]] = []
        if shipment.get("serviceType") not in SERVICES:
            problems.append(
                error(
                    "SERVICETYPE.NOT.SUPPORTED",
                    "The service type is not supported for this shipment.",
                    key="requestedShipment.serviceType",
                )
            )
        image = (shipment.get("labelSpecification") or {}).get("imageType")
        if image not in ("PDF", "ZPLII", "PNG"):
            problems.append(error("LABELSPECIFICATION.IMAGETYPE.INVALID", "The label image type is invalid."))
        for role, party in (
            ("SHIPPER", shipment.get("shipper")),
            ("RECIPIENT", (shipment.get("recipients") or [None])[0]),
        ):
            address = party.get("address") if isinstance(party, dict) else None
            if not isinstance(address, dict):
                problems.append(
                    error(
                        "INVALID.INPUT.EXCEPTION",
                        "Invalid field value in the input",
                        key=f"requestedShipment.{role.lower()}.address",
                    )
                )
                continue
            if not address.get("streetLines") or not address.get("city"):
                path = "recipients[0]" if role == "RECIPIENT" else "shipper"
                problems.append(
                    error(
                        "INVALID.INPUT.EXCEPTION",
                        "Invalid field value in the input",
                        key=f"requestedShipment.{path}.address.streetLines",
                    )
                )
            postal = str(address.get("postalCode") or "")
            if address.get("countryCode") == "US" and (len(postal) < 5 or postal.startswith("000")):
                problems.append(error(f"SHIP.{role}.POSTALCITY.MISMATCH", f"{role.title()} Postal-City Mismatch."))
        items = shipment.get("requestedPackageLineItems")
        if not isinstance(items, list) or not items:
            problems.append(error("PACKAGE.LINEITEMS.REQUIRED", "At least one package is required."))
            return problems
        for index, item in enumerate(items):
            weight = (item.get("weight") or {}) if isinstance(item, dict) else {}
            kilograms = Decimal(str(weight.get("value") or 0))
            if weight.get("units") == "LB":
                kilograms *= Decimal("0.45359237")
            if kilograms <= 0 or kilograms > MAX_KG:
                problems.append(
                    error(
                        "PACKAGE.WEIGHT.EXCEEDED",
                        f"Package {index + 1} weighs more than the service allows ({MAX_KG} KG).",
                        sequenceNumber=str(index + 1),
                    )
                )
        return problems

    def _ship(self, body: Mapping[str, Any], transaction_id: str) -> Reply:
        if not self._account_matches(body):
            return Reply.json(
                403,
                errors_body(
                    error(
                        "FORBIDDEN.ERROR",
                        "We could not authorize your credentials. Please check your permissions and try again.",
                    )
                ),
            )
        shipment = body.get("requestedShipment")
        if not isinstance(shipment, dict):
            return Reply.json(
                400,
                errors_body(
                    error("INVALID.INPUT.EXCEPTION", "Invalid field value in the input", key="requestedShipment")
                ),
            )
        problems = self._ship_errors(shipment)
        if problems:
            return Reply.json(400, errors_body(*problems))
        booked = self._book(dict(shipment), transaction_id)
        return Reply.json(
            200,
            {
                "transactionId": str(uuid.uuid4()),
                "customerTransactionId": transaction_id,
                "output": {"transactionShipments": [self._transaction_shipment(booked, body)], "alerts": []},
            },
        )

    def _book(self, shipment: dict[str, Any], transaction_id: str) -> EmulatedShipment:
        service = SERVICES[shipment["serviceType"]]
        to = shipment["recipients"][0]["address"]
        image_type = shipment["labelSpecification"]["imageType"]
        created = datetime.now(UTC).replace(microsecond=0)
        pieces = []
        for item in shipment["requestedPackageLineItems"]:
            number = tracking_number()
            kilograms = Decimal(str(item["weight"]["value"]))
            charge = (service[1] + service[2] * kilograms).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            lines = [
                service[0].upper(),
                f"TRK# {number}",
                " ".join(to.get("streetLines", [])),
                f"{to.get('city')} {to.get('stateOrProvinceCode', '')} {to.get('postalCode')}",
            ]
            image = zpl_document([lines]) if image_type == "ZPLII" else pdf_document([lines])
            piece = Piece(number, image, charge)
            piece.scans.append(Scan(*LADDER[0], created))
            pieces.append(piece)
        booked = EmulatedShipment(pieces[0].tracking_number, shipment, pieces, created, transaction_id)
        with self._lock:
            self._shipments[booked.master_tracking_number] = booked
            for piece in pieces:
                self._pieces[piece.tracking_number] = (booked, piece)
        return booked

    @staticmethod
    def _transaction_shipment(booked: EmulatedShipment, body: Mapping[str, Any]) -> dict[str, Any]:
        shipment = booked.request
        doc_type = "ZPLII" if shipment["labelSpecification"]["imageType"] == "ZPLII" else "PDF"
        total = sum((piece.net_charge for piece in booked.pieces), Decimal(0))
        return {
            "serviceType": shipment["serviceType"],
            "shipDatestamp": shipment.get("shipDatestamp"),
            "serviceCategory": "GROUND" if "GROUND" in shipment["serviceType"] else "EXPRESS",
            "serviceName": SERVICES[shipment["serviceType"]][0],
            "masterTrackingNumber": booked.master_tracking_number,
            "pieceResponses": [
                {
                    "masterTrackingNumber": booked.master_tracking_number,
                    "trackingNumber": piece.tracking_number,
                    "deliveryDatestamp": (booked.created_at + timedelta(days=3)).date().isoformat(),
                    "trackingIdType": "FEDEX",
                    "netChargeAmount": float(piece.net_charge),
                    "currency": "USD",
                    "customerReferences": item.get("customerReferences", []),
                    "packageDocuments": [
                        {
                            "contentType": "LABEL",
                            "copiesToPrint": 1,
                            "encodedLabel": base64.b64encode(piece.image).decode(),
                            "docType": doc_type,
                        }
                    ],
                }
                for piece, item in zip(booked.pieces, shipment["requestedPackageLineItems"], strict=True)
            ],
            "completedShipmentDetail": {
                "usDomestic": True,
                "carrierCode": "FDXG" if "GROUND" in shipment["serviceType"] else "FDXE",
                "shipmentRating": {
                    "actualRateType": "PAYOR_ACCOUNT_SHIPMENT",
                    "shipmentRateDetails": [
                        {"rateType": "PAYOR_ACCOUNT_SHIPMENT", "totalNetCharge": float(total), "currency": "USD"}
                    ],
                },
            },
            "shipmentDocuments": [],
            "alerts": [],
        }

    def _cancel(self, body: Mapping[str, Any]) -> Reply:
        if not self._account_matches(body):
            return Reply.json(403, errors_body(error("FORBIDDEN.ERROR", "We could not authorize your credentials.")))
        number = str(body.get("trackingNumber") or "")
        with self._lock:
            found = self._pieces.get(number)
            if found is None:
                return Reply.json(
                    404, errors_body(error("TRACKING.TRACKINGNUMBER.NOTFOUND", "Tracking number cannot be found."))
                )
            booked = found[0]
            if booked.cancelled:
                return Reply.json(
                    400, errors_body(error("SHIPMENT.ALREADY.CANCELLED", "The shipment has already been cancelled."))
                )
            if any(len(piece.scans) > 1 for piece in booked.pieces):
                return Reply.json(
                    400,
                    errors_body(
                        error("SHIPMENT.CANCEL.NOTALLOWED", "The shipment has been tendered and cannot be cancelled.")
                    ),
                )
            booked.cancelled = True
            for piece in booked.pieces:
                self._scan(piece, TrackingStatus.CANCELLED, *OFF_LADDER[TrackingStatus.CANCELLED])
        return Reply.json(
            200,
            {
                "transactionId": str(uuid.uuid4()),
                "output": {"cancelledShipment": True, "cancelledHistory": True, "successMessage": "Success"},
            },
        )

    # ------------------------------------------------------------------------------------------- track

    def _place(self, booked: EmulatedShipment, place: str) -> dict[str, Any]:
        if place == "hub":
            return dict(HUB)
        party = booked.request["recipients"][0] if place == "destination" else booked.request["shipper"]
        address = party["address"]
        return {key: address.get(key, "") for key in ("city", "stateOrProvinceCode", "postalCode", "countryCode")}

    def _track(self, body: Mapping[str, Any]) -> Reply:
        infos = body.get("trackingInfo")
        if not isinstance(infos, list) or not infos:
            return Reply.json(
                400, errors_body(error("TRACKING.TRACKINGNUMBER.EMPTY", "Please provide tracking number."))
            )
        if len(infos) > TRACK_LIMIT:
            return Reply.json(
                400,
                errors_body(
                    error(
                        "TRACKING.TRACKINGNUMBER.LIMIT.EXCEEDED", f"Up to {TRACK_LIMIT} tracking numbers per request."
                    )
                ),
            )
        complete = []
        for info in infos:
            number = str(((info or {}).get("trackingNumberInfo") or {}).get("trackingNumber") or "")
            complete.append({"trackingNumber": number, "trackResults": [self._track_result(number)]})
        return Reply.json(200, {"transactionId": str(uuid.uuid4()), "output": {"completeTrackResults": complete}})

    def _track_result(self, number: str) -> dict[str, Any]:
        with self._lock:
            found = self._pieces.get(number)
            if found is None:
                return {
                    "trackingNumberInfo": {"trackingNumber": number, "trackingNumberUniqueId": "", "carrierCode": ""},
                    "error": {
                        "code": "TRACKING.TRACKINGNUMBER.NOTFOUND",
                        "message": "Tracking number cannot be found. Please correct the tracking number and try again.",
                    },
                }
            booked, piece = found
            scans = list(piece.scans)
        latest = scans[-1]
        return {
            "trackingNumberInfo": {
                "trackingNumber": number,
                "trackingNumberUniqueId": f"12024~{number}~FDEG",
                "carrierCode": "FDXG",
            },
            "latestStatusDetail": {
                "code": latest.code,
                "derivedCode": latest.derived,
                "statusByLocale": latest.text,
                "description": latest.text,
                "scanLocation": self._place(booked, latest.place),
            },
            "dateAndTimes": [
                {
                    "type": "ESTIMATED_DELIVERY",
                    "dateTime": (booked.created_at + timedelta(days=3)).astimezone(LOCAL).isoformat(),
                },
                {"type": "SHIP", "dateTime": booked.created_at.astimezone(LOCAL).isoformat()},
            ],
            "serviceDetail": {
                "type": booked.request["serviceType"],
                "description": SERVICES[booked.request["serviceType"]][0],
            },
            "scanEvents": [
                {
                    "date": scan.at.astimezone(LOCAL).isoformat(),
                    "eventType": scan.code,
                    "eventDescription": scan.text,
                    "exceptionCode": "",
                    "exceptionDescription": "",
                    "scanLocation": {"streetLines": [""], **self._place(booked, scan.place), "residential": False},
                    "derivedStatusCode": scan.derived,
                    "derivedStatus": scan.text,
                }
                for scan in reversed(scans)
            ],
        }

    # -------------------------------------------------------------------------------------------- rate

    def _rate(self, body: Mapping[str, Any]) -> Reply:
        if not self._account_matches(body):
            return Reply.json(403, errors_body(error("FORBIDDEN.ERROR", "We could not authorize your credentials.")))
        shipment = body.get("requestedShipment") or {}
        recipient = ((shipment.get("recipient") or {}).get("address")) or {}
        postal = str(recipient.get("postalCode") or "")
        if recipient.get("countryCode") == "US" and (len(postal) < 5 or postal.startswith("000")):
            return Reply.json(
                400, errors_body(error("RATE.RECIPIENT.POSTALCITY.MISMATCH", "Recipient Postal-City Mismatch."))
            )
        kilograms = sum(
            (
                Decimal(str((item.get("weight") or {}).get("value") or 0))
                for item in shipment.get("requestedPackageLineItems") or []
            ),
            Decimal(0),
        )
        count = len(shipment.get("requestedPackageLineItems") or [])
        details = []
        for service, (name, base, per_kg, transit) in SERVICES.items():
            total = (base * count + per_kg * kilograms).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            details.append(
                {
                    "serviceType": service,
                    "serviceName": name,
                    "packagingType": "YOUR_PACKAGING",
                    "ratedShipmentDetails": [
                        {
                            "rateType": "LIST",
                            "ratedWeightMethod": "ACTUAL",
                            "totalBaseCharge": float(total * 2),
                            "totalNetCharge": float(total * 2),
                            "currency": "USD",
                            "shipmentRateDetail": {"currency": "USD"},
                        },
                        {
                            "rateType": "ACCOUNT",
                            "ratedWeightMethod": "ACTUAL",
                            "totalBaseCharge": float(total),
                            "totalNetCharge": float(total),
                            "currency": "USD",
                            "shipmentRateDetail": {"currency": "USD"},
                        },
                    ],
                    "operationalDetail": {"transitTime": transit},
                }
            )
        return Reply.json(200, {"transactionId": str(uuid.uuid4()), "output": {"rateReplyDetails": details}})
