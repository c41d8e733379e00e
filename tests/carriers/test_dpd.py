"""DPD (DPD group Shipping API) through real HTTP against tests/emulators/dpd.py: conformance and DPD's own rules."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime

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
from carriers.dpd import DpdAdapter
from tests.carriers.conformance import CarrierAdapterConformance, closed_port, new_key
from tests.emulators.dpd import DpdEmulator

SENDER = Address(
    name="OMS Warehouse",
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
    line1="Masarykova 27",
    line2="2. patro",
    city="Ostrava",
    postal_code="70200",
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
        reference="ORD-10042",
        ship_from=SENDER,
        ship_to=CUSTOMER,
        parcels=tuple(
            Parcel(weight_grams=w, length_cm=Decimal("30"), width_cm=Decimal("20"), height_cm=Decimal("10.5"))
            for w in weights or (1250,)
        ),
        service="001+013",
        contents="T-shirts",
        currency="CZK",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def config_for(emulator: DpdEmulator, **changes: object) -> CarrierConfig:
    config = CarrierConfig(
        slug="dpd-cz",
        api_base_url=emulator.api_url,
        credentials={"username": emulator.username, "password": emulator.password},
        options={"customer_id": emulator.customer_id, "sender_address_id": "53001", "bu_code": emulator.bu_code},
        timeout=5.0,
    )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


@pytest.fixture
def emulator() -> Iterator[DpdEmulator]:
    with DpdEmulator() as running:
        yield running


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def adapter(emulator: DpdEmulator, sleeps: Sleeps) -> DpdAdapter:
    return DpdAdapter(config_for(emulator), sleep=sleeps)


@pytest.fixture
def shipment_request() -> ShipmentRequest:
    return request(1250)


@pytest.fixture
def multi_parcel_request() -> ShipmentRequest:
    return request(1250, 4800)


@pytest.fixture
def rejected_request() -> ShipmentRequest:
    return request(40_000, ship_to=dataclasses.replace(CUSTOMER, postal_code="99999"))


@pytest.fixture
def bad_credentials_adapter(emulator: DpdEmulator, sleeps: Sleeps) -> DpdAdapter:
    config = config_for(emulator, credentials={"username": emulator.username, "password": "not-the-password"})
    return DpdAdapter(config, sleep=sleeps)


@pytest.fixture
def unreachable_adapter(sleeps: Sleeps) -> DpdAdapter:
    config = CarrierConfig(
        slug="dpd-down",
        api_base_url=f"http://127.0.0.1:{closed_port()}/api/v1.1",
        credentials={"username": "u", "password": "p"},
        options={"customer_id": "C", "sender_address_id": "1"},
        timeout=1.0,
    )
    return DpdAdapter(config, sleep=sleeps)


@pytest.fixture
def slow_emulator() -> Iterator[DpdEmulator]:
    with DpdEmulator(latency=0.6) as running:
        running.latency_path = "/shipments"  # logging in is quick, booking is slow
        yield running


@pytest.fixture
def slow_adapter(slow_emulator: DpdEmulator, sleeps: Sleeps) -> DpdAdapter:
    return DpdAdapter(config_for(slow_emulator, timeout=0.2), sleep=sleeps)


@pytest.fixture
def advance_tracking(emulator: DpdEmulator):  # type: ignore[no-untyped-def]
    return emulator.advance_tracking


class TestDpdConformance(CarrierAdapterConformance):
    kind = "dpd"


# ------------------------------------------------------------------------------------------------ the wire


def test_logs_in_with_dpd_headers_once_and_sends_the_bearer_token(
    adapter: DpdAdapter, emulator: DpdEmulator, shipment_request: ShipmentRequest
) -> None:
    label = adapter.buy_label(shipment_request, idempotency_key=new_key())
    adapter.track(label.tracking_numbers)

    (login,) = emulator.requests_to("/login")
    assert login.headers["x-dpd-login"] == emulator.username
    assert login.headers["x-dpd-password"] == emulator.password
    assert login.headers["x-dpd-bucode"] == "015"
    token = login_token(emulator)
    for sent in emulator.requests_to("/shipments") + emulator.requests_to("/statuses"):
        assert sent.headers["authorization"] == f"Bearer {token}"
    assert emulator.logins == 1


def login_token(emulator: DpdEmulator) -> str:
    shipments = emulator.requests_to("/shipments")
    return shipments[0].headers["authorization"].removeprefix("Bearer ")


def test_a_revoked_token_means_one_new_login_and_the_call_resent(
    adapter: DpdAdapter, emulator: DpdEmulator, shipment_request: ShipmentRequest
) -> None:
    adapter.buy_label(shipment_request, idempotency_key=new_key())
    emulator.revoke_tokens()

    label = adapter.buy_label(shipment_request, idempotency_key=new_key())

    assert label.tracking_numbers
    assert emulator.logins == 2
    assert [r.status for r in emulator.requests_to("/shipments")] == [200, 401, 200]
    assert emulator.shipments_booked == 2


def test_a_token_close_to_expiry_is_renewed_before_use(shipment_request: ShipmentRequest, sleeps: Sleeps) -> None:
    with DpdEmulator(token_ttl=120) as short_lived:  # expires within the adapter's 5-minute margin
        adapter = DpdAdapter(config_for(short_lived), sleep=sleeps)
        adapter.buy_label(shipment_request, idempotency_key=new_key())
        adapter.buy_label(shipment_request, idempotency_key=new_key())

        assert short_lived.logins == 2
        assert all(r.status == 200 for r in short_lived.requests_to("/shipments"))


def test_the_shipment_on_the_wire(adapter: DpdAdapter, emulator: DpdEmulator) -> None:
    key = new_key()
    label = adapter.buy_label(request(1250, 4800), idempotency_key=key)

    (sent,) = emulator.requests_to("/api/v1.1/shipments")
    body = sent.json
    assert sent.method == "POST"
    assert body["customerId"] == emulator.customer_id
    assert body["buCode"] == "015"
    (shipment,) = body["shipments"]
    assert shipment["senderAddressId"] == "53001"
    assert shipment["receiver"] == {
        "name": "Jana Nováková",
        "contactName": "Jana Nováková",
        "street": "Masarykova 27",
        "additionalAddressInfo": "2. patro",
        "city": "Ostrava",
        "zipCode": "70200",
        "countryCode": "CZ",
        "contactEmail": "jana@example.cz",
        "contactPhone": "+420777123456",
        "contactMobile": "+420777123456",
    }
    assert [p["weight"] for p in shipment["parcels"]] == [1.25, 4.8]
    assert shipment["parcels"][0]["dimensionHeight"] == 11  # rounded up: DPD takes whole centimetres
    assert shipment["service"]["mainServiceElementCodes"] == ["001", "013"]
    assert shipment["service"]["additionalService"]["predicts"] == [
        {"type": "email", "destination": "jana@example.cz"},
        {"type": "SMS", "destination": "+420777123456"},
    ]
    assert shipment["reference1"] == "ORD-10042"
    assert shipment["reference2"] == key[:35]
    assert shipment["saveMode"] == "printed"
    assert (shipment["printFormat"], shipment["labelSize"]) == ("PDF", "A6")
    stored = emulator.shipment(label.shipment_id)
    assert stored["parcel_numbers"] == list(label.tracking_numbers)


def test_a_pdf_label_has_a_page_per_parcel_with_its_number(adapter: DpdAdapter) -> None:
    label = adapter.buy_label(request(1250, 4800), idempotency_key=new_key())

    (document,) = label.documents
    pdf = pypdf.PdfReader(io.BytesIO(document.content))
    assert len(pdf.pages) == 2
    for page, number in zip(pdf.pages, label.tracking_numbers, strict=True):
        assert number in page.extract_text()
    assert "labelFile" not in label.raw
    assert label.raw["shipmentId"] == int(label.shipment_id)


def test_a_zpl_account_prints_zpl(emulator: DpdEmulator, sleeps: Sleeps) -> None:
    adapter = DpdAdapter(config_for(emulator, label_format=LabelFormat.ZPL), sleep=sleeps)

    label = adapter.buy_label(request(1250), idempotency_key=new_key())

    assert emulator.requests_to("/shipments")[0].json["shipments"][0]["printFormat"] == "ZPL"
    assert label.documents[0].content.startswith(b"^XA")
    assert label.documents[0].format is LabelFormat.ZPL


def test_a_pickup_point_shipment_names_the_point(adapter: DpdAdapter, emulator: DpdEmulator) -> None:
    adapter.buy_label(request(900, service="001+013", pickup_point_id="CZ10457"), idempotency_key=new_key())

    shipment = emulator.requests_to("/shipments")[0].json["shipments"][0]
    assert shipment["service"]["mainServiceElementCodes"] == ["001", "013", "200"]
    assert shipment["service"]["additionalService"]["pudoId"] == "CZ10457"


def test_the_pickup_service_without_a_point_is_refused_before_calling_dpd(
    adapter: DpdAdapter, emulator: DpdEmulator
) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(request(900, service="001+013+200"), idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == ["pickup_point_id"]
    assert emulator.requests_to("/shipments") == []


def test_cash_on_delivery_goes_with_the_first_parcel(adapter: DpdAdapter, emulator: DpdEmulator) -> None:
    adapter.buy_label(request(1000, 2000, cod_amount=Decimal("1499.50")), idempotency_key=new_key())

    cod = emulator.requests_to("/shipments")[0].json["shipments"][0]["service"]["additionalService"]["cod"]
    assert cod == {
        "amount": 1499.5,
        "currency": "CZK",
        "paymentType": "Cash",
        "reference": "10042",
        "split": "First parcel",
    }


def test_a_shipment_date_is_sent_as_the_pickup_date(adapter: DpdAdapter, emulator: DpdEmulator) -> None:
    adapter.buy_label(request(1000, ship_date=date(2026, 3, 2)), idempotency_key=new_key())

    assert emulator.requests_to("/shipments")[0].json["shipments"][0]["pickupDate"] == "20260302"


# ------------------------------------------------------------------------------------------ labels later


def test_without_an_inline_label_the_adapter_reprints_it(emulator: DpdEmulator, sleeps: Sleeps) -> None:
    emulator.inline_labels = False
    adapter = DpdAdapter(config_for(emulator), sleep=sleeps)

    label = adapter.buy_label(request(1250, 800), idempotency_key=new_key())

    (reprint,) = emulator.requests_to("/api/v1.0/label/parcel-numbers")
    assert reprint.json["parcelNumberList"] == list(label.tracking_numbers)
    assert reprint.json["printFormat"] == "PDF"
    assert label.documents[0].content.startswith(b"%PDF")


def test_a_failing_reprint_is_retried_with_backoff(emulator: DpdEmulator, sleeps: Sleeps) -> None:
    emulator.inline_labels = False
    emulator.fail_next(502, count=2, path_contains="/label/")
    adapter = DpdAdapter(config_for(emulator), sleep=sleeps)

    label = adapter.buy_label(request(1250), idempotency_key=new_key())

    assert label.documents[0].content.startswith(b"%PDF")
    assert [r.status for r in emulator.requests_to("/label/")] == [502, 502, 200]
    assert len(sleeps.calls) == 2
    assert 0.25 <= sleeps.calls[0] <= 0.5  # equal jitter: half fixed, half random
    assert 0.5 <= sleeps.calls[1] <= 1.0  # doubling


# ------------------------------------------------------------------------------------------- outages


def test_a_failed_booking_is_never_resent(
    adapter: DpdAdapter, emulator: DpdEmulator, shipment_request: ShipmentRequest
) -> None:
    emulator.fail_next(503, path_contains="/shipments")

    with pytest.raises(CarrierUnavailable, match="unknown"):
        adapter.buy_label(shipment_request, idempotency_key=new_key())

    assert len(emulator.requests_to("/shipments")) == 1
    assert emulator.shipments_booked == 0


def test_a_booking_whose_answer_is_lost_is_unavailable_not_repeated(
    adapter: DpdAdapter, emulator: DpdEmulator, shipment_request: ShipmentRequest
) -> None:
    emulator.fail_next(504, after=True, path_contains="/shipments")

    with pytest.raises(CarrierUnavailable) as caught:
        adapter.buy_label(shipment_request, idempotency_key=new_key())

    assert caught.value.retryable is True
    assert emulator.shipments_booked == 1  # DPD booked it; the OMS must find out before trying again
    assert len(emulator.requests_to("/shipments")) == 1


def test_a_throttle_says_when_to_come_back(
    adapter: DpdAdapter, emulator: DpdEmulator, shipment_request: ShipmentRequest
) -> None:
    emulator.fail_next(429, retry_after="7", path_contains="/shipments")

    with pytest.raises(CarrierUnavailable) as caught:
        adapter.buy_label(shipment_request, idempotency_key=new_key())

    assert caught.value.retry_after == 7.0


def test_a_throttle_may_give_an_http_date(
    adapter: DpdAdapter, emulator: DpdEmulator, shipment_request: ShipmentRequest
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    emulator.fail_next(429, retry_after=later, path_contains="/shipments")

    with pytest.raises(CarrierUnavailable) as caught:
        adapter.buy_label(shipment_request, idempotency_key=new_key())

    assert caught.value.retry_after is not None
    assert 80 <= caught.value.retry_after <= 90


def test_tracking_rides_out_a_short_outage(
    adapter: DpdAdapter, emulator: DpdEmulator, shipment_request: ShipmentRequest, sleeps: Sleeps
) -> None:
    (number,) = adapter.buy_label(shipment_request, idempotency_key=new_key()).tracking_numbers
    emulator.fail_next(503, count=2, path_contains="/statuses")

    (result,) = adapter.track([number])

    assert result.status is TrackingStatus.PRE_TRANSIT
    assert len(sleeps.calls) == 2


def test_tracking_gives_up_after_a_few_tries(
    adapter: DpdAdapter, emulator: DpdEmulator, shipment_request: ShipmentRequest, sleeps: Sleeps
) -> None:
    (number,) = adapter.buy_label(shipment_request, idempotency_key=new_key()).tracking_numbers
    emulator.fail_next(500, count=10, path_contains="/statuses")

    with pytest.raises(CarrierUnavailable, match="gave up after 4 tries"):
        adapter.track([number])

    assert len(emulator.requests_to("/statuses")) == 4


# ------------------------------------------------------------------------------------------ refusals


def test_dpd_field_paths_become_oms_fields(adapter: DpdAdapter, emulator: DpdEmulator) -> None:
    refused = request(
        40_000,
        ship_to=dataclasses.replace(CUSTOMER, postal_code="99999", email="", phone=""),
        pickup_point_id="CZ99999",
    )

    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(refused, idempotency_key=new_key())

    by_field = {e.field: e.message for e in caught.value.errors}
    assert set(by_field) == {"ship_to.postal_code", "ship_to.email", "pickup_point_id", "parcels[0].weight_grams"}
    assert "postal code" in by_field["ship_to.postal_code"]
    assert "99999" in by_field["ship_to.postal_code"]  # DPD's own words come along
    assert "31.5" in by_field["parcels[0].weight_grams"]
    assert emulator.shipments_booked == 0


def test_the_second_parcel_is_named_by_its_index(adapter: DpdAdapter) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(request(1000, 35_000), idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == ["parcels[1].weight_grams"]


def test_a_wrong_customer_id_is_an_account_problem(emulator: DpdEmulator, sleeps: Sleeps) -> None:
    adapter = DpdAdapter(
        config_for(emulator, options={"customer_id": "SOMEONE-ELSE", "sender_address_id": "53001"}), sleep=sleeps
    )

    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(request(1000), idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == [""]
    assert "account settings" in caught.value.errors[0].message


def test_an_unknown_service_is_refused_locally(adapter: DpdAdapter, emulator: DpdEmulator) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(request(1000, service="express"), idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == ["service"]
    assert emulator.requests == []


def test_a_missing_sender_address_id_is_refused_locally(emulator: DpdEmulator, sleeps: Sleeps) -> None:
    adapter = DpdAdapter(config_for(emulator, options={"customer_id": emulator.customer_id}), sleep=sleeps)

    with pytest.raises(CarrierRejected, match="sender_address_id"):
        adapter.buy_label(request(1000), idempotency_key=new_key())

    assert emulator.requests_to("/shipments") == []


def test_bad_credentials_are_not_retried(bad_credentials_adapter: DpdAdapter, emulator: DpdEmulator) -> None:
    with pytest.raises(CarrierAuthFailed, match="Invalid login"):
        bad_credentials_adapter.buy_label(request(1000), idempotency_key=new_key())

    assert len(emulator.requests_to("/login")) == 1
    assert emulator.requests_to("/shipments") == []


# ------------------------------------------------------------------------------------------- voiding


def test_void_cancels_the_shipment_by_its_id(adapter: DpdAdapter, emulator: DpdEmulator) -> None:
    label = adapter.buy_label(request(1000, 2000), idempotency_key=new_key())

    adapter.void_label(label)

    (sent,) = emulator.requests_to("/cancellation")
    assert sent.method == "PUT"
    assert sent.json == {
        "buCode": "015",
        "customerId": emulator.customer_id,
        "shipmentIdList": [int(label.shipment_id)],
    }
    assert emulator.shipment(label.shipment_id)["cancelled"] is True


def test_a_parcel_in_dpds_network_cannot_be_voided(adapter: DpdAdapter, emulator: DpdEmulator) -> None:
    label = adapter.buy_label(request(1000), idempotency_key=new_key())
    emulator.advance_tracking(label.tracking_numbers[0], TrackingStatus.IN_TRANSIT)

    with pytest.raises(CarrierRejected, match="already in DPD's network") as caught:
        adapter.void_label(label)

    assert caught.value.errors[0].field == ""
    assert emulator.shipment(label.shipment_id)["cancelled"] is False


def test_a_label_without_a_shipment_id_cannot_be_voided(adapter: DpdAdapter, emulator: DpdEmulator) -> None:
    label = Label(tracking_numbers=("13950000000001",), documents=())

    with pytest.raises(CarrierRejected, match="no DPD shipment id"):
        adapter.void_label(label)

    assert emulator.requests == []


# ------------------------------------------------------------------------------------------ tracking


def test_scans_become_events_in_local_time(
    adapter: DpdAdapter, emulator: DpdEmulator, shipment_request: ShipmentRequest
) -> None:
    (number,) = adapter.buy_label(shipment_request, idempotency_key=new_key()).tracking_numbers
    emulator.advance_tracking(number, TrackingStatus.DELIVERED)

    (result,) = adapter.track([number])

    assert [e.code for e in result.events] == ["SA05", "SA07", "SA10", "SA02", "SA03", "SA13"]
    assert [e.status for e in result.events][-2:] == [TrackingStatus.OUT_FOR_DELIVERY, TrackingStatus.DELIVERED]
    assert result.events[0].location == "Praha-Chrastany"
    offset = result.events[0].occurred_at.utcoffset()
    assert offset in (timedelta(hours=1), timedelta(hours=2))  # Prague, winter or summer
    sent = emulator.requests_to("/statuses")[0]
    assert sent.method == "GET"
    assert sent.path == f"/api/v1.1/parcels/{number}/statuses"


def test_a_pickup_parcel_waits_at_the_point(adapter: DpdAdapter, emulator: DpdEmulator) -> None:
    (number,) = adapter.buy_label(request(900, pickup_point_id="CZ10203"), idempotency_key=new_key()).tracking_numbers
    emulator.advance_tracking(number, TrackingStatus.AVAILABLE_FOR_PICKUP)

    (result,) = adapter.track([number])

    assert result.status is TrackingStatus.AVAILABLE_FOR_PICKUP
    assert result.events[-1].code == "SA23"


def test_a_failed_attempt_is_an_exception(adapter: DpdAdapter, emulator: DpdEmulator) -> None:
    (number,) = adapter.buy_label(request(900), idempotency_key=new_key()).tracking_numbers
    emulator.advance_tracking(number, TrackingStatus.OUT_FOR_DELIVERY)
    emulator.advance_tracking(number, TrackingStatus.EXCEPTION)

    (result,) = adapter.track([number])

    assert result.status is TrackingStatus.EXCEPTION
    assert result.events[-1].code == "SA14"
