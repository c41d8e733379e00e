"""A MyGLS emulator (GLS CZ/SK/HU/RO/SI/HR/RS "ParcelService" REST JSON) on 127.0.0.1.

Wire format as the MyGLS API documents it and its public clients use it (see carriers/gls.py):

- `POST /ParcelService.svc/json/{Method}`, JSON in and out (WCF): every body carries `Username` and
  `Password`, the SHA-512 digest of the password as a JSON array of byte values. Bad credentials are not an
  HTTP error: HTTP 200 with the method's error list holding `{"ErrorCode": -1, "ErrorDescription":
  "Unauthorized."}`. A body that is not JSON is a 400 HTML page; an unknown method a 404 HTML page.
- `PrintLabels` `{ClientNumberList, ParcelList: [Parcel], TypeOfPrinter, PrintPosition, ShowPrintDialog,
  WebshopEngine}` -> `{Labels: [bytes], PrintLabelsInfoList: [{ClientReference, ParcelId, ParcelNumber,
  ParcelNumberWithCheckdigit}], PrintLabelsErrorList: [{ErrorCode, ErrorDescription, ClientReferenceList,
  ParcelIdList}]}`. A Parcel with `Count` n gets n parcel numbers (one per `ParcelPropertyList` entry).
  TypeOfPrinter A4_2x2, A4_4x1, Connect, Thermo, ShipItThermoPdf print PDF; ThermoZPL, ThermoZPL_300DPI,
  ShipItThermoZpl print ZPL.
- `GetPrintedLabels` `{ParcelIdList, TypeOfPrinter, ...}` -> `{Labels, PrintDataInfoList,
  GetPrintedLabelsErrorList}`: the labels of parcels printed before.
- `DeleteLabels` `{ParcelIdList}` -> `{SuccessfullyDeletedList: [{ClientReference, ParcelId, ParcelNumber}],
  DeleteLabelsErrorList}`; only a parcel still in status PRINTED (not yet scanned by GLS) can be deleted
  (ErrorCode 6 otherwise).
- `GetParcelList` `{PrintDateFrom, PrintDateTo, PickupDateFrom, PickupDateTo}` ("/Date(ms)/") ->
  `{PrintDataInfoList: [{Parcel, ParcelId, ParcelNumber, ParcelNumberWithCheckdigit, DepotNumber}],
  GetParcelListErrors}`: parcels not deleted.
- `GetParcelStatuses` `{ParcelNumber, ReturnPOD, LanguageIsoCode}` -> `{ParcelNumber, ClientReference,
  DeliveryCountryCode, DeliveryZipCode, ParcelStatusList: [{StatusCode, StatusDate: "/Date(ms+0100)/",
  StatusDescription, StatusInfo, DepotCity, DepotNumber}] (newest first), GetParcelStatusErrors, POD}`.

Error codes: -1 (Unauthorized), 6 (not PRINTED), 8 (COD amount), 14/27 (user/client not authorized), 32
(ClientReference), 34 (TypeOfPrinter) and 48 (COD currency) follow what public clients name; the others are
the emulator's own, with descriptions in GLS's style ("Invalid DeliveryAddress ZipCode ...").

`advance_tracking(parcel_number, status)` scans a parcel through GLS's network; `shipments_booked` counts the
Parcel entries GLS printed (a shipment of any number of parcels). `labels_as_base64` answers Labels as base64
text; `labels_in_print_answer=False` makes PrintLabels answer without them.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
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

SERVICE = "/ParcelService.svc/json/"
LOCAL_TZ = ZoneInfo("Europe/Prague")
MAX_WEIGHT_KG = Decimal("40")
PDF_PRINTERS = {"A4_2x2", "A4_4x1", "Connect", "Thermo", "ShipItThermoPdf"}
ZPL_PRINTERS = {"ThermoZPL": 203, "ThermoZPL_300DPI": 300, "ShipItThermoZpl": 203}
ZIP_PATTERNS = {
    "CZ": r"[1-7]\d{4}",
    "SK": r"[089]\d{4}",
    "HU": r"[1-9]\d{3}",
    "RO": r"\d{6}",
    "SI": r"[1-9]\d{3}",
    "HR": r"[1-5]\d{4}",
    "RS": r"\d{5}",
    "DE": r"\d{5}",
    "AT": r"[1-9]\d{3}",
    "PL": r"\d{2}-?\d{3}",
}
COD_CURRENCIES = {"CZ": "CZK", "SK": "EUR", "HU": "HUF", "RO": "RON", "SI": "EUR", "HR": "EUR", "RS": "RSD"}
ERROR_LISTS = {
    "PrintLabels": "PrintLabelsErrorList",
    "GetPrintedLabels": "GetPrintedLabelsErrorList",
    "DeleteLabels": "DeleteLabelsErrorList",
    "GetParcelList": "GetParcelListErrors",
    "GetParcelStatuses": "GetParcelStatusErrors",
}

# (StatusCode, description, depot city, depot number)
_HANDED_OVER = ("1", "The parcel was handed over to GLS.", "Praha", "CZ0701")
_LEFT_CENTER = ("2", "The parcel has left the parcel center.", "Praha", "CZ0701")
_REACHED_CENTER = ("3", "The parcel has reached the parcel center.", "Ostrava", "CZ0712")
HOME_ROUTE = (
    _HANDED_OVER,
    _LEFT_CENTER,
    _REACHED_CENTER,
    ("4", "The parcel is expected to be delivered during the day.", "Ostrava", "CZ0712"),
    ("5", "The parcel has been delivered.", "Ostrava", "CZ0712"),
)
PICKUP_ROUTE = (
    _HANDED_OVER,
    _LEFT_CENTER,
    _REACHED_CENTER,
    ("54", "The parcel has been delivered to the ParcelShop / ParcelLocker.", "Ostrava", "CZ0712"),
    ("58", "The parcel has been collected from the ParcelShop / ParcelLocker.", "Ostrava", "CZ0712"),
)
TARGETS = {
    TrackingStatus.IN_TRANSIT: "3",
    TrackingStatus.OUT_FOR_DELIVERY: "4",
    TrackingStatus.AVAILABLE_FOR_PICKUP: "54",
    TrackingStatus.DELIVERED: ("5", "58"),
}
SIDE_EVENTS = {
    TrackingStatus.EXCEPTION: (
        "14",
        "The consignee was absent: the parcel could not be delivered.",
        "Ostrava",
        "CZ0712",
    ),
    TrackingStatus.RETURNED: ("23", "The parcel has been returned to the sender.", "Praha", "CZ0701"),
}


def password_bytes(password: str) -> list[int]:
    """How MyGLS wants a password: its SHA-512 digest as a list of byte values."""
    return list(hashlib.sha512(password.encode("utf-8")).digest())


def wcf_date(moment: datetime) -> str:
    """A WCF JSON date with the local offset: "/Date(1709280000000+0100)/"."""
    local = moment.astimezone(LOCAL_TZ)
    offset = local.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"/Date({int(moment.timestamp() * 1000)}{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d})/"


def parse_wcf_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/", value.strip())
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check_digit(number: int) -> int:
    digits = [int(d) for d in str(number)]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def _error(code: int, description: str, references: list[str] | None = None, ids: list[int] | None = None) -> dict:
    return {
        "ErrorCode": code,
        "ErrorDescription": description,
        "ClientReferenceList": references or [],
        "ParcelIdList": ids or [],
    }


@dataclass
class _Parcel:
    parcel_id: int
    number: int
    client_reference: str
    parcel: dict[str, Any]
    printed_at: datetime
    pickup_point: bool
    deleted: bool = False
    events: list[tuple[str, str, datetime, str, str]] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        return {
            "ClientReference": self.client_reference,
            "ParcelId": self.parcel_id,
            "ParcelNumber": self.number,
            "ParcelNumberWithCheckdigit": self.number * 10 + _check_digit(self.number),
        }


class GlsEmulator(CarrierEmulator):
    """One MyGLS account (one client number) in one country."""

    name = "gls"

    def __init__(
        self,
        *,
        username: str = "oms-api@test.mygls.cz",
        password: str | None = None,
        client_number: int = 100012345,
        parcel_shops: tuple[str, ...] = ("CZ-11203-PARCELSHOP", "CZ-70200-LOCKER"),
        latency: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(latency=latency)
        self.username = username
        self.password = password or secrets.token_urlsafe(12)
        self.client_number = client_number
        self.parcel_shops = set(parcel_shops)
        self.clock = clock
        self.labels_as_base64 = False  # Labels as base64 text instead of WCF's byte array
        self.labels_in_print_answer = True  # False: PrintLabels answers without Labels (GetPrintedLabels has them)
        self._parcel_ids = itertools.count(205_100_000)
        self._numbers = itertools.count(52_000_000_000 + int(time.time()) % 1_000_000 * 100)
        self._parcels: dict[int, _Parcel] = {}  # by ParcelId
        self._by_number: dict[int, _Parcel] = {}
        self._booked = 0
        self._state = threading.RLock()

    @property
    def shipments_booked(self) -> int:
        with self._state:
            return self._booked

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC).replace(microsecond=0)

    def parcel(self, parcel_number: int | str) -> dict[str, Any]:
        """What the emulator holds of a parcel: the Parcel GLS accepted, its ParcelId, whether deleted."""
        with self._state:
            stored = self._by_number[int(parcel_number)]
            return {"parcel": stored.parcel, "parcel_id": stored.parcel_id, "deleted": stored.deleted}

    def advance_tracking(self, parcel_number: str, status: TrackingStatus) -> None:
        """Scan the parcel through GLS's network up to `status` (the scans in between included)."""
        with self._state:
            parcel = self._by_number[int(parcel_number)]
            if status in SIDE_EVENTS:
                self._scan(parcel, SIDE_EVENTS[status])
                return
            if status not in TARGETS:
                raise ValueError(f"the GLS emulator cannot make a parcel {status}")
            route = PICKUP_ROUTE if parcel.pickup_point else HOME_ROUTE
            targets = TARGETS[status]
            wanted = {targets} if isinstance(targets, str) else set(targets)
            if not wanted & {code for code, *_ in route}:
                raise ValueError(f"a {'ParcelShop' if parcel.pickup_point else 'home'} parcel never becomes {status}")
            done = {code for code, *_ in parcel.events}
            for step in route:
                if step[0] not in done:
                    self._scan(parcel, step)
                if step[0] in wanted:
                    return

    def _scan(self, parcel: _Parcel, step: tuple[str, str, str, str]) -> None:
        moment = self._now()
        if parcel.events:
            moment = max(moment, parcel.events[-1][2] + timedelta(minutes=11))
        code, description, city, depot = step
        parcel.events.append((code, description, moment, city, depot))

    # ----------------------------------------------------------------------------------------- dispatch

    def dispatch(self, request: RecordedRequest) -> Reply:
        if request.method != "POST" or not request.path.startswith(SERVICE):
            return Reply.text(404, "<html><body><h1>Endpoint not found.</h1></body></html>")
        method = request.path[len(SERVICE) :]
        handler = {
            "PrintLabels": self._print_labels,
            "GetPrintedLabels": self._get_printed_labels,
            "DeleteLabels": self._delete_labels,
            "GetParcelList": self._get_parcel_list,
            "GetParcelStatuses": self._get_parcel_statuses,
        }.get(method)
        if handler is None:
            return Reply.text(404, "<html><body><h1>Endpoint not found.</h1></body></html>")
        body = request.json
        if not isinstance(body, dict):
            return Reply.text(400, "<html><body><h1>Request Error</h1><p>The request body is invalid.</p></body>")
        denied = self._auth_error(body)
        if denied is not None:
            return Reply.json(200, {ERROR_LISTS[method]: [denied]})
        with self._state:
            return Reply.json(200, handler(body))

    def _auth_error(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if body.get("Username") != self.username or body.get("Password") != password_bytes(self.password):
            return _error(-1, "Unauthorized.")
        clients = body.get("ClientNumberList")
        if clients is not None and (not isinstance(clients, list) or self.client_number not in clients):
            return _error(27, f"Not authorized for client number(s) {clients}.")
        return None

    def _labels(self, parcels: list[_Parcel], printer: str) -> list[int] | str:
        pages = []
        for p in parcels:
            delivery = p.parcel.get("DeliveryAddress") or {}
            pages.append(
                [
                    "GLS",
                    f"{p.number}",
                    str(delivery.get("Name", "")),
                    f"{delivery.get('ZipCode', '')} {delivery.get('City', '')} {delivery.get('CountryIsoCode', '')}",
                    f"Ref {p.client_reference}",
                ]
            )
        document = zpl_document(pages, dpi=ZPL_PRINTERS[printer]) if printer in ZPL_PRINTERS else pdf_document(pages)
        return base64.b64encode(document).decode() if self.labels_as_base64 else list(document)

    def _print_labels(self, body: dict[str, Any]) -> dict[str, Any]:
        printer = str(body.get("TypeOfPrinter") or "A4_2x2")
        if printer not in PDF_PRINTERS and printer not in ZPL_PRINTERS:
            return {
                "Labels": None,
                "PrintLabelsInfoList": [],
                "PrintLabelsErrorList": [_error(34, f"Invalid TypeOfPrinter: {printer}.")],
            }
        errors: list[dict[str, Any]] = []
        printed: list[_Parcel] = []
        for parcel in body.get("ParcelList") or []:
            reference = str(parcel.get("ClientReference") or "") if isinstance(parcel, dict) else ""
            problems = self._validate(parcel) if isinstance(parcel, dict) else [(1, "Parcel is not an object.")]
            if problems:
                errors.extend(_error(code, text, [reference]) for code, text in problems)
                continue
            printed.extend(self._book(parcel))
        if not body.get("ParcelList"):
            errors.append(_error(1, "ParcelList is empty."))
        return {
            "Labels": self._labels(printed, printer) if printed and self.labels_in_print_answer else None,
            "PrintLabelsInfoList": [p.info() for p in printed],
            "PrintLabelsErrorList": errors,
        }

    def _book(self, parcel: dict[str, Any]) -> list[_Parcel]:
        services = {s.get("Code") for s in parcel.get("ServiceList") or [] if isinstance(s, dict)}
        count = int(parcel.get("Count") or 1)
        now = self._now()
        booked = []
        for _ in range(count):
            stored = _Parcel(
                parcel_id=next(self._parcel_ids),
                number=next(self._numbers),
                client_reference=str(parcel.get("ClientReference") or ""),
                parcel=parcel,
                printed_at=now,
                pickup_point="PSD" in services,
            )
            self._parcels[stored.parcel_id] = stored
            self._by_number[stored.number] = stored
            booked.append(stored)
        self._booked += 1
        return booked

    def _validate(self, parcel: dict[str, Any]) -> list[tuple[int, str]]:
        problems: list[tuple[int, str]] = []
        if parcel.get("ClientNumber") != self.client_number:
            problems.append((27, f"Not authorized for client number {parcel.get('ClientNumber')}."))
        if not str(parcel.get("ClientReference") or "").strip():
            problems.append((32, "ClientReference is missing."))
        count = parcel.get("Count")
        if not isinstance(count, int) or not 1 <= count <= 99:
            problems.append((10, f"Count must be between 1 and 99, not {count}."))
        for side in ("PickupAddress", "DeliveryAddress"):
            problems.extend(self._address_problems(side, parcel.get(side)))
        properties = parcel.get("ParcelPropertyList") or []
        if isinstance(count, int) and properties and len(properties) != count:
            problems.append((11, f"ParcelPropertyList has {len(properties)} entries for Count {count}."))
        for index, item in enumerate(properties, start=1):
            weight = _decimal(item.get("Weight")) if isinstance(item, dict) else None
            if weight is not None and weight > MAX_WEIGHT_KG:
                problems.append((9, f"Weight of parcel {index} is {weight} kg: the maximum is {MAX_WEIGHT_KG} kg."))
            elif weight is not None and weight <= 0:
                problems.append((9, f"Weight of parcel {index} must be positive."))
        cod = _decimal(parcel.get("CODAmount"))
        if cod is not None and cod < 0:
            problems.append((8, "CODAmount is invalid."))
        if cod:
            country = str((parcel.get("DeliveryAddress") or {}).get("CountryIsoCode") or "").upper()
            allowed = COD_CURRENCIES.get(country)
            if parcel.get("CODCurrency") and allowed and parcel.get("CODCurrency") != allowed:
                problems.append((48, f"CODCurrency {parcel.get('CODCurrency')} is not allowed to {country}."))
        for service in parcel.get("ServiceList") or []:
            if isinstance(service, dict) and service.get("Code") == "PSD":
                shop = str((service.get("PSDParameter") or {}).get("StringValue") or "")
                if shop not in self.parcel_shops:
                    problems.append((16, f"PSD: ParcelShop {shop!r} does not exist."))
                delivery = parcel.get("DeliveryAddress") or {}
                if not (delivery.get("ContactEmail") or delivery.get("ContactPhone")):
                    problems.append((17, "PSD: the DeliveryAddress needs ContactEmail or ContactPhone."))
        return problems

    @staticmethod
    def _address_problems(side: str, address: Any) -> list[tuple[int, str]]:
        if not isinstance(address, dict):
            return [(5, f"{side} is required.")]
        problems = [
            (5, f"{side} {key} is required.")
            for key in ("Name", "Street", "City", "ZipCode", "CountryIsoCode")
            if not str(address.get(key) or "").strip()
        ]
        country = str(address.get("CountryIsoCode") or "").upper()
        zip_code = str(address.get("ZipCode") or "").replace(" ", "")
        pattern = ZIP_PATTERNS.get(country)
        if country and pattern is None:
            problems.append((3, f"Invalid {side} CountryIsoCode: {country}."))
        elif zip_code and pattern and not re.fullmatch(pattern, zip_code):
            problems.append((4, f"Invalid {side} ZipCode: {address.get('ZipCode')} ({country})."))
        return problems

    def _get_printed_labels(self, body: dict[str, Any]) -> dict[str, Any]:
        printer = str(body.get("TypeOfPrinter") or "A4_2x2")
        found, errors = [], []
        for raw in body.get("ParcelIdList") or []:
            stored = self._parcels.get(raw) if isinstance(raw, int) else None
            if stored is None or stored.deleted:
                errors.append(_error(5, f"Parcel with ID {raw} not found.", ids=[raw] if isinstance(raw, int) else []))
            else:
                found.append(stored)
        if printer not in PDF_PRINTERS and printer not in ZPL_PRINTERS:
            errors.append(_error(34, f"Invalid TypeOfPrinter: {printer}."))
            found = []
        return {
            "Labels": self._labels(found, printer) if found else None,
            "PrintDataInfoList": [{**p.info(), "Parcel": p.parcel} for p in found],
            "GetPrintedLabelsErrorList": errors,
        }

    def _delete_labels(self, body: dict[str, Any]) -> dict[str, Any]:
        deleted, errors = [], []
        for raw in body.get("ParcelIdList") or []:
            stored = self._parcels.get(raw) if isinstance(raw, int) else None
            if stored is None:
                errors.append(_error(5, f"Parcel with ID {raw} not found.", ids=[raw] if isinstance(raw, int) else []))
            elif stored.deleted or stored.events:
                errors.append(
                    _error(6, "Parcel with this ID has different status than PRINTED", [stored.client_reference], [raw])
                )
            else:
                stored.deleted = True
                deleted.append(
                    {"ClientReference": stored.client_reference, "ParcelId": raw, "ParcelNumber": stored.number}
                )
        return {"SuccessfullyDeletedList": deleted, "DeleteLabelsErrorList": errors}

    def _get_parcel_list(self, body: dict[str, Any]) -> dict[str, Any]:
        print_from = parse_wcf_date(body.get("PrintDateFrom"))
        print_to = parse_wcf_date(body.get("PrintDateTo"))
        pickup_from = parse_wcf_date(body.get("PickupDateFrom"))
        pickup_to = parse_wcf_date(body.get("PickupDateTo"))
        if not ((print_from and print_to) or (pickup_from and pickup_to)):
            return {"PrintDataInfoList": [], "GetParcelListErrors": [_error(12, "A date range is required.")]}
        found = []
        for stored in self._parcels.values():
            if stored.deleted:
                continue
            if print_from and print_to and not print_from <= stored.printed_at <= print_to:
                continue
            pickup = parse_wcf_date(stored.parcel.get("PickupDate")) or stored.printed_at
            if pickup_from and pickup_to and not pickup_from <= pickup <= pickup_to:
                continue
            found.append({**stored.info(), "Parcel": stored.parcel, "DepotNumber": "CZ0701"})
        return {"PrintDataInfoList": found, "GetParcelListErrors": []}

    def _get_parcel_statuses(self, body: dict[str, Any]) -> dict[str, Any]:
        number = body.get("ParcelNumber")
        stored = self._by_number.get(number) if isinstance(number, int) else None
        if stored is None or stored.deleted:
            return {
                "ParcelNumber": 0,
                "ParcelStatusList": [],
                "GetParcelStatusErrors": [_error(13, f"Parcel number {number} not found.")],
                "POD": None,
            }
        delivery = stored.parcel.get("DeliveryAddress") or {}
        statuses = [
            {
                "StatusCode": code,
                "StatusDate": wcf_date(moment),
                "StatusDescription": description,
                "StatusInfo": "",
                "DepotCity": city,
                "DepotNumber": depot,
            }
            for code, description, moment, city, depot in reversed(stored.events)
        ]
        return {
            "ParcelNumber": stored.number,
            "ClientReference": stored.client_reference,
            "DeliveryCountryCode": delivery.get("CountryIsoCode"),
            "DeliveryZipCode": delivery.get("ZipCode"),
            "ParcelStatusList": statuses,
            "GetParcelStatusErrors": [],
            "POD": None,
        }


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
