"""Packeta (Zásilkovna): the XML REST API, one packet per parcel, and the pickup point feed.

Base URL (`CarrierConfig.api_base_url`): `https://www.zasilkovna.cz`. Calls are `POST {base}/api/rest` with an
XML body: the root element names the method, its first child is `<apiPassword>` (32 hex characters, from the
client section). Every answer is HTTP 200: `<response><status>ok</status><result>...</result></response>` or
`<response><status>fault</status><fault>SomeFault</fault><string>...</string><detail>...</detail></response>`.

Documented, and used this way by public clients:

- `createPacket` with `<packetAttributes>`: number (the order), name, surname, company, email and/or phone,
  addressId (a pickup point's id, or for home delivery the id of the Packeta Home "carrier" of the country,
  e.g. 106 CZ, 131 SK), value, currency, cod, weight (kg), eshop (the sender label, when the account has
  several), street/houseNumber/city/zip for home delivery, size{length, width, height} (mm). It answers
  `<result><id/><barcode>Z…</barcode><barcodeText/></result>`. A refusal is `PacketAttributesFault` with
  `<detail><attributes><fault><name>zip</name><fault>message</fault></fault>...</attributes></detail>`.
  `packetAttributesValid` checks the same attributes without creating anything.
- `packetLabelPdf {packetId, format ("A6 on A6", "A6 on A4", "A7 on A4", "105x35mm on A4", ...), offset}`
  answers the PDF in base64; `packetLabelZpl {packetId, dpi (203|300)}` answers the ZPL as text inside
  `<result>`, XML-escaped (the parser unescapes it).
- `packetTracking {packetId}` answers `<record>`s (dateTime in Packeta's local time, no offset; statusCode,
  codeText, statusText, branchId, carrierId, ...); `cancelPacket {packetId}` cancels a packet Packeta does not
  have yet (`CancelNotAllowedFault` otherwise); a wrong password is `IncorrectApiPasswordFault`, an unknown
  packet `PacketIdFault`.
- Status codes: 1 received data, 2 arrived, 3 prepared for departure, 4 departed, 5 ready for pickup,
  6 handed to carrier, 7 delivered, 9 posted back, 10 returned, 11 cancelled, 12 collected, 14 customs,
  15 reverse packet arrived, 16 delivery attempt, 17/18 rejected by recipient, 19-22 on the way back,
  23-25 delivery attempts, 26/27 investigation, 28-30 redirected, 999 unknown.
- The pickup point feed: `GET {base}/api/v4/{apiKey}/branch.json`, the API key being the first 16 characters
  of the API password.

Assumed (the emulator in tests/emulators/packeta.py speaks exactly this):

- Packeta has no "out for delivery" code: status 6 ("handed to carrier") with the carrierId of a Packeta Home
  carrier means the courier took it out for delivery (Packeta Home couriers take packets on the delivery day);
  handed to any other carrier, it is still in transit.
- The v4 feed is `{"data": {"<id>": {id, name, place, street, city, zip, country (lower case), openingHours:
  {compactShort}, ...}}}` (a list under "data" is read too).
- Several parcels are several packets with the same `number`: the first carries the cash on delivery, the value
  is shared. With more than one, every packet is checked with `packetAttributesValid` before any is created, and
  if a later step fails the packets already created are cancelled (Packeta charges only packets it receives).

The tracking number is the packet id (10 digits); "Z 123 4567 890" barcodes are read too. Packeta takes no
idempotency key and cannot be searched by order number, so `find_label` is not supported.
"""

from __future__ import annotations

import base64
import binascii
import html
import random
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import defusedxml.ElementTree as SafeET
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
    PickupPoint,
    ShipmentRequest,
    TrackingEvent,
    TrackingResult,
    TrackingStatus,
)

__all__ = ["PacketaAdapter", "status_for_code"]

PACKETA_TZ = ZoneInfo("Europe/Prague")
DEFAULT_HOME_CARRIERS = {"CZ": "106", "SK": "131"}
DEFAULT_PDF_FORMAT = "A6 on A6"
CENT = Decimal("0.01")

