"""The FedEx adapter over real HTTP against its emulator: the shared contract, then what is FedEx's own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import pytest

from carriers.base import (
    Address,
    CarrierAuthFailed,
    CarrierConfig,
    CarrierRejected,
    CarrierUnavailable,
    LabelFormat,
    NotSupported,
    Parcel,
    ShipmentRequest,
    TrackingStatus,
)
from carriers.fedex import FedExAdapter, fedex_field
from tests.carriers.conformance import AdvanceTracking, CarrierAdapterConformance, closed_port, new_key
from tests.emulators import VirtualClock
from tests.emulators.fedex import FedExEmulator

SHIP_FROM = Address(
    name="Ada Lovelace",
    company="Northwind Goods",
    line1="3610 Hacks Cross Rd",
    city="Memphis",
    region="TN",
    postal_code="38125",
    country_code="US",
    phone="+1 901-555-0100",
)
SHIP_TO = Address(
    name="Grace Hopper",
    line1="1043 N Easy St",
    line2="Suite 999",
    city="Seattle",
    region="WA",
    postal_code="98101",
    country_code="US",
    email="grace@example.com",
)


def make_adapter(emulator: FedExEmulator, clock: VirtualClock, **changes: Any) -> FedExAdapter:
    max_retries = changes.pop("max_retries", 3)
    config = CarrierConfig(
        slug="fedex-main",
        api_base_url=emulator.base_url,
        credentials={"client_id": emulator.client_id, "client_secret": emulator.client_secret},
        options={"account_number": emulator.account_number},
        timeout=5.0,
    )
    return FedExAdapter(replace(config, **changes), sleep=clock.sleep, clock=clock.monotonic, max_retries=max_retries)


def shipment(*weights: int, **changes: Any) -> ShipmentRequest:
    parcels = tuple(
        Parcel(weight_grams=w, length_cm=Decimal("30"), width_cm=Decimal("20"), height_cm=Decimal("10.5"))
        for w in weights
    )
    request = ShipmentRequest(
        reference="NW-20077",
        ship_from=SHIP_FROM,
        ship_to=SHIP_TO,
        parcels=parcels,
        service="FEDEX_GROUND",
        ship_date=date(2026, 11, 23),
    )
    return replace(request, **changes)


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def emulator(clock: VirtualClock) -> Iterator[FedExEmulator]:
    running = FedExEmulator(clock=clock.monotonic)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def adapter(emulator: FedExEmulator, clock: VirtualClock) -> FedExAdapter:
    return make_adapter(emulator, clock)


@pytest.fixture
def shipment_request() -> ShipmentRequest:
    return shipment(1200)


@pytest.fixture
def multi_parcel_request() -> ShipmentRequest:
    return shipment(1200, 4500)


@pytest.fixture
def rejected_request() -> ShipmentRequest:
    return shipment(1200, 80_000, ship_to=replace(SHIP_TO, postal_code="00012"))


@pytest.fixture
def bad_credentials_adapter(emulator: FedExEmulator, clock: VirtualClock) -> FedExAdapter:
    return make_adapter(emulator, clock, credentials={"client_id": emulator.client_id, "client_secret": "nope"})


@pytest.fixture
def unreachable_adapter(emulator: FedExEmulator, clock: VirtualClock) -> FedExAdapter:
    return make_adapter(emulator, clock, api_base_url=f"http://127.0.0.1:{closed_port()}")


@pytest.fixture
def slow_adapter(clock: VirtualClock) -> Iterator[FedExAdapter]:
    slow = FedExEmulator(clock=clock.monotonic, latency=0.4)
    slow.start()
    try:
        yield make_adapter(slow, clock, timeout=0.1, max_retries=1)
    finally:
        slow.stop()


@pytest.fixture
def advance_tracking(emulator: FedExEmulator) -> AdvanceTracking:
    return emulator.advance


class TestFedExConformance(CarrierAdapterConformance):
    kind = "fedex"


# ------------------------------------------------------------------------------------------- auth


def test_the_token_is_a_form_post_and_is_cached(adapter: FedExAdapter, emulator: FedExEmulator) -> None:
    adapter.buy_label(shipment(1200), idempotency_key=new_key())
    adapter.track(["123456789012"])

    (token,) = emulator.requests_to("/oauth/token")
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token.text) == {
        "grant_type": ["client_credentials"],
        "client_id": [emulator.client_id],
        "client_secret": [emulator.client_secret],
    }
    calls = [r for r in emulator.requests if r.path != "/oauth/token"]
    assert len({r.headers["authorization"] for r in calls}) == 1


def test_an_expired_token_is_replaced_before_it_is_refused(
    adapter: FedExAdapter, emulator: FedExEmulator, clock: VirtualClock
) -> None:
    adapter.track(["123456789012"])
    clock.advance(3600)

    adapter.track(["123456789012"])

    assert len(emulator.requests_to("/oauth/token")) == 2
    assert [r.status for r in emulator.requests_to("/track/")] == [200, 200]


def test_a_revoked_token_is_fetched_again_and_the_shipment_booked_once(
    adapter: FedExAdapter, emulator: FedExEmulator
) -> None:
    adapter.track(["123456789012"])
    emulator.revoke_tokens()

    adapter.buy_label(shipment(1200), idempotency_key=new_key())

    assert [r.status for r in emulator.requests_to("/ship/")] == [401, 200]
    assert emulator.shipments_booked == 1


def test_an_account_fedex_does_not_know_is_an_auth_failure(emulator: FedExEmulator, clock: VirtualClock) -> None:
    adapter = make_adapter(emulator, clock, options={"account_number": "000000000"})

    with pytest.raises(CarrierAuthFailed):
        adapter.buy_label(shipment(1200), idempotency_key=new_key())


# ----------------------------------------------------------------------------------------- buying


def test_the_ship_request_speaks_fedex(adapter: FedExAdapter, emulator: FedExEmulator) -> None:
    label = adapter.buy_label(shipment(1200, 4501), idempotency_key="attempt-3")

    (sent,) = emulator.requests_to("/ship/v1/shipments")
    assert sent.headers["x-customer-transaction-id"] == "attempt-3"
    body = sent.json
    assert body["labelResponseOptions"] == "LABEL"
    assert body["accountNumber"] == {"value": emulator.account_number}
    requested = body["requestedShipment"]
    assert requested["serviceType"] == "FEDEX_GROUND"
    assert requested["shipDatestamp"] == "2026-11-23"
    assert requested["labelSpecification"] == {"imageType": "PDF", "labelStockType": "PAPER_4X6"}
    assert requested["shipper"]["contact"] == {
        "personName": "Ada Lovelace",
        "companyName": "Northwind Goods",
        "phoneNumber": "+19015550100",
    }
    assert requested["recipients"] == [
        {
            "contact": {"personName": "Grace Hopper", "emailAddress": "grace@example.com"},
            "address": {
                "streetLines": ["1043 N Easy St", "Suite 999"],
                "city": "Seattle",
                "stateOrProvinceCode": "WA",
                "postalCode": "98101",
                "countryCode": "US",
            },
        }
    ]
    assert requested["totalPackageCount"] == 2
    assert requested["requestedPackageLineItems"] == [
        {
            "sequenceNumber": 1,
            "weight": {"units": "KG", "value": 1.2},
            "dimensions": {"length": 30, "width": 20, "height": 11, "units": "CM"},
            "customerReferences": [{"customerReferenceType": "CUSTOMER_REFERENCE", "value": "NW-20077"}],
        },
        {
            "sequenceNumber": 2,
            "weight": {"units": "KG", "value": 4.6},
            "dimensions": {"length": 30, "width": 20, "height": 11, "units": "CM"},
            "customerReferences": [{"customerReferenceType": "CUSTOMER_REFERENCE", "value": "NW-20077"}],
        },
    ]
    (booked,) = emulator.shipments
    assert label.tracking_numbers == tuple(piece.tracking_number for piece in booked.pieces)
    assert [d.content for d in label.documents] == [piece.image for piece in booked.pieces]
    assert label.shipment_id == booked.master_tracking_number
    assert label.cost == sum((piece.net_charge for piece in booked.pieces), Decimal(0))
    assert label.currency == "USD"
    assert "encodedLabel" not in str(label.raw), "the label bytes are kept once, as the documents"


def test_zpl_accounts_ask_for_zplii_on_thermal_stock(emulator: FedExEmulator, clock: VirtualClock) -> None:
    adapter = make_adapter(emulator, clock, label_format=LabelFormat.ZPL)

    label = adapter.buy_label(shipment(1200), idempotency_key=new_key())

    spec = emulator.requests_to("/ship/v1/shipments")[0].json["requestedShipment"]["labelSpecification"]
    assert spec == {"imageType": "ZPLII", "labelStockType": "STOCK_4X6"}
    assert label.documents[0].content.startswith(b"^XA")


def test_a_purchase_is_never_sent_twice(adapter: FedExAdapter, emulator: FedExEmulator, clock: VirtualClock) -> None:
    emulator.fail_next(503, after=True, path_contains="/ship/v1/shipments")  # booked, answer lost

    with pytest.raises(CarrierUnavailable, match="unknown"):
        adapter.buy_label(shipment(1200), idempotency_key=new_key())

    assert len(emulator.requests_to("/ship/v1/shipments")) == 1
    assert emulator.shipments_booked == 1, "the outcome is unknown to the OMS, not undone"
    assert clock.sleeps == []


def test_a_timeout_on_a_purchase_is_not_retried(clock: VirtualClock) -> None:
    slow = FedExEmulator(clock=clock.monotonic)
    slow.start()
    try:
        adapter = make_adapter(slow, clock, timeout=0.2)
        adapter.track(["123456789012"])  # the token, while the emulator is quick
        slow.latency = 0.4

        with pytest.raises(CarrierUnavailable, match="unknown"):
            adapter.buy_label(shipment(1200), idempotency_key=new_key())

        deadline = time.monotonic() + 3
        while not (slow.shipments_booked and slow.requests_to("/ship/")) and time.monotonic() < deadline:
            time.sleep(0.02)  # FedEx goes on booking after we stopped waiting
        assert slow.shipments_booked == 1
        assert len(slow.requests_to("/ship/")) == 1
    finally:
        slow.stop()


def test_a_throttle_is_unavailable_with_retry_after(adapter: FedExAdapter, emulator: FedExEmulator) -> None:
    emulator.fail_next(429, retry_after="30", path_contains="/track/")

    with pytest.raises(CarrierUnavailable) as caught:
        adapter.track(["123456789012"])

    assert caught.value.retry_after == 30


def test_refusals_name_the_oms_fields(adapter: FedExAdapter, emulator: FedExEmulator) -> None:
    request = shipment(1200, 80_000, ship_to=replace(SHIP_TO, postal_code="00012"))

    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(request, idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == ["ship_to.postal_code", "parcels[1].weight_grams"]
    assert "Postal-City Mismatch" in str(caught.value)
    assert emulator.shipments_booked == 0


def test_an_unknown_service_is_the_service_field(adapter: FedExAdapter) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(shipment(1200, service="FEDEX_TELEPORT"), idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == ["service"]


@pytest.mark.parametrize(
    ("code", "parameters", "field"),
    [
        ("SHIP.RECIPIENT.POSTALCITY.MISMATCH", [], "ship_to.postal_code"),
        ("SHIPPER.POSTALSTATE.MISMATCH", [], "ship_from.postal_code"),
        ("RECIPIENT.STATEORPROVINCECODE.INVALID", [], "ship_to.region"),
        ("SHIPPER.COUNTRY.INVALID", [], "ship_from.country_code"),
        ("PACKAGE.WEIGHT.EXCEEDED", [{"key": "sequenceNumber", "value": "3"}], "parcels[2].weight_grams"),
        (
            "INVALID.INPUT.EXCEPTION",
            [{"key": "requestedShipment.recipients[0].address.city", "value": ""}],
            "ship_to.city",
        ),
        (
            "INVALID.INPUT.EXCEPTION",
            [{"key": "INVALID_FIELD", "value": "requestedShipment.requestedPackageLineItems[1].dimensions.height"}],
            "parcels[1].height_cm",
        ),
        ("SERVICETYPE.NOT.SUPPORTED", [], "service"),
        ("ACCOUNT.NUMBER.MISMATCH", [], ""),
    ],
)
def test_fedex_errors_map_to_oms_fields(code: str, parameters: list[dict[str, str]], field: str) -> None:
    assert fedex_field(code, parameters) == field


def test_find_label_is_not_offered(adapter: FedExAdapter) -> None:
    assert adapter.idempotent_purchase is False
    with pytest.raises(NotSupported):
        adapter.find_label(shipment(1200), idempotency_key=new_key())


# ----------------------------------------------------------------------------------------- voiding


def test_void_cancels_the_whole_shipment_by_its_master_number(adapter: FedExAdapter, emulator: FedExEmulator) -> None:
    label = adapter.buy_label(shipment(1200, 4500), idempotency_key=new_key())

    adapter.void_label(label)

    (sent,) = emulator.requests_to("/ship/v1/shipments/cancel")
    assert sent.method == "PUT"
    assert sent.json == {
        "accountNumber": {"value": emulator.account_number},
        "emailShipment": False,
        "trackingNumber": label.shipment_id,
        "deletionControl": "DELETE_ALL_PACKAGES",
    }
    results = adapter.track(label.tracking_numbers)
    assert [r.status for r in results] == [TrackingStatus.CANCELLED] * 2


def test_a_tendered_shipment_cannot_be_voided(adapter: FedExAdapter, emulator: FedExEmulator) -> None:
    label = adapter.buy_label(shipment(1200), idempotency_key=new_key())
    emulator.advance(label.tracking_numbers[0], TrackingStatus.IN_TRANSIT)

    with pytest.raises(CarrierRejected, match="tendered"):
        adapter.void_label(label)


# ---------------------------------------------------------------------------------------- tracking


def test_tracking_reads_scan_events_with_their_offsets(adapter: FedExAdapter, emulator: FedExEmulator) -> None:
    (number,) = adapter.buy_label(shipment(1200), idempotency_key=new_key()).tracking_numbers
    emulator.advance(number, TrackingStatus.DELIVERED)

    (result,) = adapter.track([number])

    (sent,) = emulator.requests_to("/track/v1/trackingnumbers")
    assert sent.json == {
        "includeDetailedScans": True,
        "trackingInfo": [{"trackingNumberInfo": {"trackingNumber": number}}],
    }
    assert [e.code for e in result.events] == ["OC", "PU", "AR", "DP", "OD", "DL"]
    scans = emulator.shipment(number).pieces[0].scans
    assert [e.occurred_at for e in result.events] == [s.at for s in scans]
    assert result.events[0].occurred_at.utcoffset() is not None
    assert result.events[2].location == "MEMPHIS, TN, 38118, US"
    assert result.status is TrackingStatus.DELIVERED
    assert result.estimated_delivery is not None


@pytest.mark.parametrize(
    "status",
    [TrackingStatus.EXCEPTION, TrackingStatus.AVAILABLE_FOR_PICKUP, TrackingStatus.RETURNED],
)
def test_tracking_maps_the_off_road_statuses(
    adapter: FedExAdapter, emulator: FedExEmulator, status: TrackingStatus
) -> None:
    (number,) = adapter.buy_label(shipment(1200), idempotency_key=new_key()).tracking_numbers
    emulator.advance(number, status)

    (result,) = adapter.track([number])

    assert result.status is status
    assert result.events[-1].status is status


def test_tracking_goes_in_batches_of_thirty(adapter: FedExAdapter, emulator: FedExEmulator) -> None:
    (number,) = adapter.buy_label(shipment(1200), idempotency_key=new_key()).tracking_numbers
    unknown = [f"{700000000000 + i}" for i in range(64)]

    results = adapter.track([*unknown[:40], number, *unknown[40:], number])

    assert [r.tracking_number for r in results] == [number]
    assert [len(r.json["trackingInfo"]) for r in emulator.requests_to("/track/")] == [30, 30, 5]


def test_tracking_retries_an_outage(adapter: FedExAdapter, emulator: FedExEmulator, clock: VirtualClock) -> None:
    emulator.fail_next(503, count=2, path_contains="/track/")

    assert adapter.track(["123456789012"]) == []

    assert [r.status for r in emulator.requests_to("/track/")] == [503, 503, 200]
    assert len(clock.sleeps) == 2


# ------------------------------------------------------------------------------------------- rates


def test_rates_are_the_account_rates_with_transit_days(adapter: FedExAdapter, emulator: FedExEmulator) -> None:
    rates = {rate.service: rate for rate in adapter.rates(shipment(1200, 4500))}

    ground = rates["FEDEX_GROUND"]
    assert ground.amount == Decimal("26.16")  # ACCOUNT (2 x 9.80 + 1.15/kg x 5.7 kg), not LIST
    assert ground.currency == "USD"
    assert ground.description == "FedEx Ground"
    assert ground.delivery_days == 3
    assert rates["PRIORITY_OVERNIGHT"].delivery_days == 1
    body = emulator.requests_to("/rate/v1/rates/quotes")[0].json
    assert body["requestedShipment"]["recipient"]["address"]["postalCode"] == "98101"
    assert [i["weight"] for i in body["requestedShipment"]["requestedPackageLineItems"]] == [
        {"units": "KG", "value": 1.2},
        {"units": "KG", "value": 4.5},
    ]


def test_rates_for_a_bad_address_are_refused_with_the_field(adapter: FedExAdapter) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter.rates(shipment(1200, ship_to=replace(SHIP_TO, postal_code="00012")))

    assert [e.field for e in caught.value.errors] == ["ship_to.postal_code"]


# ------------------------------------------------------------------------------- whether a call was sent


def test_a_ship_call_refused_before_connecting_never_reached_fedex(
    adapter: FedExAdapter, emulator: FedExEmulator
) -> None:
    adapter.track(["123456789012"])  # the token is fetched and kept
    adapter.http.close()  # no kept-alive connection to the emulator either
    emulator.stop()

    with pytest.raises(CarrierUnavailable, match="never reached FedEx") as caught:
        adapter.buy_label(shipment(1200), idempotency_key=new_key())

    assert caught.value.request_sent is False


def test_a_ship_call_that_fails_after_booking_may_have_booked(adapter: FedExAdapter, emulator: FedExEmulator) -> None:
    emulator.fail_next(503, after=True, path_contains="/ship/v1/shipments")

    with pytest.raises(CarrierUnavailable, match="unknown") as caught:
        adapter.buy_label(shipment(1200), idempotency_key=new_key())

    assert caught.value.request_sent is True
    assert emulator.shipments_booked == 1
    assert len(emulator.requests_to("/ship/v1/shipments")) == 1  # sent once, never again


def test_a_token_outage_is_known_not_to_have_booked(
    adapter: FedExAdapter, emulator: FedExEmulator, clock: VirtualClock
) -> None:
    emulator.fail_next(503, count=4, path_contains="/oauth/token")

    with pytest.raises(CarrierUnavailable) as caught:
        adapter.buy_label(shipment(1200), idempotency_key=new_key())

    assert caught.value.request_sent is False
    assert emulator.requests_to("/ship/") == []
    assert len(clock.sleeps) == 3
