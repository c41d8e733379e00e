"""A Packeta (Zásilkovna) emulator on 127.0.0.1: the XML REST API and the branch (pickup point) feed.

Wire format as Packeta documents it and its public clients use it (see carriers/packeta.py):

- `POST /api/rest` with an XML body whose root element is the method and whose first child is
  `<apiPassword>`. Every answer is HTTP 200 with `<response><status>ok</status><result>...</result></response>`
  or `<response><status>fault</status><fault>NameOfFault</fault><string>message</string><detail>...</detail>
  </response>`. A wrong password is `IncorrectApiPasswordFault`.
- `createPacket` / `packetAttributesValid` take `<packetAttributes>` (number, name, surname, company, email,
  phone, addressId, value, currency, cod, weight in kg, eshop, street, houseNumber, city, zip, size{length,
  width, height} in mm); refusals are `PacketAttributesFault` with
  `<detail><attributes><fault><name>zip</name><fault>message</fault></fault>...</attributes></detail>`.
  `createPacket` answers `<result><id>..</id><barcode>Z..</barcode><barcodeText>Z .. .. ..</barcodeText></result>`.
- `packetLabelPdf {packetId, format, offset}` answers base64 PDF; `packetLabelZpl {packetId, dpi}` answers
  the ZPL as (XML-escaped) text. `packetStatus` answers the current status record, `packetTracking` all of
  them (`<record>` elements: dateTime in local time without offset, statusCode, codeText, statusText,
  branchId, destinationBranchId, externalTrackingCode, carrierId, carrierName, storedUntil). `cancelPacket`
  works only before Packeta has the packet (`CancelNotAllowedFault` after); an unknown id is `PacketIdFault`.
- `GET /api/v4/{apiKey}/branch.json`: the pickup point feed, `{"data": {"<id>": {branch}}}`; the API key
  is the first 16 characters of the API password; a wrong key is a 401.

`advance_tracking(packet_id, status)` moves a packet through the network; `shipments_booked` counts the packets
created; `zpl_escaped_twice` answers the ZPL with one escaping layer too many; `fail_method` fails one call of
one method (all methods share one path).
"""

from __future__ import annotations

import base64
import html
import itertools
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import defusedxml.ElementTree as SafeET

from carriers.base import TrackingStatus
from tests.emulators._carrier_server import CarrierEmulator, RecordedRequest, Reply, pdf_document, zpl_document

LOCAL_TZ = ZoneInfo("Europe/Prague")
LABEL_FORMATS = {"A6 on A6", "A6 on A4", "A7 on A7", "A7 on A4", "105x35mm on A4", "A8 on A8"}
CURRENCIES = {"CZK", "EUR", "HUF", "PLN", "RON"}
HOME_MAX_WEIGHT = Decimal("30")
ZIP_PATTERNS = {"CZ": r"[1-7]\d{4}", "SK": r"[089]\d{4}", "HU": r"[1-9]\d{3}"}

BRANCHES: dict[str, dict[str, Any]] = {
    "4307": {
        "name": "Praha 1, Národní 37 (Potraviny U Divadla)",
        "place": "Potraviny U Divadla",
        "street": "Národní 37",
        "city": "Praha 1",
        "zip": "110 00",
        "country": "cz",
        "currency": "CZK",
        "maxWeight": "15",
        "compactShort": "Po-Pá 08:00-20:00, So 09:00-14:00",
    },
    "11805": {
        "name": "Ostrava, Nádražní 112 (Z-BOX)",
        "place": "Z-BOX Nádražní",
        "street": "Nádražní 112",
        "city": "Ostrava",
        "zip": "702 00",
        "country": "cz",
        "currency": "CZK",
        "maxWeight": "10",
        "compactShort": "Po-Ne 00:00-24:00",
    },
    "2290": {
        "name": "Ostrava, 28. října 1 (Papírnictví)",
        "place": "Papírnictví Nova",
        "street": "28. října 1",
        "city": "Ostrava",
        "zip": "702 00",
        "country": "cz",
        "currency": "CZK",
        "maxWeight": "15",
        "compactShort": "Po-Pá 09:00-18:00",
    },
    "9870": {
        "name": "Brno, Kobližná 4 (Trafika)",
        "place": "Trafika Kobližná",
        "street": "Kobližná 4",
        "city": "Brno",
        "zip": "602 00",
        "country": "cz",
        "currency": "CZK",
        "maxWeight": "15",
        "compactShort": "Po-So 07:00-19:00",
    },
    "20411": {
        "name": "Bratislava, Obchodná 20 (Kníhkupectvo)",
        "place": "Kníhkupectvo Obchodná",
        "street": "Obchodná 20",
        "city": "Bratislava",
        "zip": "811 06",
        "country": "sk",
        "currency": "EUR",
        "maxWeight": "15",
        "compactShort": "Po-Pi 09:00-18:00",
    },
}
HOME_CARRIERS = {"106": ("CZ", "CZ Zásilkovna domů HD"), "131": ("SK", "SK Packeta Home HD")}