_STATUS_BY_CODE: dict[int, TrackingStatus | None] = {
    1: TrackingStatus.PRE_TRANSIT,
    2: TrackingStatus.IN_TRANSIT,
    3: TrackingStatus.IN_TRANSIT,
    4: TrackingStatus.IN_TRANSIT,
    5: TrackingStatus.AVAILABLE_FOR_PICKUP,
    6: TrackingStatus.IN_TRANSIT,  # OUT_FOR_DELIVERY when the carrier is a Packeta Home courier
    7: TrackingStatus.DELIVERED,
    9: TrackingStatus.RETURNED,
    10: TrackingStatus.RETURNED,
    11: TrackingStatus.CANCELLED,
    12: TrackingStatus.IN_TRANSIT,
    14: TrackingStatus.IN_TRANSIT,
    15: TrackingStatus.RETURNED,
    16: TrackingStatus.EXCEPTION,
    17: TrackingStatus.EXCEPTION,
    18: TrackingStatus.EXCEPTION,
    19: TrackingStatus.RETURNED,
    20: TrackingStatus.RETURNED,
    21: TrackingStatus.RETURNED,
    22: TrackingStatus.RETURNED,
    23: TrackingStatus.EXCEPTION,
    24: TrackingStatus.EXCEPTION,
    25: TrackingStatus.EXCEPTION,
    26: TrackingStatus.EXCEPTION,
    27: None,  # investigation resolved: the status before it stands
    28: TrackingStatus.IN_TRANSIT,
    29: TrackingStatus.IN_TRANSIT,
    30: TrackingStatus.IN_TRANSIT,
    31: None,  # the courier's tracking code was added
    999: TrackingStatus.UNKNOWN,
}

# packetAttributes name -> (OMS field, what to do); "{i}" is the parcel's index.
_ATTRIBUTE_FIELDS: dict[str, tuple[str, str]] = {
    "number": ("reference", "the order number is missing or too long for Packeta"),
    "name": ("ship_to.name", "Packeta needs the recipient's first name"),
    "surname": ("ship_to.name", "Packeta needs the recipient's surname (first name and surname)"),
    "company": ("ship_to.company", "the company name is too long for Packeta"),
    "email": ("ship_to.email", "Packeta needs a valid e-mail (or a phone number) to tell the customer"),
    "phone": ("ship_to.phone", "the phone number is missing or invalid"),
    "value": ("value", "Packeta needs the value of the goods"),
    "currency": ("currency", "Packeta does not take this currency"),
    "cod": ("cod_amount", "the cash-on-delivery amount is invalid"),
    "weight": ("parcels[{i}].weight_grams", "the parcel's weight is missing or over the limit of its destination"),
    "size": ("parcels[{i}].length_cm", "the parcel's dimensions are invalid for Packeta"),
    "street": ("ship_to.line1", "the street is missing"),
    "houseNumber": ("ship_to.line1", "the house number is missing or invalid"),
    "city": ("ship_to.city", "the town is missing"),
    "zip": ("ship_to.postal_code", "Packeta does not deliver to this postal code; check it"),
    "province": ("ship_to.region", "the region is invalid"),
    "eshop": ("", "the Packeta sender label (eshop) in the carrier account settings is wrong"),
}


def status_for_code(code: str | int) -> TrackingStatus | None:
    """The OMS status of a Packeta status code; None for informational codes, UNKNOWN for codes not listed."""
    try:
        return _STATUS_BY_CODE.get(int(str(code).strip()), TrackingStatus.UNKNOWN)
    except ValueError:
        return TrackingStatus.UNKNOWN


def packet_id_of(tracking_number: str) -> str | None:
    """ "4123456789" or the barcode "Z 412 3456 789" -> "4123456789"; None when it cannot be a packet id."""
    digits = re.sub(r"[\sZz]", "", tracking_number)
    return digits if digits.isdigit() else None


def split_street(line: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*(.*?\S)[\s,]+(\d+[\w/\-]*)\s*", line)
    return (match.group(1), match.group(2)) if match else (line.strip(), "")


def _split_name(name: str) -> tuple[str, str]:
    parts = name.strip().rsplit(" ", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0], parts[0])


