"""Packeta (XML REST, branch feed) via real HTTP against tests/emulators/packeta.py: conformance, Packeta's rules."""

from __future__ import annotations

import dataclasses
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import defusedxml.ElementTree as SafeET
import pypdf
import pytest

from carriers.base import (
    Address,
    CarrierAuthFailed,
    CarrierConfig,
    CarrierRejected,
    CarrierUnavailable,
    Label,
    LabelFormat,
    Parcel,
    ShipmentRequest,
    TrackingStatus,
)
from carriers.packeta import PacketaAdapter, packet_id_of, status_for_code
from tests.carriers.conformance import CarrierAdapterConformance, closed_port, new_key
from tests.emulators.packeta import PacketaEmulator

SENDER = Address(
    name="OMS Warehouse",
    company="OMS s.r.o.",
    line1="Skladová 12",
    city="Praha",
    postal_code="19000",
    country_code="CZ",
)
CUSTOMER = Address(
    name="Jana Marie Nováková",
    company="Květiny & <Co>",
    line1="Masarykova 27",
    line2="2. patro",
    city="Ostrava",
    postal_code="702 00",
    country_code="CZ",
    phone="+420777123456",
    email="jana@example.cz",
)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def request(*weights: int, **changes: object) -> ShipmentRequest:
    base = ShipmentRequest(
        reference="ORD-30011",
        ship_from=SENDER,
        ship_to=CUSTOMER,
        parcels=tuple(
            Parcel(weight_grams=w, length_cm=Decimal("30"), width_cm=Decimal("20"), height_cm=Decimal("12.5"))
            for w in weights or (1200,)
        ),
        service="pickup_point",
        pickup_point_id="4307",
        value=Decimal("1299.00"),
        currency="CZK",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def home(*weights: int, **changes: object) -> ShipmentRequest:
    return request(*weights, **{"service": "home_delivery", "pickup_point_id": "", **changes})


def config_for(emulator: PacketaEmulator, **changes: object) -> CarrierConfig:
    config = CarrierConfig(
        slug="packeta",
        api_base_url=emulator.base_url,
        credentials={"api_password": emulator.api_password},
        options={"eshop": "oms-shop"},
        timeout=5.0,
    )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def sent_xml(emulator: PacketaEmulator, method: str) -> list[ET.Element]:
    roots = [SafeET.fromstring(r.body) for r in emulator.requests_to("/api/rest")]
    return [root for root in roots if root.tag == method]


@pytest.fixture
def emulator() -> Iterator[PacketaEmulator]:
    with PacketaEmulator() as running:
        yield running


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def adapter(emulator: PacketaEmulator, sleeps: Sleeps) -> PacketaAdapter:
    return PacketaAdapter(config_for(emulator), sleep=sleeps)


@pytest.fixture
def shipment_request() -> ShipmentRequest:
    return request(1200)


@pytest.fixture
def multi_parcel_request() -> ShipmentRequest:
    return home(1200, 3400)


@pytest.fixture
def rejected_request() -> ShipmentRequest:
    return home(40_000, ship_to=dataclasses.replace(CUSTOMER, postal_code="99999"))


@pytest.fixture
def bad_credentials_adapter(emulator: PacketaEmulator, sleeps: Sleeps) -> PacketaAdapter:
    return PacketaAdapter(config_for(emulator, credentials={"api_password": "0" * 32}), sleep=sleeps)


@pytest.fixture
def unreachable_adapter(sleeps: Sleeps) -> PacketaAdapter:
    config = CarrierConfig(
        slug="packeta-down",
        api_base_url=f"http://127.0.0.1:{closed_port()}",
        credentials={"api_password": "f" * 32},
        timeout=1.0,
    )
    return PacketaAdapter(config, sleep=sleeps)


@pytest.fixture
def slow_adapter(sleeps: Sleeps) -> Iterator[PacketaAdapter]:
    with PacketaEmulator(latency=0.6) as slow:
        yield PacketaAdapter(config_for(slow, timeout=0.2), sleep=sleeps)


@pytest.fixture
def advance_tracking(emulator: PacketaEmulator):  # type: ignore[no-untyped-def]
    return emulator.advance_tracking


class TestPacketaConformance(CarrierAdapterConformance):
    kind = "packeta"


# ------------------------------------------------------------------------------------------------ the wire


def test_create_packet_on_the_wire(adapter: PacketaAdapter, emulator: PacketaEmulator) -> None:
    label = adapter.buy_label(request(1200), idempotency_key=new_key())

    (sent,) = emulator.requests_to("/api/rest")[:1]
    assert sent.headers["content-type"].startswith("text/xml")
    root = SafeET.fromstring(sent.body)
    assert root.tag == "createPacket"
    assert root[0].tag == "apiPassword"
    assert root[0].text == emulator.api_password
    attrs = {child.tag: child.text for child in root.find("packetAttributes")}  # type: ignore[union-attr]
    assert attrs == {
        "number": "ORD-30011",
        "name": "Jana Marie",
        "surname": "Nováková",
        "company": "Květiny & <Co>",
        "email": "jana@example.cz",
        "phone": "+420777123456",
        "addressId": "4307",
        "value": "1299.00",
        "currency": "CZK",
        "weight": "1.200",
        "eshop": "oms-shop",
        "size": None,
    }
    size = root.find("packetAttributes/size")
    assert size is not None
    assert {child.tag: child.text for child in size} == {"length": "300", "width": "200", "height": "125"}
    (packet_id,) = label.tracking_numbers
    assert emulator.packet(packet_id)["status_code"] == 1
    assert label.raw["packets"] == [
        {
            "id": packet_id,
            "barcode": f"Z{packet_id}",
            "barcodeText": f"Z {packet_id[:3]} {packet_id[3:7]} {packet_id[7:]}",
        }
    ]


def test_home_delivery_goes_to_the_countrys_packeta_home_carrier(
    adapter: PacketaAdapter, emulator: PacketaEmulator
) -> None:
    adapter.buy_label(home(1200), idempotency_key=new_key())

    (root,) = sent_xml(emulator, "createPacket")
    attrs = {child.tag: child.text for child in root.find("packetAttributes")}  # type: ignore[union-attr]
    assert attrs["addressId"] == "106"
    assert (attrs["street"], attrs["houseNumber"], attrs["city"], attrs["zip"]) == (
        "Masarykova, 2. patro",
        "27",
        "Ostrava",
        "70200",
    )


def test_home_delivery_carriers_come_from_the_account(emulator: PacketaEmulator, sleeps: Sleeps) -> None:
    adapter = PacketaAdapter(config_for(emulator, options={"home_delivery_carriers": "SK:131"}), sleep=sleeps)

    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(home(1200), idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == ["ship_to.country_code"]
    assert emulator.requests == []


def test_a_pdf_label_per_packet(adapter: PacketaAdapter, emulator: PacketaEmulator) -> None:
    label = adapter.buy_label(home(1200, 3400), idempotency_key=new_key())

    assert [d.tracking_number for d in label.documents] == list(label.tracking_numbers)
    for document in label.documents:
        text = pypdf.PdfReader(io.BytesIO(document.content)).pages[0].extract_text()
        assert f"Z{document.tracking_number}" in text
    formats = [root.findtext("format") for root in sent_xml(emulator, "packetLabelPdf")]
    assert formats == ["A6 on A6", "A6 on A6"]


def test_zpl_labels_come_unescaped(emulator: PacketaEmulator, sleeps: Sleeps) -> None:
    adapter = PacketaAdapter(config_for(emulator, label_format=LabelFormat.ZPL), sleep=sleeps)

    label = adapter.buy_label(request(1200), idempotency_key=new_key())

    content = label.documents[0].content
    assert content.startswith(b"^XA")
    assert "Květiny & <Co>".encode() in content
    (zpl_call,) = sent_xml(emulator, "packetLabelZpl")
    assert zpl_call.findtext("dpi") == "203"


def test_zpl_escaped_twice_is_unescaped_twice(emulator: PacketaEmulator, sleeps: Sleeps) -> None:
    emulator.zpl_escaped_twice = True
    adapter = PacketaAdapter(config_for(emulator, label_format=LabelFormat.ZPL), sleep=sleeps)

    label = adapter.buy_label(request(1200), idempotency_key=new_key())

    assert "Květiny & <Co>".encode() in label.documents[0].content


def test_several_parcels_are_checked_before_any_is_created(adapter: PacketaAdapter, emulator: PacketaEmulator) -> None:
    label = adapter.buy_label(home(1200, 3400, cod_amount=Decimal("1299.00")), idempotency_key=new_key())

    methods = [SafeET.fromstring(r.body).tag for r in emulator.requests_to("/api/rest")]
    assert methods[:4] == ["packetAttributesValid", "packetAttributesValid", "createPacket", "createPacket"]
    created = [emulator.packet(n)["attributes"] for n in label.tracking_numbers]
    assert [a["value"] for a in created] == ["649.50", "649.50"]
    assert [a.get("cod") for a in created] == ["1299.00", None]  # collected once, with the first packet
    assert [a["weight"] for a in created] == ["1.200", "3.400"]
    assert {a["number"] for a in created} == {"ORD-30011"}


def test_a_refused_second_parcel_books_nothing(adapter: PacketaAdapter, emulator: PacketaEmulator) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(request(1200, 14_000, pickup_point_id="11805"), idempotency_key=new_key())  # a Z-BOX: 10 kg

    assert [e.field for e in caught.value.errors] == ["parcels[1].weight_grams"]
    assert "10" in caught.value.errors[0].message
    assert emulator.shipments_booked == 0
    assert sent_xml(emulator, "createPacket") == []


def test_an_outage_after_the_first_packet_cancels_it(adapter: PacketaAdapter, emulator: PacketaEmulator) -> None:
    emulator.fail_method("createPacket", 502, skip=1)

    with pytest.raises(CarrierUnavailable, match="were cancelled"):
        adapter.buy_label(home(1200, 3400), idempotency_key=new_key())

    assert len(sent_xml(emulator, "createPacket")) == 2  # the second was not sent again
    (cancel,) = sent_xml(emulator, "cancelPacket")
    assert emulator.packet(cancel.findtext("packetId") or "")["status_code"] == 11
    assert emulator.shipments_booked == 1


def test_a_label_that_cannot_be_printed_cancels_the_packet(emulator: PacketaEmulator, sleeps: Sleeps) -> None:
    adapter = PacketaAdapter(config_for(emulator, options={"pdf_format": "A5 on A5"}), sleep=sleeps)

    with pytest.raises(CarrierRejected, match="cancelled") as caught:
        adapter.buy_label(request(1200), idempotency_key=new_key())

    assert caught.value.errors[0].field == ""
    (cancel,) = sent_xml(emulator, "cancelPacket")
    assert emulator.packet(cancel.findtext("packetId") or "")["status_code"] == 11


def test_create_packet_is_never_resent_but_labels_are(
    adapter: PacketaAdapter, emulator: PacketaEmulator, sleeps: Sleeps
) -> None:
    emulator.fail_method("createPacket", 503)
    with pytest.raises(CarrierUnavailable, match="unknown"):
        adapter.buy_label(request(1200), idempotency_key=new_key())
    assert len(emulator.requests) == 1

    emulator.fail_method("packetLabelPdf", 502)
    label = adapter.buy_label(request(1200), idempotency_key=new_key())

    assert label.documents[0].content.startswith(b"%PDF")
    assert [r.status for r in emulator.requests[1:]] == [200, 502, 200]  # create, label (failed), label
    assert len(sleeps.calls) == 1


# ------------------------------------------------------------------------------------------ refusals


def test_packeta_attribute_faults_become_oms_fields(adapter: PacketaAdapter, emulator: PacketaEmulator) -> None:
    refused = request(1200, ship_to=dataclasses.replace(CUSTOMER, email="", phone=""), pickup_point_id="999999")

    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(refused, idempotency_key=new_key())

    by_field = {e.field: e.message for e in caught.value.errors}
    assert set(by_field) == {"ship_to.email", "pickup_point_id"}
    assert "Either email or phone" in by_field["ship_to.email"]
    assert "PacketAttributesFault" in str(caught.value)


def test_a_wrong_sender_label_is_an_account_problem(emulator: PacketaEmulator, sleeps: Sleeps) -> None:
    adapter = PacketaAdapter(config_for(emulator, options={"eshop": "someone-else"}), sleep=sleeps)

    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(request(1200), idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == [""]
    assert "sender label" in caught.value.errors[0].message


def test_the_value_is_needed_before_calling(adapter: PacketaAdapter, emulator: PacketaEmulator) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(request(1200, value=None), idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == ["value"]
    assert emulator.requests == []


def test_a_pickup_point_service_without_a_point_is_refused_locally(
    adapter: PacketaAdapter, emulator: PacketaEmulator
) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(request(1200, pickup_point_id=""), idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == ["pickup_point_id"]
    assert emulator.requests == []


def test_a_wrong_password_is_an_auth_failure_everywhere(bad_credentials_adapter: PacketaAdapter) -> None:
    with pytest.raises(CarrierAuthFailed, match="Incorrect API password"):
        bad_credentials_adapter.void_label(Label(tracking_numbers=("4100000001",), documents=()))
    with pytest.raises(CarrierAuthFailed):
        bad_credentials_adapter.pickup_points(country_code="CZ")


# ------------------------------------------------------------------------------------------- voiding


def test_void_cancels_every_packet_then_tracking_says_cancelled(
    adapter: PacketaAdapter, emulator: PacketaEmulator
) -> None:
    label = adapter.buy_label(home(1200, 3400), idempotency_key=new_key())

    adapter.void_label(label)

    assert [r.findtext("packetId") for r in sent_xml(emulator, "cancelPacket")] == list(label.tracking_numbers)
    assert [result.status for result in adapter.track(label.tracking_numbers)] == [TrackingStatus.CANCELLED] * 2


def test_a_packet_on_its_way_cannot_be_cancelled(adapter: PacketaAdapter, emulator: PacketaEmulator) -> None:
    label = adapter.buy_label(request(1200), idempotency_key=new_key())
    emulator.advance_tracking(label.tracking_numbers[0], TrackingStatus.IN_TRANSIT)

    with pytest.raises(CarrierRejected) as caught:
        adapter.void_label(label)

    assert "already on its way" in caught.value.errors[0].message
    assert emulator.packet(label.tracking_numbers[0])["status_code"] == 4


# ------------------------------------------------------------------------------------------ tracking


def test_records_become_events_in_prague_time(adapter: PacketaAdapter, emulator: PacketaEmulator) -> None:
    (packet_id,) = adapter.buy_label(request(1200), idempotency_key=new_key()).tracking_numbers
    emulator.advance_tracking(packet_id, TrackingStatus.DELIVERED)

    (result,) = adapter.track([packet_id])

    assert [e.code for e in result.events] == ["1", "2", "3", "4", "5", "7"]
    assert result.events[4].status is TrackingStatus.AVAILABLE_FOR_PICKUP
    assert result.events[0].occurred_at.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
    assert result.events[4].location == "4307"


def test_a_home_packet_handed_to_its_courier_is_out_for_delivery(
    adapter: PacketaAdapter, emulator: PacketaEmulator
) -> None:
    (packet_id,) = adapter.buy_label(home(1200), idempotency_key=new_key()).tracking_numbers
    emulator.advance_tracking(packet_id, TrackingStatus.OUT_FOR_DELIVERY)

    (result,) = adapter.track([packet_id])

    assert result.status is TrackingStatus.OUT_FOR_DELIVERY
    assert result.events[-1].location == "CZ Zásilkovna domů HD"


def test_a_barcode_tracks_its_packet(adapter: PacketaAdapter, emulator: PacketaEmulator) -> None:
    (packet_id,) = adapter.buy_label(request(1200), idempotency_key=new_key()).tracking_numbers
    barcode = f"Z {packet_id[:3]} {packet_id[3:7]} {packet_id[7:]}"

    (result,) = adapter.track([barcode])

    assert result.tracking_number == barcode
    assert sent_xml(emulator, "packetTracking")[0].findtext("packetId") == packet_id


def test_tracking_retries_an_outage(adapter: PacketaAdapter, emulator: PacketaEmulator, sleeps: Sleeps) -> None:
    (packet_id,) = adapter.buy_label(request(1200), idempotency_key=new_key()).tracking_numbers
    emulator.fail_next(500, count=2, path_contains="/api/rest")

    (result,) = adapter.track([packet_id])

    assert result.status is TrackingStatus.PRE_TRANSIT
    assert len(sleeps.calls) == 2


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("1", TrackingStatus.PRE_TRANSIT),
        ("4", TrackingStatus.IN_TRANSIT),
        ("5", TrackingStatus.AVAILABLE_FOR_PICKUP),
        ("7", TrackingStatus.DELIVERED),
        ("9", TrackingStatus.RETURNED),
        ("11", TrackingStatus.CANCELLED),
        ("16", TrackingStatus.EXCEPTION),
        ("27", None),
        ("999", TrackingStatus.UNKNOWN),
        ("42", TrackingStatus.UNKNOWN),
    ],
)
def test_packeta_status_codes(code: str, status: TrackingStatus | None) -> None:
    assert status_for_code(code) is status


def test_packet_ids_and_barcodes() -> None:
    assert packet_id_of("4123456789") == "4123456789"
    assert packet_id_of("Z 412 3456 789") == "4123456789"
    assert packet_id_of("1Z999AA10123456784") is None


# ------------------------------------------------------------------------------------- pickup points


def test_pickup_points_nearest_postal_code_first(adapter: PacketaAdapter, emulator: PacketaEmulator) -> None:
    points = adapter.pickup_points(country_code="CZ", postal_code="702 00", limit=3)

    assert [p.id for p in points] == ["11805", "2290", "9870"]
    assert points[0].address.city == "Ostrava"
    assert points[0].address.country_code == "CZ"
    assert points[0].opening_hours == "Po-Ne 00:00-24:00"
    (feed,) = emulator.requests_to("/branch.json")
    assert feed.path == f"/api/v4/{emulator.api_password[:16]}/branch.json"


def test_pickup_points_of_another_country(adapter: PacketaAdapter) -> None:
    (point,) = adapter.pickup_points(country_code="sk")

    assert (point.id, point.address.postal_code) == ("20411", "811 06")