CODE_TEXTS = {
    1: ("received data", "Packet data have been received."),
    2: ("arrived", "Packet has been accepted at our depot."),
    3: ("prepared for departure", "Packet is being prepared for departure."),
    4: ("departed", "Packet has departed from the depot."),
    5: ("ready for pickup", "Packet is ready for pickup at the pickup point."),
    6: ("handed to carrier", "Packet has been handed over to the carrier for delivery."),
    7: ("delivered", "Packet has been delivered."),
    9: ("posted back", "Packet is on its way back to the sender."),
    10: ("returned", "Packet has been returned to the sender."),
    11: ("cancelled", "Packet has been cancelled."),
    16: ("delivery attempt", "Packeta Home made an unsuccessful delivery attempt."),
}
PICKUP_ROUTE = (2, 3, 4, 5, 7)
HOME_ROUTE = (2, 3, 4, 6, 7)
TARGETS = {
    TrackingStatus.IN_TRANSIT: 4,
    TrackingStatus.AVAILABLE_FOR_PICKUP: 5,
    TrackingStatus.OUT_FOR_DELIVERY: 6,
    TrackingStatus.DELIVERED: 7,
}
SIDE_EVENTS = {TrackingStatus.EXCEPTION: (16,), TrackingStatus.RETURNED: (9, 10), TrackingStatus.CANCELLED: (11,)}


def branch_feed() -> dict[str, Any]:
    """The feed as Packeta publishes it (v4 JSON), for the emulator's few points."""
    data = {}
    for ident, b in BRANCHES.items():
        data[ident] = {
            "id": ident,
            "name": b["name"],
            "nameStreet": f"{b['city']}, {b['street']}",
            "place": b["place"],
            "street": b["street"],
            "city": b["city"],
            "zip": b["zip"],
            "country": b["country"],
            "currency": b["currency"],
            "maxWeight": b["maxWeight"],
            "status": {"statusId": "1", "description": ""},
            "displayFrontend": "1",
            "openingHours": {"compactShort": b["compactShort"], "compactLong": b["compactShort"], "regular": {}},
            "latitude": "50.0",
            "longitude": "15.0",
            "labelRouting": f"C-{ident}",
            "labelName": b["place"],
        }
    return {"data": data}


@dataclass
class _Packet:
    packet_id: int
    attributes: dict[str, Any]
    home_carrier: str  # the Packeta Home carrier id, or "" for a pickup point
    records: list[dict[str, str]] = field(default_factory=list)

    @property
    def code(self) -> int:
        return int(self.records[-1]["statusCode"])


class _Fault(Exception):
    def __init__(self, fault: str, string: str, attributes: list[tuple[str, str]] | None = None) -> None:
        super().__init__(string)
        self.fault = fault
        self.string = string
        self.attributes = attributes or []


def _text(parent: ET.Element, tag: str) -> str:
    child = parent.find(tag)
    return (child.text or "").strip() if child is not None else ""


def _decimal(value: str) -> Decimal | None:
    try:
        return Decimal(value) if value else None
    except InvalidOperation:
        return None