def _amount(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


class _PacketaFault(Exception):
    def __init__(self, fault: str, string: str, attributes: list[tuple[str, str]]) -> None:
        super().__init__(f"{fault}: {string}")
        self.fault = fault
        self.string = string
        self.attributes = attributes


@dataclass(frozen=True, slots=True)
class _Packet:
    packet_id: str
    barcode: str
    barcode_text: str


def _append(parent: ET.Element, tag: str, value: Any) -> None:
    if value is None:
        return
    child = ET.SubElement(parent, tag)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _append(child, key, item)
    else:
        child.text = str(value)


class PacketaAdapter(CarrierAdapter):
    """Packeta: packets to pickup points (and Z-BOXes) or to the door, their labels, tracking and pickup points."""

    kind: ClassVar[str] = "packeta"
    label: ClassVar[str] = "Packeta (Zásilkovna)"
    credential_names: ClassVar[frozenset[str]] = frozenset({"api_password"})
    options: ClassVar[frozenset[str]] = frozenset({"eshop", "home_delivery_carriers", "pdf_format", "zpl_dpi"})
    default_api_base_url: ClassVar[str] = "https://www.zasilkovna.cz"
    label_formats: ClassVar[frozenset[LabelFormat]] = frozenset({LabelFormat.PDF, LabelFormat.ZPL})
    services: ClassVar[Mapping[str, str]] = {
        "pickup_point": "Packeta pickup point or Z-BOX",
        "home_delivery": "Packeta Home (to the door)",
    }
    idempotent_purchase: ClassVar[bool] = False

    def __init__(
        self,
        config: CarrierConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(config)
        self._http = Transport(carrier="Packeta", timeout=config.timeout, session=session, sleep=sleep, rng=rng)

    # ------------------------------------------------------------------------------------ configuration

    @property
    def _base(self) -> str:
        return (self.config.api_base_url or self.default_api_base_url).rstrip("/")

    def _password(self) -> str:
        password = self.config.credentials.get("api_password", "").strip()
        if not password:
            raise CarrierAuthFailed("the Packeta account has no API password")
        return password

    def _home_carriers(self) -> dict[str, str]:
        """Country -> Packeta Home carrier id; the option reads "CZ:106,SK:131"."""
        text = self.config.options.get("home_delivery_carriers", "").strip()
        if not text:
            return dict(DEFAULT_HOME_CARRIERS)
        carriers = {}
        for item in text.split(","):
            country, _, carrier = item.partition(":")
            if country.strip() and carrier.strip():
                carriers[country.strip().upper()] = carrier.strip()
        return carriers

    # ------------------------------------------------------------------------------------------- calling

    def _call(self, method: str, fields: Mapping[str, Any], *, safe: bool) -> ET.Element | None:
        """One API call; the `<result>` element (None when empty), or a _PacketaFault / CarrierError."""
        root = ET.Element(method)
        _append(root, "apiPassword", self._password())
        for name, value in fields.items():
            _append(root, name, value)
        response = self._http.request(
            "POST",
            f"{self._base}/api/rest",
            safe=safe,
            data=ET.tostring(root, encoding="utf-8", xml_declaration=True),
            headers={"Content-Type": "text/xml; charset=utf-8", "Accept": "text/xml"},
        )
        if response.status_code in (401, 403):
            raise CarrierAuthFailed(f"Packeta refused the call (HTTP {response.status_code})")
        if response.status_code >= 400:
            raise CarrierRejected(
                f"Packeta answered {method} with HTTP {response.status_code}",
                errors=[
                    FieldError("", f"Packeta refused the request (HTTP {response.status_code}); check the API address")
                ],
            )
        unknown = "" if safe else "; whether Packeta acted on it is unknown"
        try:
            document: ET.Element = SafeET.fromstring(response.content)
        except (ET.ParseError, ValueError) as exc:  # defusedxml's refusals are ValueErrors
            raise CarrierUnavailable(f"Packeta answered {method} with something that is not XML{unknown}") from exc
        status = (document.findtext("status") or "").strip()
        if status == "ok":
            return document.find("result")
        if status != "fault":
            raise CarrierUnavailable(f"Packeta answered {method} with status {status!r}{unknown}")
        fault = (document.findtext("fault") or "").strip()
        string = (document.findtext("string") or "").strip()
        if fault == "IncorrectApiPasswordFault":
            raise CarrierAuthFailed(f"Packeta refused the API password: {string}")
        attributes = [
            ((item.findtext("name") or "").strip(), (item.findtext("fault") or "").strip())
            for item in document.findall("detail/attributes/fault")
        ]
        raise _PacketaFault(fault, string, attributes)

    # ------------------------------------------------------------------------------------------- buying

    def buy_label(self, shipment: ShipmentRequest, *, idempotency_key: str) -> Label:
        label_format = self.config.label_format
        pickup = bool(shipment.pickup_point_id)
        attributes = self._attributes(shipment)
        if len(attributes) > 1:  # check them all before creating any
            for index, attrs in enumerate(attributes):
                self._attempt("packetAttributesValid", attrs, index, pickup, safe=True)
        packets: list[_Packet] = []
        try:
            for index, attrs in enumerate(attributes):
                result = self._attempt("createPacket", attrs, index, pickup, safe=False)
                packets.append(_packet(result))
            documents = tuple(
                LabelDocument(p.packet_id, self._document(p.packet_id, label_format), label_format) for p in packets
            )
        except CarrierError as exc:
            if not packets:
                raise
            raise self._undo(packets, exc) from exc
        return Label(
            tracking_numbers=tuple(p.packet_id for p in packets),
            documents=documents,
            service=shipment.service,
            raw={
                "packets": [{"id": p.packet_id, "barcode": p.barcode, "barcodeText": p.barcode_text} for p in packets]
            },
        )

    def _attempt(
        self, method: str, attrs: Mapping[str, Any], index: int, pickup: bool, *, safe: bool
    ) -> ET.Element | None:
        try:
            return self._call(method, {"packetAttributes": attrs}, safe=safe)
        except _PacketaFault as fault:
            raise self._rejection(fault, index, pickup) from None

    def _undo(self, packets: Sequence[_Packet], cause: CarrierError) -> CarrierError:
        """Cancel the packets created before a failure; the error to raise, saying what became of them."""
        cancelled, kept = [], []
        for packet in packets:
            try:
                self._call("cancelPacket", {"packetId": packet.packet_id}, safe=False)
                cancelled.append(packet.packet_id)
            except (CarrierError, _PacketaFault):
                kept.append(packet.packet_id)
        note = f"packets {', '.join(cancelled)} created before it were cancelled" if cancelled else ""
        if kept:
            note += ("; " if note else "") + f"cancel packets {', '.join(kept)} in Packeta's client section"
        if isinstance(cause, CarrierRejected):
            return CarrierRejected(f"{cause} ({note})", errors=cause.errors)
        if isinstance(cause, CarrierUnavailable):
            return CarrierUnavailable(f"{cause} ({note})", retry_after=cause.retry_after)
        if isinstance(cause, CarrierAuthFailed):
            return CarrierAuthFailed(f"{cause} ({note})")
        return CarrierError(f"{cause} ({note})", retryable=cause.retryable)

    def _attributes(self, shipment: ShipmentRequest) -> list[dict[str, Any]]:
        to = shipment.ship_to
        count = len(shipment.parcels)
        home = not shipment.pickup_point_id
        if shipment.service not in self.services:
            raise CarrierRejected(
                f"{shipment.service!r} is not a Packeta service",
                errors=[FieldError("service", f"Pick a Packeta service: {', '.join(self.services)}")],
            )
        if home and shipment.service == "pickup_point":
            raise CarrierRejected(
                "a Packeta pickup point shipment needs a pickup point",
                errors=[FieldError("pickup_point_id", "Choose the customer's Packeta pickup point or Z-BOX")],
            )
        address_id = shipment.pickup_point_id
        if home:
            carrier = self._home_carriers().get(to.country_code.upper())
            if carrier is None:
                raise CarrierRejected(
                    f"no Packeta Home carrier for {to.country_code}",
                    errors=[FieldError("ship_to.country_code", f"Packeta Home does not deliver to {to.country_code}")],
                )
            address_id = carrier
        value = shipment.value if shipment.value is not None else shipment.cod_amount
        if value is None or value <= 0:
            raise CarrierRejected(
                "Packeta needs the value of the goods",
                errors=[FieldError("value", "Packeta needs the value of the goods (it insures the packet for it)")],
            )
        share = (value / count).quantize(CENT, rounding=ROUND_HALF_UP)
        shares = [value - share * (count - 1)] + [share] * (count - 1)
        first, last = _split_name(to.name)
        packets = []
        for index, parcel in enumerate(shipment.parcels):
            attrs: dict[str, Any] = {
                "number": shipment.reference,
                "name": first,
                "surname": last,
                "company": to.company or None,
                "email": to.email or None,
                "phone": to.phone or None,
                "addressId": address_id,
                "value": _amount(shares[index]),
                "currency": shipment.currency.upper() or None,
                "cod": _amount(shipment.cod_amount) if index == 0 and shipment.cod_amount else None,
                "weight": str((Decimal(parcel.weight_grams) / 1000).quantize(Decimal("0.001"))),
                "eshop": self.config.options.get("eshop") or None,
            }
            if home:
                attrs.update(_home_address(to))
            if parcel.length_cm is not None and parcel.width_cm is not None and parcel.height_cm is not None:
                attrs["size"] = {
                    "length": int((parcel.length_cm * 10).to_integral_value(rounding=ROUND_HALF_UP)),
                    "width": int((parcel.width_cm * 10).to_integral_value(rounding=ROUND_HALF_UP)),
                    "height": int((parcel.height_cm * 10).to_integral_value(rounding=ROUND_HALF_UP)),
                }
            packets.append(attrs)
        return packets

    def _rejection(self, fault: _PacketaFault, index: int, pickup: bool) -> CarrierRejected:
        errors = []
        for name, message in fault.attributes or [("", fault.string)]:
            if name == "addressId":
                field = "pickup_point_id" if pickup else "ship_to.country_code"
                advice = "Packeta does not know this pickup point" if pickup else "Packeta Home does not deliver there"
            elif name in _ATTRIBUTE_FIELDS:
                field, advice = _ATTRIBUTE_FIELDS[name]
                field = field.format(i=index)
            else:
                field, advice = "", "Packeta refused the packet"
            errors.append(FieldError(field, f"{advice} (Packeta: {message or fault.string})"))
        details = "; ".join(f"{name}: {message}" for name, message in fault.attributes) or fault.string
        return CarrierRejected(f"Packeta refused the packet ({fault.fault}): {details}", errors=errors)

    def _document(self, packet_id: str, label_format: LabelFormat) -> bytes:
        """The label of a packet that exists (a safe call: it creates nothing)."""
        try:
            if label_format is LabelFormat.ZPL:
                dpi = self.config.options.get("zpl_dpi") or "203"
                result = self._call("packetLabelZpl", {"packetId": packet_id, "dpi": dpi}, safe=True)
                return _zpl(result)
            label_size = self.config.options.get("pdf_format") or DEFAULT_PDF_FORMAT
            result = self._call("packetLabelPdf", {"packetId": packet_id, "format": label_size, "offset": 0}, safe=True)
        except _PacketaFault as fault:
            raise CarrierRejected(
                f"Packeta could not print packet {packet_id}: {fault}",
                errors=[FieldError("", f"Packeta could not print the label: {fault.string}; check the label options")],
            ) from None
        try:
            return base64.b64decode((result.text if result is not None else "") or "", validate=True)
        except binascii.Error as exc:
            raise CarrierUnavailable(f"Packeta sent the label of packet {packet_id} in a form it cannot read") from exc

    # ------------------------------------------------------------------------------------------ voiding

    def void_label(self, label: Label) -> None:
        refused = []
        for number in label.tracking_numbers:
            packet_id = packet_id_of(number)
            if packet_id is None:
                refused.append(f"{number} is not a Packeta packet")
                continue
            try:
                self._call("cancelPacket", {"packetId": packet_id}, safe=False)
            except _PacketaFault as fault:
                refused.append(f"packet {packet_id}: {fault.string}")
        if refused:
            raise CarrierRejected(
                f"Packeta will not cancel: {'; '.join(refused)}",
                errors=[
                    FieldError("", f"Packeta will not cancel it: it is already on its way, or cancelled ({why})")
                    for why in refused
                ],
            )

    # ----------------------------------------------------------------------------------------- tracking

    def track(self, tracking_numbers: Sequence[str]) -> list[TrackingResult]:
        home_carriers = set(self._home_carriers().values())
        results = []
        for number in dict.fromkeys(n.strip() for n in tracking_numbers if n.strip()):
            packet_id = packet_id_of(number)
            if packet_id is None:
                continue
            try:
                result = self._call("packetTracking", {"packetId": packet_id}, safe=True)
            except _PacketaFault as fault:
                if fault.fault in ("PacketIdFault", "PacketIdsFault"):
                    continue  # not a packet Packeta knows
                raise CarrierError(f"Packeta refused to track {number}: {fault}", retryable=False) from None
            records = result.findall("record") if result is not None else []
            results.append(_tracking_result(number, records, home_carriers))
        return results

    # ------------------------------------------------------------------------------------ pickup points

    def pickup_points(self, *, country_code: str, postal_code: str = "", limit: int = 20) -> list[PickupPoint]:
        api_key = self.config.credentials.get("api_key", "").strip() or self._password()[:16]
        response = self._http.request("GET", f"{self._base}/api/v4/{api_key}/branch.json", safe=True)
        if response.status_code in (401, 403):
            raise CarrierAuthFailed(
                f"Packeta refused the API key for the pickup point feed (HTTP {response.status_code})"
            )
        if response.status_code >= 400:
            raise CarrierError(f"Packeta's pickup point feed answered HTTP {response.status_code}", retryable=False)
        try:
            feed = response.json()
        except ValueError as exc:
            raise CarrierUnavailable("Packeta's pickup point feed is not JSON") from exc
        data = feed.get("data") if isinstance(feed, dict) else None
        branches = list(data.values()) if isinstance(data, dict) else data if isinstance(data, list) else []
        country = country_code.upper()
        points = [
            _pickup_point(b) for b in branches if isinstance(b, dict) and str(b.get("country", "")).upper() == country
        ]
        wanted = re.sub(r"\D", "", postal_code)
        if wanted:
            points.sort(key=lambda p: (abs(int(re.sub(r"\D", "", p.address.postal_code) or 0) - int(wanted)), p.id))
        return points[: max(limit, 0)]


def _home_address(to: Address) -> dict[str, Any]:
    street, house_number = split_street(to.line1)
    if to.line2:
        street = f"{street}, {to.line2}"
    return {
        "street": street,
        "houseNumber": house_number or None,
        "city": to.city,
        "zip": to.postal_code.replace(" ", ""),
        "province": to.region or None,
    }


def _packet(result: ET.Element | None) -> _Packet:
    packet_id = (result.findtext("id") if result is not None else None) or ""
    if not packet_id.strip():
        raise CarrierUnavailable("Packeta answered createPacket without a packet id; whether it created one is unknown")
    return _Packet(
        packet_id=packet_id.strip(),
        barcode=(result.findtext("barcode") if result is not None else None) or "",
        barcode_text=(result.findtext("barcodeText") if result is not None else None) or "",
    )


def _zpl(result: ET.Element | None) -> bytes:
    """The ZPL of a label: the text of `<result>`, which the XML parser has unescaped; a second escaping layer
    (entities left in the text: the ZPL was escaped twice) is undone too."""
    text = (result.text if result is not None else "") or ""
    if re.search(r"&(?:lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);", text):
        text = html.unescape(text)
    return text.strip().encode("utf-8")


def _tracking_result(number: str, records: Sequence[ET.Element], home_carriers: set[str]) -> TrackingResult:
    dated = []
    for record in records:
        try:
            moment = datetime.fromisoformat((record.findtext("dateTime") or "").strip())
        except ValueError:
            continue
        dated.append((moment if moment.tzinfo else moment.replace(tzinfo=PACKETA_TZ), record))
    dated.sort(key=lambda pair: pair[0])
    current = TrackingStatus.PRE_TRANSIT
    events = []
    for moment, record in dated:
        code = (record.findtext("statusCode") or "").strip()
        mapped = status_for_code(code)
        if code == "6" and (record.findtext("carrierId") or "").strip() in home_carriers:
            mapped = TrackingStatus.OUT_FOR_DELIVERY
        if mapped is not None:
            current = mapped
        location = (record.findtext("carrierName") or "").strip() or (record.findtext("branchId") or "").strip()
        events.append(
            TrackingEvent(
                status=current,
                occurred_at=moment,
                description=(record.findtext("statusText") or record.findtext("codeText") or code).strip(),
                code=code,
                location=location,
            )
        )
    return TrackingResult(tracking_number=number, status=current, events=tuple(events))


def _pickup_point(branch: Mapping[str, Any]) -> PickupPoint:
    hours = branch.get("openingHours")
    return PickupPoint(
        id=str(branch.get("id", "")),
        name=str(branch.get("place") or branch.get("name") or ""),
        address=Address(
            name=str(branch.get("place") or branch.get("name") or ""),
            line1=str(branch.get("street") or ""),
            city=str(branch.get("city") or ""),
            postal_code=str(branch.get("zip") or ""),
            country_code=str(branch.get("country") or "").upper(),
        ),
        opening_hours=str(hours.get("compactShort") or "") if isinstance(hours, Mapping) else "",
    )
