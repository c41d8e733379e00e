"""GLS through MyGLS (GLS CZ, SK, HU, RO, SI, HR, RS): the "ParcelService" REST JSON API.

Base URL (`CarrierConfig.api_base_url`) is the country's host: `https://api.mygls.cz` (`.sk`, `.hu`, `.ro`,
`.si`, `.hr`, `.rs`); the test hosts are `https://api.test.mygls.{cz|sk|...}`. Calls are
`POST {base}/ParcelService.svc/json/{Method}`; there is no session: every body carries `Username` and
`Password`, the SHA-512 digest of the password as a JSON array of byte values.

Documented (MyGLS API for system integration) and seen in public clients:

- `PrintLabels` books and prints in one call: `{ClientNumberList, WebshopEngine, ParcelList: [{ClientNumber,
  ClientReference, Count, CODAmount, CODReference, CODCurrency, Content, PickupDate, PickupAddress,
  DeliveryAddress{Name, Street, HouseNumber, HouseNumberInfo, City, ZipCode, CountryIsoCode, ContactName,
  ContactPhone, ContactEmail}, ServiceList[{Code, PSDParameter{StringValue}, FDSParameter{Value}}],
  ParcelPropertyList[{Content, PackageType, Height, Length, Width, Weight (kg)}]}], TypeOfPrinter,
  PrintPosition, ShowPrintDialog}` -> `{Labels, PrintLabelsInfoList[{ClientReference, ParcelId, ParcelNumber}],
  PrintLabelsErrorList[{ErrorCode, ErrorDescription, ClientReferenceList, ParcelIdList}]}`. One Parcel with
  `Count` n is one shipment of n parcels, each with its own ParcelId and ParcelNumber (the tracking number).
- `Labels` is a byte array (WCF serialises byte[] as a JSON list of numbers; base64 text is read too).
- `TypeOfPrinter`: A4_2x2, A4_4x1, Connect, Thermo, ShipItThermoPdf (PDF); ThermoZPL, ThermoZPL_300DPI,
  ShipItThermoZpl (ZPL).
- Bad credentials are HTTP 200 with ErrorCode -1 "Unauthorized." in the method's error list (after a few,
  MyGLS locks the user for a while: the adapter never retries a refused login). 14 and 27 are "not
  authorized" too.
- `DeleteLabels {ParcelIdList}` cancels parcels still PRINTED (ErrorCode 6 once GLS has scanned them);
  `GetPrintedLabels {ParcelIdList, TypeOfPrinter}` prints again; `GetParcelList {PrintDateFrom, PrintDateTo}`
  lists the account's parcels (dates as WCF "/Date(ms)/"); `GetParcelStatuses {ParcelNumber, ReturnPOD,
  LanguageIsoCode}` answers `ParcelStatusList[{StatusCode, StatusDate, StatusDescription, DepotCity, ...}]`.
- Status codes (MyGLS appendix): 51/52/83-85 data entered; 1 handed over to GLS; 2, 3, 6-9, ... in transit;
  4/32 out for delivery; 54-56/97 in a ParcelShop or locker; 5/58/59/92 delivered; 11-20/33/36/38/39/88/89
  not delivered; 17/34/35/57/68 refused or not collected (going back); 23/40 returned; 87/90/91 cancelled.
- Services: PSD (ParcelShop / ParcelLocker delivery, StringValue = the shop's id), FDS (FlexDelivery by
  e-mail), COD by `CODAmount` > 0.

Assumed (the emulator in tests/emulators/gls.py speaks exactly this):

- Field errors have no field path: the adapter maps the error code where public clients agree on it (8 COD
  amount, 48 COD currency, 32 ClientReference, 34 printer) and otherwise reads the description ("Invalid
  DeliveryAddress ZipCode ...", "Weight of parcel 2 ..."), DeliveryAddress meaning ship_to and PickupAddress
  ship_from.
- `find_label`: the adapter puts a short digest of the idempotency key into ClientReference
  ("ORD-1042~1a2b3c4d"), so a purchase whose answer was lost is found again with GetParcelList (printed in the
  last 14 days) and its labels fetched with GetPrintedLabels.
- `Label.shipment_id` holds the shipment's ParcelIds ("205100001,205100002"): DeleteLabels needs them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
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
    ShipmentRequest,
    TrackingEvent,
    TrackingResult,
    TrackingStatus,
)

__all__ = ["GlsAdapter", "status_for_code"]

SERVICE_PATH = "/ParcelService.svc/json/"
WEBSHOP_ENGINE = "oms"
FIND_WINDOW = timedelta(days=14)
PDF_PRINTERS = frozenset({"A4_2x2", "A4_4x1", "Connect", "Thermo", "ShipItThermoPdf"})
ZPL_PRINTERS = frozenset({"ThermoZPL", "ThermoZPL_300DPI", "ShipItThermoZpl"})
AUTH_CODES = frozenset({-1, 14, 27})
REFERENCE_TAG = "~"

_STATUS_GROUPS: tuple[tuple[TrackingStatus | None, tuple[int, ...]], ...] = (
    (TrackingStatus.PRE_TRANSIT, (51, 52, 83, 84, 85)),
    (TrackingStatus.IN_TRANSIT, (1, 2, 3, 6, 7, 8, 9, 13, 21, 22, 24, 25, 26, 27, 29, 30, 37, 41, 46, 47, 53, 80, 86)),
    (TrackingStatus.IN_TRANSIT, (401, 402, 403, 404, 420)),  # locker problems: sent on elsewhere
    (TrackingStatus.IN_TRANSIT, tuple(range(60, 77))),  # customs
    (TrackingStatus.OUT_FOR_DELIVERY, (4, 32)),
    (TrackingStatus.AVAILABLE_FOR_PICKUP, (54, 55, 56, 97)),
    (TrackingStatus.DELIVERED, (5, 58, 59, 92)),
    (TrackingStatus.EXCEPTION, (11, 12, 14, 15, 16, 18, 19, 20, 28, 31, 33, 36, 38, 39, 42, 43, 44, 88, 89)),
    (TrackingStatus.RETURNED, (17, 23, 34, 35, 40, 57, 68)),
    (TrackingStatus.CANCELLED, (87, 90, 91)),
    (None, (10, 93, 99)),  # informational: a control scan, a signature, an e-mail sent
)
_STATUS_BY_CODE: dict[int, TrackingStatus | None] = {code: status for status, codes in _STATUS_GROUPS for code in codes}

_CODE_FIELDS: dict[int, tuple[str, str]] = {
    8: ("cod_amount", "the cash-on-delivery amount is invalid"),
    48: ("currency", "GLS cannot collect cash on delivery in this currency for this country"),
    32: ("reference", "the order reference is missing or too long for GLS"),
    34: ("", "the GLS printer type in the carrier account settings is wrong"),
}
# (words in GLS's description, OMS address field, what to do)
_ADDRESS_WORDS: tuple[tuple[str, str, str], ...] = (
    ("zipcode", "postal_code", "GLS does not deliver to this postal code; check it"),
    ("countryisocode", "country_code", "GLS does not deliver to this country with this account"),
    ("contactemail", "email", "GLS needs an e-mail or a phone number to tell the customer"),
    ("contactphone", "phone", "the phone number is missing or invalid"),
    ("housenumber", "line1", "the house number is missing or invalid"),
    ("street", "line1", "the street is missing or invalid"),
    ("city", "city", "the town is missing or GLS does not know it"),
    ("name", "name", "the name is missing or too long"),
)


def status_for_code(code: str | int) -> TrackingStatus | None:
    """The OMS status of a MyGLS status code; None for informational codes, UNKNOWN for codes not listed."""
    try:
        number = int(str(code).strip())
    except ValueError:
        return TrackingStatus.UNKNOWN
    return _STATUS_BY_CODE.get(number, TrackingStatus.UNKNOWN)


def password_digest(password: str) -> list[int]:
    return list(hashlib.sha512(password.encode("utf-8")).digest())


def wcf_date(moment: datetime) -> str:
    return f"/Date({int(moment.timestamp() * 1000)})/"


def parse_wcf_date(value: Any) -> datetime | None:
    """ "/Date(1709280000000+0100)/" (epoch ms, UTC; the offset is the local one) or ISO 8601 -> aware datetime."""
    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"/Date\((-?\d+)([+-])?(\d{2})?(\d{2})?\)/", value.strip())
    if match:
        moment = datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
        if match.group(2) and match.group(3) is not None and match.group(4) is not None:
            offset = timedelta(hours=int(match.group(3)), minutes=int(match.group(4)))
            moment = moment.astimezone(timezone(offset if match.group(2) == "+" else -offset))
        return moment
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def split_street(line: str) -> tuple[str, str]:
    """ "Masarykova 27/3a" -> ("Masarykova", "27/3a"); a line without a trailing number stays whole."""
    match = re.fullmatch(r"\s*(.*?\S)[\s,]+(\d+[\w/\-]*)\s*", line)
    if match:
        return match.group(1), match.group(2)
    return line.strip(), ""


def _label_bytes(value: Any) -> bytes:
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value)
    if isinstance(value, str) and value:
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise CarrierError("GLS sent labels that are neither bytes nor base64", retryable=False) from exc
    return b""


def _kg(grams: int) -> float:
    return float((Decimal(grams) / 1000).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))


class GlsAdapter(CarrierAdapter):
    """MyGLS: labels (PDF or ZPL), cancellation, tracking and recovery by reference for one GLS client number."""

    kind: ClassVar[str] = "gls"
    label: ClassVar[str] = "GLS (MyGLS: CZ, SK, HU, RO, SI, HR, RS)"
    credential_names: ClassVar[frozenset[str]] = frozenset({"username", "password"})
    options: ClassVar[frozenset[str]] = frozenset({"client_number", "pdf_printer_type", "zpl_printer_type", "language"})
    default_api_base_url: ClassVar[str] = "https://api.mygls.cz"
    label_formats: ClassVar[frozenset[LabelFormat]] = frozenset({LabelFormat.PDF, LabelFormat.ZPL})
    services: ClassVar[Mapping[str, str]] = {
        "standard": "GLS Business Parcel (to the address)",
        "PSD": "GLS ParcelShop / ParcelLocker (to a pickup point)",
    }
    idempotent_purchase: ClassVar[bool] = False

    def __init__(
        self,
        config: CarrierConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(config)
        self._http = Transport(carrier="GLS", timeout=config.timeout, session=session, sleep=sleep, rng=rng)
        self._now = now

    # ------------------------------------------------------------------------------------ configuration

    @property
    def _base(self) -> str:
        return (self.config.api_base_url or self.default_api_base_url).rstrip("/")

    def _client_number(self) -> int:
        value = self.config.options.get("client_number", "").strip()
        if not value.isdigit():
            raise CarrierRejected(
                "the GLS account has no client number",
                errors=[FieldError("", "Set the GLS client number in the carrier account settings")],
            )
        return int(value)

    def _printer(self, label_format: LabelFormat) -> str:
        if label_format is LabelFormat.ZPL:
            printer = self.config.options.get("zpl_printer_type") or "ThermoZPL"
            allowed = ZPL_PRINTERS
        else:
            printer = self.config.options.get("pdf_printer_type") or "Thermo"
            allowed = PDF_PRINTERS
        if printer not in allowed:
            raise CarrierRejected(
                f"{printer!r} is not a GLS {label_format.value.upper()} printer type",
                errors=[FieldError("", f"Pick one of {', '.join(sorted(allowed))} as the GLS printer type")],
            )
        return printer

    @staticmethod
    def client_reference(reference: str, idempotency_key: str) -> str:
        """The ClientReference of one purchase attempt: the order reference and a digest of the attempt's key."""
        tag = hashlib.sha256(idempotency_key.encode()).hexdigest()[:8]
        return f"{reference.strip()[:31]}{REFERENCE_TAG}{tag}"

    # ------------------------------------------------------------------------------------------- calling

    def _call(self, method: str, body: Mapping[str, Any], *, safe: bool) -> dict[str, Any]:
        username = self.config.credentials.get("username", "")
        password = self.config.credentials.get("password", "")
        if not username or not password:
            raise CarrierAuthFailed("the GLS account has no username or password")
        payload = {"Username": username, "Password": password_digest(password), **body}
        response = self._http.request(
            "POST",
            f"{self._base}{SERVICE_PATH}{method}",
            safe=safe,
            json=payload,
            headers={"Accept": "application/json"},
        )
        if response.status_code in (401, 403):
            raise CarrierAuthFailed(f"GLS refused the call (HTTP {response.status_code})")
        if response.status_code >= 400:
            raise CarrierRejected(
                f"GLS refused {method} (HTTP {response.status_code}): {response.text.strip()[:200]}",
                errors=[
                    FieldError("", f"GLS refused the request (HTTP {response.status_code}); check the API address")
                ],
            )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            unknown = "; whether GLS acted on it is unknown" if not safe else ""
            raise CarrierUnavailable(f"GLS answered {method} with a body that is not a JSON object{unknown}")
        return answer

    @staticmethod
    def _check_auth(errors: Sequence[Mapping[str, Any]]) -> None:
        for error in errors:
            if _code(error) in AUTH_CODES:
                raise CarrierAuthFailed(
                    f"GLS refused the credentials: {error.get('ErrorDescription') or 'Unauthorized'}"
                )

    # ------------------------------------------------------------------------------------------- buying

    def buy_label(self, shipment: ShipmentRequest, *, idempotency_key: str) -> Label:
        label_format = self.config.label_format
        printer = self._printer(label_format)
        client_number = self._client_number()
        parcel = self._parcel(shipment, client_number, idempotency_key)
        answer = self._call(
            "PrintLabels",
            {
                "ClientNumberList": [client_number],
                "WebshopEngine": WEBSHOP_ENGINE,
                "ParcelList": [parcel],
                "TypeOfPrinter": printer,
                "PrintPosition": 1,
                "ShowPrintDialog": False,
            },
            safe=False,
        )
        errors = _dicts(answer.get("PrintLabelsErrorList"))
        self._check_auth(errors)
        infos = sorted(_dicts(answer.get("PrintLabelsInfoList")), key=lambda info: _int(info.get("ParcelId")))
        if errors:
            if infos:  # cannot happen with one Parcel per call; never leave printed parcels behind silently
                ids = ", ".join(str(info.get("ParcelId")) for info in infos)
                raise CarrierError(
                    f"GLS printed parcels {ids} but refused others; delete them in MyGLS", retryable=False
                )
            raise self._rejection(errors, "GLS refused the shipment")
        numbers = tuple(str(info.get("ParcelNumber") or "") for info in infos)
        if len(numbers) != len(shipment.parcels) or not all(numbers):
            raise CarrierError(
                f"GLS printed {len(numbers)} parcel numbers for {len(shipment.parcels)} parcels "
                f"(ParcelIds {[info.get('ParcelId') for info in infos]}); delete them in MyGLS and book again",
                retryable=False,
            )
        parcel_ids = [_int(info.get("ParcelId")) for info in infos]
        content = _label_bytes(answer.get("Labels")) or self._printed_labels(parcel_ids, printer)
        return Label(
            tracking_numbers=numbers,
            documents=(LabelDocument(numbers[0], content, label_format),),
            shipment_id=",".join(str(i) for i in parcel_ids),
            service=shipment.service,
            raw={"PrintLabelsInfoList": infos, "ClientReference": parcel["ClientReference"], "TypeOfPrinter": printer},
        )

    def _parcel(self, shipment: ShipmentRequest, client_number: int, idempotency_key: str) -> dict[str, Any]:
        services: list[dict[str, Any]] = []
        if shipment.service not in self.services:
            raise CarrierRejected(
                f"{shipment.service!r} is not a GLS service",
                errors=[FieldError("service", f"Pick a GLS service: {', '.join(self.services)}")],
            )
        if shipment.service == "PSD" or shipment.pickup_point_id:
            if not shipment.pickup_point_id:
                raise CarrierRejected(
                    "GLS ParcelShop delivery needs a pickup point",
                    errors=[FieldError("pickup_point_id", "Choose the GLS ParcelShop or ParcelLocker")],
                )
            services.append({"Code": "PSD", "PSDParameter": {"StringValue": shipment.pickup_point_id}})
        if shipment.ship_to.email:
            services.append({"Code": "FDS", "FDSParameter": {"Value": shipment.ship_to.email}})
        pickup_day = shipment.ship_date or self._now().date()
        parcel: dict[str, Any] = {
            "ClientNumber": client_number,
            "ClientReference": self.client_reference(shipment.reference, idempotency_key),
            "Count": len(shipment.parcels),
            "Content": (shipment.contents or shipment.reference)[:100],
            "PickupDate": wcf_date(datetime(pickup_day.year, pickup_day.month, pickup_day.day, tzinfo=UTC)),
            "PickupAddress": _address(shipment.ship_from),
            "DeliveryAddress": _address(shipment.ship_to),
            "ServiceList": services,
            "ParcelPropertyList": [
                {
                    "Content": (parcel.reference or shipment.contents or shipment.reference)[:40],
                    "PackageType": 1,
                    "Weight": _kg(parcel.weight_grams),
                    **{
                        key: math.ceil(size)
                        for key, size in (
                            ("Length", parcel.length_cm),
                            ("Width", parcel.width_cm),
                            ("Height", parcel.height_cm),
                        )
                        if size is not None
                    },
                }
                for parcel in shipment.parcels
            ],
        }
        if shipment.cod_amount is not None and shipment.cod_amount > 0:
            parcel["CODAmount"] = float(shipment.cod_amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
            parcel["CODReference"] = shipment.reference[:40]
            if shipment.currency:
                parcel["CODCurrency"] = shipment.currency.upper()
        return parcel

    def _printed_labels(self, parcel_ids: Sequence[int], printer: str) -> bytes:
        """The labels of parcels GLS printed before (a safe call: it books nothing)."""
        answer = self._call(
            "GetPrintedLabels",
            {"ParcelIdList": list(parcel_ids), "TypeOfPrinter": printer, "PrintPosition": 1, "ShowPrintDialog": False},
            safe=True,
        )
        errors = _dicts(answer.get("GetPrintedLabelsErrorList"))
        self._check_auth(errors)
        content = _label_bytes(answer.get("Labels"))
        if errors or not content:
            texts = "; ".join(str(e.get("ErrorDescription")) for e in errors) or "no labels in the answer"
            raise CarrierUnavailable(f"GLS could not print the labels of parcels {list(parcel_ids)}: {texts}")
        return content

    def _rejection(self, errors: Sequence[Mapping[str, Any]], summary: str) -> CarrierRejected:
        field_errors = [self._field_error(error) for error in errors]
        details = "; ".join(f"{_code(e)}: {e.get('ErrorDescription', '')}" for e in errors)
        return CarrierRejected(f"{summary}: {details}", errors=field_errors)

    @staticmethod
    def _field_error(error: Mapping[str, Any]) -> FieldError:
        code = _code(error)
        text = str(error.get("ErrorDescription") or f"error {code}")
        if code in _CODE_FIELDS:
            field, advice = _CODE_FIELDS[code]
            return FieldError(field, f"{advice} (GLS: {text})")
        words = re.sub(r"[^a-z0-9 ]", " ", text.lower())
        compact = words.replace(" ", "")
        if "weight" in words:
            match = re.search(r"parcel (\d+)", words)
            index = int(match.group(1)) - 1 if match else 0
            return FieldError(
                f"parcels[{max(index, 0)}].weight_grams", f"the parcel is too heavy for GLS (GLS: {text})"
            )
        side = "ship_from" if "pickupaddress" in compact else "ship_to"
        if "pickupaddress" in compact or "deliveryaddress" in compact:
            for word, field, advice in _ADDRESS_WORDS:
                if word in compact:
                    whose = "the sender's" if side == "ship_from" else "the customer's"
                    return FieldError(f"{side}.{field}", f"{whose} address: {advice} (GLS: {text})")
        if "psd" in words or "parcelshop" in compact:
            return FieldError("pickup_point_id", f"GLS does not know this ParcelShop or locker (GLS: {text})")
        if "cod" in words:
            return FieldError("cod_amount", f"the cash-on-delivery details are invalid (GLS: {text})")
        return FieldError("", f"GLS: {text}")

    # ------------------------------------------------------------------------------------------ finding

    def find_label(self, shipment: ShipmentRequest, *, idempotency_key: str) -> Label | None:
        """Look the attempt up by its ClientReference among the parcels printed in the last 14 days."""
        reference = self.client_reference(shipment.reference, idempotency_key)
        infos = [
            info
            for info in self._parcel_list()
            if str(info.get("ClientReference") or _mapping(info.get("Parcel")).get("ClientReference") or "")
            == reference
        ]
        if not infos:
            return None
        infos.sort(key=lambda info: _int(info.get("ParcelId")))
        label_format = self.config.label_format
        printer = self._printer(label_format)
        parcel_ids = [_int(info.get("ParcelId")) for info in infos]
        numbers = tuple(str(info.get("ParcelNumber")) for info in infos)
        content = self._printed_labels(parcel_ids, printer)
        return Label(
            tracking_numbers=numbers,
            documents=(LabelDocument(numbers[0], content, label_format),),
            shipment_id=",".join(str(i) for i in parcel_ids),
            service=shipment.service,
            raw={"PrintDataInfoList": [{k: v for k, v in i.items() if k != "Parcel"} for i in infos]},
        )

    def _parcel_list(self) -> list[dict[str, Any]]:
        now = self._now()
        answer = self._call(
            "GetParcelList",
            {
                "ClientNumberList": [self._client_number()],
                "PrintDateFrom": wcf_date(now - FIND_WINDOW),
                "PrintDateTo": wcf_date(now + timedelta(days=1)),
                "PickupDateFrom": None,
                "PickupDateTo": None,
            },
            safe=True,
        )
        errors = _dicts(answer.get("GetParcelListErrors"))
        self._check_auth(errors)
        if errors:
            texts = "; ".join(str(e.get("ErrorDescription")) for e in errors)
            raise CarrierUnavailable(f"GLS could not list the account's parcels: {texts}")
        return _dicts(answer.get("PrintDataInfoList"))

    # ------------------------------------------------------------------------------------------ voiding

    def void_label(self, label: Label) -> None:
        parcel_ids = [int(part) for part in label.shipment_id.split(",") if part.strip().isdigit()]
        if not parcel_ids:
            wanted = set(label.tracking_numbers)
            parcel_ids = [
                _int(info.get("ParcelId")) for info in self._parcel_list() if str(info.get("ParcelNumber")) in wanted
            ]
        if not parcel_ids:
            raise CarrierRejected(
                f"GLS has no printed parcel {', '.join(label.tracking_numbers)} to cancel",
                errors=[FieldError("", "GLS no longer lists these parcels as printed: nothing to cancel")],
            )
        answer = self._call("DeleteLabels", {"ParcelIdList": parcel_ids}, safe=False)
        errors = _dicts(answer.get("DeleteLabelsErrorList"))
        self._check_auth(errors)
        if errors:
            texts = "; ".join(str(e.get("ErrorDescription")) for e in errors)
            scanned = any(_code(e) == 6 for e in errors)
            advice = (
                "GLS will not cancel it: the parcel has already been scanned by GLS, or was cancelled before"
                if scanned
                else f"GLS will not cancel it: {texts}"
            )
            raise CarrierRejected(
                f"GLS refused to delete parcels {parcel_ids}: {texts}", errors=[FieldError("", advice)]
            )

    # ----------------------------------------------------------------------------------------- tracking

    def track(self, tracking_numbers: Sequence[str]) -> list[TrackingResult]:
        language = (self.config.options.get("language") or "EN").upper()
        results = []
        for number in dict.fromkeys(n.strip() for n in tracking_numbers if n.strip()):
            if not number.isdigit():
                continue  # GLS parcel numbers are digits
            answer = self._call(
                "GetParcelStatuses",
                {"ParcelNumber": int(number), "ReturnPOD": False, "LanguageIsoCode": language},
                safe=True,
            )
            errors = _dicts(answer.get("GetParcelStatusErrors"))
            self._check_auth(errors)
            if errors or _int(answer.get("ParcelNumber")) != int(number):
                continue  # a parcel GLS does not know
            results.append(self._tracking_result(number, answer.get("ParcelStatusList")))
        return results

    @staticmethod
    def _tracking_result(number: str, statuses: Any) -> TrackingResult:
        scans = []
        for item in _dicts(statuses):
            moment = parse_wcf_date(item.get("StatusDate"))
            if moment is not None:
                scans.append((moment, item))
        scans.sort(key=lambda pair: pair[0])
        current = TrackingStatus.PRE_TRANSIT
        events = []
        for moment, item in scans:
            code = str(item.get("StatusCode") or "").strip()
            mapped = status_for_code(code)
            if mapped is not None:
                current = mapped
            location = " ".join(str(item.get(k) or "") for k in ("DepotCity", "DepotNumber")).strip()
            events.append(
                TrackingEvent(
                    status=current,
                    occurred_at=moment,
                    description=str(item.get("StatusDescription") or code),
                    code=code,
                    location=location,
                )
            )
        return TrackingResult(tracking_number=number, status=current, events=tuple(events))


def _address(address: Address) -> dict[str, Any]:
    street, house_number = split_street(address.line1)
    return {
        "Name": (address.company or address.name)[:40],
        "Street": street,
        "HouseNumber": house_number,
        "HouseNumberInfo": address.line2[:40],
        "City": address.city,
        "ZipCode": address.postal_code.strip(),
        "CountryIsoCode": address.country_code.upper(),
        "ContactName": address.name[:40],
        "ContactPhone": address.phone,
        "ContactEmail": address.email,
    }


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _code(error: Mapping[str, Any]) -> int | None:
    try:
        return int(error.get("ErrorCode"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