class PacketaEmulator(CarrierEmulator):
    """One Packeta e-shop account: its API password, its sender labels, and Packeta's network."""

    name = "packeta"

    def __init__(
        self,
        *,
        api_password: str | None = None,
        senders: tuple[str, ...] = ("oms-shop",),
        latency: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(latency=latency)
        self.api_password = api_password or secrets.token_hex(16)
        self.senders = set(senders)
        self.clock = clock
        self.zpl_escaped_twice = False  # answer the ZPL escaped once more than XML needs
        self._ids = itertools.count(4_100_000_000 + int(time.time()) % 1_000_000 * 100)
        self._packets: dict[int, _Packet] = {}
        self._booked = 0
        self._state = threading.RLock()

    @property
    def api_key(self) -> str:
        return self.api_password[:16]

    @property
    def shipments_booked(self) -> int:
        with self._state:
            return self._booked

    def fail_method(self, method: str, status: int = 503, *, skip: int = 0, after: bool = False) -> None:
        """Answer one call of `method` (after letting `skip` of them through) with HTTP `status`."""
        seen = 0

        def when(request: RecordedRequest) -> bool:
            nonlocal seen
            try:
                called = SafeET.fromstring(request.body).tag
            except (ET.ParseError, ValueError):
                return False
            if called != method:
                return False
            seen += 1
            return seen > skip

        self.fail_next(status, after=after, path_contains="/api/rest", when=when)

    def packet(self, packet_id: int | str) -> dict[str, Any]:
        """The attributes Packeta accepted for a packet and its current status code."""
        with self._state:
            stored = self._packets[int(packet_id)]
            return {"attributes": dict(stored.attributes), "status_code": stored.code}

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC).replace(microsecond=0)

    def _record(self, packet: _Packet, code: int) -> None:
        moment = self._now()
        if packet.records:
            previous = datetime.fromisoformat(packet.records[-1]["dateTime"]).replace(tzinfo=LOCAL_TZ)
            moment = max(moment, previous + timedelta(minutes=13))
        code_text, status_text = CODE_TEXTS[code]
        record = {
            "dateTime": moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%dT%H:%M:%S"),
            "statusCode": str(code),
            "codeText": code_text,
            "statusText": status_text,
            "branchId": "4307" if code in (2, 3, 4) else packet.attributes.get("addressId", ""),
            "destinationBranchId": "" if packet.home_carrier else packet.attributes.get("addressId", ""),
            "externalTrackingCode": "",
            "isReturning": "1" if code in (9, 10) else "0",
            "storedUntil": (moment.date() + timedelta(days=7)).isoformat() if code == 5 else "",
            "carrierId": packet.home_carrier if code == 6 else "",
            "carrierName": HOME_CARRIERS[packet.home_carrier][1] if code == 6 and packet.home_carrier else "",
        }
        packet.records.append(record)

    def advance_tracking(self, packet_id: str, status: TrackingStatus) -> None:
        """Move the packet through Packeta's network up to `status` (the steps in between included)."""
        with self._state:
            packet = self._packets[int(packet_id)]
            if status in SIDE_EVENTS:
                for code in SIDE_EVENTS[status]:
                    self._record(packet, code)
                return
            if status not in TARGETS:
                raise ValueError(f"the Packeta emulator cannot make a packet {status}")
            route = HOME_ROUTE if packet.home_carrier else PICKUP_ROUTE
            target = TARGETS[status]
            if target not in route:
                raise ValueError(f"a {'home' if packet.home_carrier else 'pickup point'} packet is never {status}")
            done = {int(r["statusCode"]) for r in packet.records}
            for code in route:
                if code not in done:
                    self._record(packet, code)
                if code == target:
                    return

    # ----------------------------------------------------------------------------------------- dispatch

    def dispatch(self, request: RecordedRequest) -> Reply:
        feed = re.fullmatch(r"/api/v4/([^/]+)/branch\.json", request.path)
        if feed and request.method == "GET":
            if feed.group(1) != self.api_key:
                return Reply.text(401, "Invalid API key", content_type="text/plain; charset=utf-8")
            return Reply.json(200, branch_feed())
        if request.path.rstrip("/") != "/api/rest" or request.method != "POST":
            return Reply.text(404, "<html><body>Not Found</body></html>")
        try:
            root = SafeET.fromstring(request.body)
        except (ET.ParseError, ValueError):
            return _fault_reply(_Fault("IncorrectDataFault", "The request is not well-formed XML."))
        try:
            if _text(root, "apiPassword") != self.api_password:
                raise _Fault("IncorrectApiPasswordFault", "Incorrect API password.")
            handler = {
                "createPacket": self._create_packet,
                "packetAttributesValid": self._attributes_valid,
                "packetLabelPdf": self._label_pdf,
                "packetLabelZpl": self._label_zpl,
                "packetStatus": self._status,
                "packetTracking": self._tracking,
                "cancelPacket": self._cancel,
            }.get(root.tag)
            if handler is None:
                raise _Fault("UnknownMethodFault", f"Unknown method {root.tag}.")
            with self._state:
                result = handler(root)
        except _Fault as fault:
            return _fault_reply(fault)
        return _ok_reply(result)

    def _packet_of(self, root: ET.Element) -> _Packet:
        raw = _text(root, "packetId")
        packet = self._packets.get(int(raw)) if raw.isdigit() else None
        if packet is None:
            raise _Fault("PacketIdFault", f"Packet id '{raw}' is invalid or unknown.")
        return packet

    def _validate(self, root: ET.Element) -> tuple[dict[str, str], str]:
        element = root.find("packetAttributes")
        if element is None:
            raise _Fault("PacketAttributesFault", "Missing packetAttributes.", [("packetAttributes", "Required.")])
        attrs = {child.tag: (child.text or "").strip() for child in element if child.tag != "size"}
        size = element.find("size")
        if size is not None:
            attrs.update({f"size.{child.tag}": (child.text or "").strip() for child in size})
        faults: list[tuple[str, str]] = [
            (name, "This value is required.")
            for name in ("number", "name", "surname", "addressId", "value", "weight")
            if not attrs.get(name)
        ]
        if not attrs.get("email") and not attrs.get("phone"):
            faults.append(("email", "Either email or phone must be filled in."))
        if attrs.get("email") and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", attrs["email"]):
            faults.append(("email", "Invalid email address."))
        address_id = attrs.get("addressId", "")
        home_carrier = address_id if address_id in HOME_CARRIERS else ""
        branch = BRANCHES.get(address_id)
        if address_id and not home_carrier and branch is None:
            faults.append(("addressId", f"Unknown pickup point or carrier id {address_id}."))
        weight = _decimal(attrs.get("weight", ""))
        limit = HOME_MAX_WEIGHT if home_carrier else Decimal(branch["maxWeight"]) if branch else HOME_MAX_WEIGHT
        if attrs.get("weight") and (weight is None or weight <= 0):
            faults.append(("weight", "Weight must be a positive number."))
        elif weight is not None and weight > limit:
            faults.append(("weight", f"Weight {weight} kg exceeds the maximum of {limit} kg for this destination."))
        value = _decimal(attrs.get("value", ""))
        if attrs.get("value") and (value is None or value <= 0):
            faults.append(("value", "Value must be a positive number."))
        cod = _decimal(attrs.get("cod", ""))
        if attrs.get("cod") and (cod is None or cod < 0):
            faults.append(("cod", "Cash on delivery must be zero or more."))
        if attrs.get("currency") and attrs["currency"] not in CURRENCIES:
            faults.append(("currency", f"Unknown currency {attrs['currency']}."))
        if attrs.get("eshop") and attrs["eshop"] not in self.senders:
            faults.append(("eshop", f"Sender label '{attrs['eshop']}' does not exist."))
        if home_carrier:
            country = HOME_CARRIERS[home_carrier][0]
            faults.extend(
                (name, "This value is required for home delivery.")
                for name in ("street", "city", "zip")
                if not attrs.get(name)
            )
            zip_code = attrs.get("zip", "").replace(" ", "")
            if zip_code and not re.fullmatch(ZIP_PATTERNS[country], zip_code):
                faults.append(("zip", f"ZIP code {attrs['zip']} is not valid in {country}."))
        faults.extend(
            ("size", "Dimensions must be whole millimetres.")
            for name in ("size.length", "size.width", "size.height")
            if name in attrs and not attrs[name].isdigit()
        )
        if faults:
            raise _Fault("PacketAttributesFault", "Invalid packet attributes.", faults)
        return attrs, home_carrier

    def _attributes_valid(self, root: ET.Element) -> ET.Element | None:
        self._validate(root)
        return None

    def _create_packet(self, root: ET.Element) -> ET.Element:
        attrs, home_carrier = self._validate(root)
        packet = _Packet(next(self._ids), attrs, home_carrier)
        self._record(packet, 1)
        self._packets[packet.packet_id] = packet
        self._booked += 1
        result = ET.Element("result")
        ident = str(packet.packet_id)
        ET.SubElement(result, "id").text = ident
        ET.SubElement(result, "barcode").text = f"Z{ident}"
        ET.SubElement(result, "barcodeText").text = f"Z {ident[:3]} {ident[3:7]} {ident[7:]}"
        return result

    def _lines(self, packet: _Packet) -> list[str]:
        a = packet.attributes
        destination = BRANCHES.get(a.get("addressId", ""), {}).get("place") or f"{a.get('zip', '')} {a.get('city', '')}"
        return [
            "Packeta",
            f"Z{packet.packet_id}",
            f"{a.get('name', '')} {a.get('surname', '')}",
            a.get("company", ""),
            str(destination),
            f"Order {a.get('number', '')}",
        ]

    def _label_pdf(self, root: ET.Element) -> str:
        packet = self._packet_of(root)
        label_format = _text(root, "format") or "A6 on A6"
        if label_format not in LABEL_FORMATS:
            raise _Fault("InvalidLabelFormatFault", f"Unknown label format '{label_format}'.")
        return base64.b64encode(pdf_document([self._lines(packet)])).decode()

    def _label_zpl(self, root: ET.Element) -> str:
        packet = self._packet_of(root)
        dpi = _text(root, "dpi") or "203"
        if dpi not in ("203", "300"):
            raise _Fault("InvalidDpiFault", f"Unsupported dpi {dpi}: use 203 or 300.")
        zpl = zpl_document([self._lines(packet)], dpi=int(dpi)).decode()
        return html.escape(zpl, quote=False) if self.zpl_escaped_twice else zpl

    @staticmethod
    def _record_element(tag: str, record: dict[str, str]) -> ET.Element:
        element = ET.Element(tag)
        for key, value in record.items():
            ET.SubElement(element, key).text = value
        return element

    def _status(self, root: ET.Element) -> ET.Element:
        packet = self._packet_of(root)
        return self._record_element("result", packet.records[-1])

    def _tracking(self, root: ET.Element) -> ET.Element:
        packet = self._packet_of(root)
        result = ET.Element("result")
        for record in packet.records:
            result.append(self._record_element("record", record))
        return result

    def _cancel(self, root: ET.Element) -> None:
        packet = self._packet_of(root)
        if packet.code != 1:
            raise _Fault("CancelNotAllowedFault", "Packet cannot be cancelled in its current state.")
        self._record(packet, 11)


def _ok_reply(result: ET.Element | str | None) -> Reply:
    response = ET.Element("response")
    ET.SubElement(response, "status").text = "ok"
    if isinstance(result, ET.Element):
        result.tag = "result"
        response.append(result)
    else:
        ET.SubElement(response, "result").text = result
    return _xml(response)


def _fault_reply(fault: _Fault) -> Reply:
    response = ET.Element("response")
    ET.SubElement(response, "status").text = "fault"
    ET.SubElement(response, "fault").text = fault.fault
    ET.SubElement(response, "string").text = fault.string
    detail = ET.SubElement(response, "detail")
    if fault.attributes:
        attributes = ET.SubElement(detail, "attributes")
        for name, message in fault.attributes:
            item = ET.SubElement(attributes, "fault")
            ET.SubElement(item, "name").text = name
            ET.SubElement(item, "fault").text = message
    return _xml(response)


def _xml(element: ET.Element) -> Reply:
    body = ET.tostring(element, encoding="utf-8", xml_declaration=True)
    return Reply(200, body, content_type="text/xml; charset=utf-8")
