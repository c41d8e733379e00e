"""GLS (MyGLS REST JSON) through real HTTP against tests/emulators/gls.py: conformance and GLS's own rules."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

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
from carriers.gls import GlsAdapter, parse_wcf_date, split_street, status_for_code
from tests.carriers.conformance import CarrierAdapterConformance, closed_port, new_key
from tests.emulators.gls import GlsEmulator

SENDER = Address(
    name="Petr Sklad",
    company="OMS s.r.o.",
    line1="Skladová 12",
    city="Praha",
    postal_code="19000",
    country_code="CZ",
    phone="+420222333444",
    email="sklad@oms.example",
)
CUSTOMER = Address(
    name="Jana Nováková",
    line1="Masarykova 27/3a",
    line2="byt 12",
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
        reference="ORD-20077",
        ship_from=SENDER,
        ship_to=CUSTOMER,
        parcels=tuple(
            Parcel(weight_grams=w, length_cm=Decimal("40"), width_cm=Decimal("30"), height_cm=Decimal("9.2"))
            for w in weights or (2300,)
        ),
        service="standard",
        contents="Books",
        currency="CZK",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def config_for(emulator: GlsEmulator, **changes: object) -> CarrierConfig:
    config = CarrierConfig(
        slug="gls-cz",
        api_base_url=emulator.base_url,
        credentials={"username": emulator.username, "password": emulator.password},
        options={"client_number": str(emulator.client_number)},
        timeout=5.0,
    )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


@pytest.fixture
def emulator() -> Iterator[GlsEmulator]:
    with GlsEmulator() as running:
        yield running


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def adapter(emulator: GlsEmulator, sleeps: Sleeps) -> GlsAdapter:
    return GlsAdapter(config_for(emulator), sleep=sleeps)


@pytest.fixture
def shipment_request() -> ShipmentRequest:
    return request(2300)


@pytest.fixture
def multi_parcel_request() -> ShipmentRequest:
    return request(2300, 7100)


@pytest.fixture
def rejected_request() -> ShipmentRequest:
    return request(45_000, ship_to=dataclasses.replace(CUSTOMER, postal_code="99999"))


@pytest.fixture
def bad_credentials_adapter(emulator: GlsEmulator, sleeps: Sleeps) -> GlsAdapter:
    config = config_for(emulator, credentials={"username": emulator.username, "password": "wrong-password"})
    return GlsAdapter(config, sleep=sleeps)


@pytest.fixture
def unreachable_adapter(sleeps: Sleeps) -> GlsAdapter:
    config = CarrierConfig(
        slug="gls-down",
        api_base_url=f"http://127.0.0.1:{closed_port()}",
        credentials={"username": "u", "password": "p"},
        options={"client_number": "1"},
        timeout=1.0,
    )
    return GlsAdapter(config, sleep=sleeps)


@pytest.fixture
def slow_adapter(sleeps: Sleeps) -> Iterator[GlsAdapter]:
    with GlsEmulator(latency=0.6) as slow:
        yield GlsAdapter(config_for(slow, timeout=0.2), sleep=sleeps)


@pytest.fixture
def advance_tracking(emulator: GlsEmulator):  # type: ignore[no-untyped-def]
    return emulator.advance_tracking


class TestGlsConformance(CarrierAdapterConformance):
    kind = "gls"


# ------------------------------------------------------------------------------------------------ the wire


def test_the_print_labels_call_on_the_wire(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    key = new_key()
    label = adapter.buy_label(request(2300, 7100, ship_date=date(2026, 3, 2)), idempotency_key=key)

    (sent,) = emulator.requests_to("/PrintLabels")
    assert sent.method == "POST"
    assert sent.path == "/ParcelService.svc/json/PrintLabels"
    body = sent.json
    assert body["Username"] == emulator.username
    assert body["Password"] == list(hashlib.sha512(emulator.password.encode()).digest())
    assert body["ClientNumberList"] == [emulator.client_number]
    assert body["TypeOfPrinter"] == "Thermo"
    (parcel,) = body["ParcelList"]
    assert parcel["ClientNumber"] == emulator.client_number
    assert parcel["ClientReference"] == GlsAdapter.client_reference("ORD-20077", key)
    assert re.fullmatch(r"ORD-20077~[0-9a-f]{8}", parcel["ClientReference"])
    assert parcel["Count"] == 2
    assert parcel["PickupDate"] == f"/Date({int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)})/"
    assert parcel["DeliveryAddress"] == {
        "Name": "Jana Nováková",
        "Street": "Masarykova",
        "HouseNumber": "27/3a",
        "HouseNumberInfo": "byt 12",
        "City": "Ostrava",
        "ZipCode": "702 00",
        "CountryIsoCode": "CZ",
        "ContactName": "Jana Nováková",
        "ContactPhone": "+420777123456",
        "ContactEmail": "jana@example.cz",
    }
    assert parcel["PickupAddress"]["Name"] == "OMS s.r.o."
    assert parcel["PickupAddress"]["ContactName"] == "Petr Sklad"
    assert [p["Weight"] for p in parcel["ParcelPropertyList"]] == [2.3, 7.1]
    assert parcel["ParcelPropertyList"][0]["Height"] == 10
    assert parcel["ServiceList"] == [{"Code": "FDS", "FDSParameter": {"Value": "jana@example.cz"}}]
    assert "CODAmount" not in parcel
    ids = [emulator.parcel(n)["parcel_id"] for n in label.tracking_numbers]
    assert label.shipment_id == ",".join(str(i) for i in ids)


def test_one_pdf_holds_every_parcel(adapter: GlsAdapter) -> None:
    label = adapter.buy_label(request(2300, 7100), idempotency_key=new_key())

    (document,) = label.documents
    pages = pypdf.PdfReader(io.BytesIO(document.content)).pages
    assert [number in page.extract_text() for page, number in zip(pages, label.tracking_numbers, strict=True)] == [
        True,
        True,
    ]
    assert document.tracking_number == label.tracking_numbers[0]


def test_zpl_uses_a_zpl_printer_type(emulator: GlsEmulator, sleeps: Sleeps) -> None:
    adapter = GlsAdapter(
        config_for(
            emulator,
            label_format=LabelFormat.ZPL,
            options={"client_number": "100012345", "zpl_printer_type": "ThermoZPL_300DPI"},
        ),
        sleep=sleeps,
    )

    label = adapter.buy_label(request(1000), idempotency_key=new_key())

    assert emulator.requests_to("/PrintLabels")[0].json["TypeOfPrinter"] == "ThermoZPL_300DPI"
    assert label.documents[0].content.startswith(b"^XA")
    assert b"^PW1200" in label.documents[0].content  # 300 dpi


def test_a_pdf_printer_type_that_prints_zpl_is_refused(emulator: GlsEmulator, sleeps: Sleeps) -> None:
    adapter = GlsAdapter(
        config_for(emulator, options={"client_number": "100012345", "pdf_printer_type": "ThermoZPL"}), sleep=sleeps
    )

    with pytest.raises(CarrierRejected, match="not a GLS PDF printer type"):
        adapter.buy_label(request(1000), idempotency_key=new_key())

    assert emulator.requests == []


def test_labels_sent_as_base64_text_are_read_too(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    emulator.labels_as_base64 = True

    label = adapter.buy_label(request(1000), idempotency_key=new_key())

    assert label.documents[0].content.startswith(b"%PDF")


def test_labels_missing_from_the_answer_are_fetched_again(
    adapter: GlsAdapter, emulator: GlsEmulator, sleeps: Sleeps
) -> None:
    emulator.labels_in_print_answer = False
    emulator.fail_next(503, path_contains="/GetPrintedLabels")

    label = adapter.buy_label(request(1000, 1200), idempotency_key=new_key())

    assert label.documents[0].content.startswith(b"%PDF")
    fetches = emulator.requests_to("/GetPrintedLabels")
    assert [r.status for r in fetches] == [503, 200]
    assert fetches[-1].json["ParcelIdList"] == [int(i) for i in label.shipment_id.split(",")]
    assert len(sleeps.calls) == 1


def test_a_parcelshop_delivery_sends_psd(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    label = adapter.buy_label(request(900, service="PSD", pickup_point_id="CZ-70200-LOCKER"), idempotency_key=new_key())

    services = emulator.requests_to("/PrintLabels")[0].json["ParcelList"][0]["ServiceList"]
    assert {"Code": "PSD", "PSDParameter": {"StringValue": "CZ-70200-LOCKER"}} in services
    emulator.advance_tracking(label.tracking_numbers[0], TrackingStatus.AVAILABLE_FOR_PICKUP)
    (result,) = adapter.track(label.tracking_numbers)
    assert result.status is TrackingStatus.AVAILABLE_FOR_PICKUP


def test_parcelshop_delivery_without_a_point_is_refused_locally(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(request(900, service="PSD"), idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == ["pickup_point_id"]
    assert emulator.requests == []


def test_cash_on_delivery(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    adapter.buy_label(request(900, cod_amount=Decimal("1299.90")), idempotency_key=new_key())

    parcel = emulator.requests_to("/PrintLabels")[0].json["ParcelList"][0]
    assert (parcel["CODAmount"], parcel["CODReference"], parcel["CODCurrency"]) == (1299.9, "ORD-20077", "CZK")


def test_an_unknown_service_is_refused_locally(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(request(900, service="express"), idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == ["service"]
    assert emulator.requests == []


def test_an_account_without_a_client_number_is_refused_locally(emulator: GlsEmulator, sleeps: Sleeps) -> None:
    adapter = GlsAdapter(config_for(emulator, options={}), sleep=sleeps)

    with pytest.raises(CarrierRejected, match="client number"):
        adapter.buy_label(request(900), idempotency_key=new_key())

    assert emulator.requests == []


# ------------------------------------------------------------------------------------------ refusals


def test_gls_descriptions_become_oms_fields(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    refused = request(
        1000,
        45_000,
        ship_to=dataclasses.replace(CUSTOMER, postal_code="99999"),
        ship_from=dataclasses.replace(SENDER, city=""),
        service="PSD",
        pickup_point_id="CZ-NOWHERE",
    )

    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(refused, idempotency_key=new_key())

    by_field = {e.field: e.message for e in caught.value.errors}
    assert set(by_field) == {"ship_to.postal_code", "ship_from.city", "parcels[1].weight_grams", "pickup_point_id"}
    assert "customer's address" in by_field["ship_to.postal_code"]
    assert "sender's address" in by_field["ship_from.city"]
    assert "45" in by_field["parcels[1].weight_grams"]  # GLS's words come along
    assert emulator.shipments_booked == 0


def test_a_cod_currency_gls_does_not_collect(adapter: GlsAdapter) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(request(900, cod_amount=Decimal("50"), currency="EUR"), idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == ["currency"]


def test_bad_credentials_are_asked_once(bad_credentials_adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    with pytest.raises(CarrierAuthFailed, match="Unauthorized"):
        bad_credentials_adapter.track(["52000000001"])

    assert len(emulator.requests) == 1  # MyGLS locks a user after a few failed logins: never retry one


# ------------------------------------------------------------------------------------------- outages


def test_print_labels_is_never_resent(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    emulator.fail_next(502, after=True, path_contains="/PrintLabels")

    with pytest.raises(CarrierUnavailable, match="unknown"):
        adapter.buy_label(request(900), idempotency_key=new_key())

    assert len(emulator.requests_to("/PrintLabels")) == 1
    assert emulator.shipments_booked == 1


def test_a_refused_connection_is_known_not_to_have_booked(unreachable_adapter: GlsAdapter, sleeps: Sleeps) -> None:
    with pytest.raises(CarrierUnavailable, match="never reached GLS"):
        unreachable_adapter.buy_label(request(900), idempotency_key=new_key())

    assert sleeps.calls == []  # a booking is not retried, even then: the OMS decides


def test_status_calls_ride_out_an_outage(adapter: GlsAdapter, emulator: GlsEmulator, sleeps: Sleeps) -> None:
    (number,) = adapter.buy_label(request(900), idempotency_key=new_key()).tracking_numbers
    emulator.fail_next(503, count=3, path_contains="/GetParcelStatuses")

    (result,) = adapter.track([number])

    assert result.status is TrackingStatus.PRE_TRANSIT
    assert len(sleeps.calls) == 3


# ------------------------------------------------------------------------------------------- finding


def test_a_purchase_whose_answer_was_lost_is_found_by_its_key(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    shipment = request(2300, 7100)
    key = new_key()
    emulator.fail_next(504, after=True, path_contains="/PrintLabels")
    with pytest.raises(CarrierUnavailable):
        adapter.buy_label(shipment, idempotency_key=key)

    found = adapter.find_label(shipment, idempotency_key=key)

    assert found is not None
    assert len(found.tracking_numbers) == 2
    for number in found.tracking_numbers:
        assert emulator.parcel(number)["parcel"]["ClientReference"] == GlsAdapter.client_reference(
            shipment.reference, key
        )
    assert found.documents[0].content.startswith(b"%PDF")
    (listing,) = emulator.requests_to("/GetParcelList")
    assert listing.json["PrintDateFrom"].startswith("/Date(")
    assert emulator.shipments_booked == 1
    assert adapter.find_label(shipment, idempotency_key=new_key()) is None


def test_a_deleted_purchase_is_not_found(adapter: GlsAdapter) -> None:
    shipment = request(900)
    key = new_key()
    adapter.void_label(adapter.buy_label(shipment, idempotency_key=key))

    assert adapter.find_label(shipment, idempotency_key=key) is None


def test_find_label_only_looks_back_two_weeks(adapter: GlsAdapter, emulator: GlsEmulator, sleeps: Sleeps) -> None:
    shipment = request(900)
    key = new_key()
    adapter.buy_label(shipment, idempotency_key=key)
    later = GlsAdapter(adapter.config, sleep=sleeps, now=lambda: datetime.now(UTC) + timedelta(days=15))

    assert later.find_label(shipment, idempotency_key=key) is None


# ------------------------------------------------------------------------------------------- voiding


def test_void_deletes_every_parcel_of_the_shipment(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    label = adapter.buy_label(request(900, 1100), idempotency_key=new_key())

    adapter.void_label(label)

    (sent,) = emulator.requests_to("/DeleteLabels")
    assert sent.json["ParcelIdList"] == [int(i) for i in label.shipment_id.split(",")]
    assert all(emulator.parcel(n)["deleted"] for n in label.tracking_numbers)


def test_a_label_without_parcel_ids_is_looked_up_first(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    bought = adapter.buy_label(request(900), idempotency_key=new_key())

    adapter.void_label(Label(tracking_numbers=bought.tracking_numbers, documents=()))

    assert emulator.parcel(bought.tracking_numbers[0])["deleted"] is True
    assert len(emulator.requests_to("/GetParcelList")) == 1


def test_a_scanned_parcel_cannot_be_deleted(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    label = adapter.buy_label(request(900), idempotency_key=new_key())
    emulator.advance_tracking(label.tracking_numbers[0], TrackingStatus.IN_TRANSIT)

    with pytest.raises(CarrierRejected) as caught:
        adapter.void_label(label)

    assert "already been scanned" in caught.value.errors[0].message
    assert emulator.parcel(label.tracking_numbers[0])["deleted"] is False


# ------------------------------------------------------------------------------------------ tracking


def test_statuses_come_oldest_first_in_gls_local_time(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    (number,) = adapter.buy_label(request(900), idempotency_key=new_key()).tracking_numbers
    emulator.advance_tracking(number, TrackingStatus.DELIVERED)

    (result,) = adapter.track([number])

    assert [e.code for e in result.events] == ["1", "2", "3", "4", "5"]
    assert result.events[0].location == "Praha CZ0701"
    assert result.events[0].occurred_at.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
    sent = emulator.requests_to("/GetParcelStatuses")[0].json
    assert (sent["ParcelNumber"], sent["ReturnPOD"], sent["LanguageIsoCode"]) == (int(number), False, "EN")


def test_tracking_skips_what_cannot_be_a_gls_number(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    assert adapter.track(["Z 123 456", "  "]) == []
    assert emulator.requests == []


def test_a_failed_delivery_attempt_is_an_exception(adapter: GlsAdapter, emulator: GlsEmulator) -> None:
    (number,) = adapter.buy_label(request(900), idempotency_key=new_key()).tracking_numbers
    emulator.advance_tracking(number, TrackingStatus.OUT_FOR_DELIVERY)
    emulator.advance_tracking(number, TrackingStatus.EXCEPTION)

    (result,) = adapter.track([number])

    assert result.status is TrackingStatus.EXCEPTION


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("51", TrackingStatus.PRE_TRANSIT),
        ("1", TrackingStatus.IN_TRANSIT),
        ("65", TrackingStatus.IN_TRANSIT),
        ("32", TrackingStatus.OUT_FOR_DELIVERY),
        ("55", TrackingStatus.AVAILABLE_FOR_PICKUP),
        ("92", TrackingStatus.DELIVERED),
        ("16", TrackingStatus.EXCEPTION),
        ("40", TrackingStatus.RETURNED),
        ("90", TrackingStatus.CANCELLED),
        ("93", None),
        ("777", TrackingStatus.UNKNOWN),
        ("x", TrackingStatus.UNKNOWN),
    ],
)
def test_gls_status_codes(code: str, status: TrackingStatus | None) -> None:
    assert status_for_code(code) is status


def test_wcf_dates_keep_their_offset() -> None:
    moment = parse_wcf_date("/Date(1709280000000+0100)/")

    assert moment is not None
    assert moment == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(hours=1)
    assert parse_wcf_date("/Date(1709280000000)/") == datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert parse_wcf_date("yesterday") is None


@pytest.mark.parametrize(
    ("line", "parts"),
    [
        ("Masarykova 27", ("Masarykova", "27")),
        ("Na Příkopě 1096/17", ("Na Příkopě", "1096/17")),
        ("Hlavní, 5a", ("Hlavní", "5a")),
        ("Náměstí Míru", ("Náměstí Míru", "")),
    ],
)
def test_street_and_house_number_are_split(line: str, parts: tuple[str, str]) -> None:
    assert split_street(line) == parts
