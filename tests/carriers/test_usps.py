"""The USPS adapter over real HTTP against its emulator: the shared contract, then what is USPS's own."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

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
from carriers.usps import USPSAdapter, parse_label_response, usps_field
from tests.carriers.conformance import AdvanceTracking, CarrierAdapterConformance, closed_port, new_key
from tests.emulators import VirtualClock
from tests.emulators.usps import USPSEmulator

SHIP_FROM = Address(
    name="Ada Lovelace",
    company="Northwind Goods",
    line1="4120 Bingham Ave",
    city="Saint Louis",
    region="MO",
    postal_code="63116",
    country_code="US",
    phone="+1 (314) 555-0100",
)
SHIP_TO = Address(
    name="Joe Q Doe",
    line1="1100 Wyoming St",
    line2="Suite 150",
    city="St. Louis",
    region="MO",
    postal_code="63118-2628",
    country_code="US",
    email="joe@example.com",
)


def make_adapter(emulator: USPSEmulator, clock: VirtualClock, **changes: Any) -> USPSAdapter:
    max_retries = changes.pop("max_retries", 3)
    config = CarrierConfig(
        slug="usps-main",
        api_base_url=emulator.base_url,
        credentials={"client_id": emulator.client_id, "client_secret": emulator.client_secret},
        options={"crid": emulator.crid, "mid": emulator.mid, "account_number": emulator.account_number},
        timeout=5.0,
    )
    return USPSAdapter(replace(config, **changes), sleep=clock.sleep, clock=clock.monotonic, max_retries=max_retries)


def shipment(*weights: int, **changes: Any) -> ShipmentRequest:
    parcels = tuple(
        Parcel(weight_grams=w, length_cm=Decimal("30"), width_cm=Decimal("20"), height_cm=Decimal("10.5"))
        for w in weights
    )
    request = ShipmentRequest(
        reference="NW-10042",
        ship_from=SHIP_FROM,
        ship_to=SHIP_TO,
        parcels=parcels,
        service="USPS_GROUND_ADVANTAGE",
        ship_date=date(2026, 11, 23),
        value=Decimal("49.90"),
        currency="USD",
    )
    return replace(request, **changes)


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def emulator(clock: VirtualClock) -> Iterator[USPSEmulator]:
    running = USPSEmulator(clock=clock.monotonic)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def adapter(emulator: USPSEmulator, clock: VirtualClock) -> USPSAdapter:
    return make_adapter(emulator, clock)


@pytest.fixture
def shipment_request() -> ShipmentRequest:
    return shipment(680)


@pytest.fixture
def multi_parcel_request() -> ShipmentRequest:
    return shipment(680, 2300)


@pytest.fixture
def rejected_request() -> ShipmentRequest:
    return shipment(40_000, ship_to=replace(SHIP_TO, postal_code="00012"))


@pytest.fixture
def bad_credentials_adapter(emulator: USPSEmulator, clock: VirtualClock) -> USPSAdapter:
    return make_adapter(emulator, clock, credentials={"client_id": emulator.client_id, "client_secret": "wrong"})


@pytest.fixture
def unreachable_adapter(emulator: USPSEmulator, clock: VirtualClock) -> USPSAdapter:
    return make_adapter(emulator, clock, api_base_url=f"http://127.0.0.1:{closed_port()}")


@pytest.fixture
def slow_adapter(clock: VirtualClock) -> Iterator[USPSAdapter]:
    slow = USPSEmulator(clock=clock.monotonic, latency=0.4)
    slow.start()
    try:
        yield make_adapter(slow, clock, timeout=0.1, max_retries=1)
    finally:
        slow.stop()


@pytest.fixture
def advance_tracking(emulator: USPSEmulator) -> AdvanceTracking:
    return emulator.advance


class TestUSPSConformance(CarrierAdapterConformance):
    kind = "usps"


# ------------------------------------------------------------------------------------------- auth


def test_one_token_and_one_payment_authorization_serve_many_calls(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    adapter.buy_label(shipment(500), idempotency_key=new_key())
    adapter.buy_label(shipment(900), idempotency_key=new_key())

    (token,) = emulator.requests_to("/oauth2/v3/token")
    assert token.json == {
        "grant_type": "client_credentials",
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
    }
    (payment,) = emulator.requests_to("/payments/v3/payment-authorization")
    roles = {role["roleName"]: role for role in payment.json["roles"]}
    assert set(roles) == {"PAYER", "LABEL_OWNER"}
    assert roles["PAYER"]["CRID"] == emulator.crid
    assert roles["PAYER"]["MID"] == emulator.mid
    assert roles["PAYER"]["accountType"] == "EPS"
    assert roles["PAYER"]["accountNumber"] == emulator.account_number
    assert payment.headers["authorization"].startswith("Bearer ")


def test_an_expired_token_is_replaced(adapter: USPSAdapter, emulator: USPSEmulator, clock: VirtualClock) -> None:
    adapter.track(["9400100000000000000000"])
    clock.advance(emulator.token_lifetime + 1)

    adapter.track(["9400100000000000000000"])

    assert len(emulator.requests_to("/oauth2/v3/token")) == 2
    assert [r.status for r in emulator.requests_to("/tracking/v3/")] == [400, 400], "no call went out stale"


def test_a_revoked_token_is_fetched_again_once(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    adapter.buy_label(shipment(500), idempotency_key=new_key())
    emulator.revoke_tokens()

    label = adapter.buy_label(shipment(500), idempotency_key=new_key())

    assert label.tracking_numbers
    assert len(emulator.requests_to("/oauth2/v3/token")) == 2
    assert len(emulator.requests_to("/payments/v3/payment-authorization")) == 2
    assert [r.status for r in emulator.requests_to("/labels/v3/label")] == [200, 401, 200]


def test_a_refused_payment_account_is_an_auth_failure(emulator: USPSEmulator, clock: VirtualClock) -> None:
    adapter = make_adapter(emulator, clock, options={"crid": emulator.crid, "mid": "1", "account_number": "2"})

    with pytest.raises(CarrierAuthFailed, match="payment account"):
        adapter.buy_label(shipment(500), idempotency_key=new_key())
    assert emulator.shipments_booked == 0


# ----------------------------------------------------------------------------------------- buying


def test_the_label_request_speaks_usps(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    label = adapter.buy_label(shipment(680), idempotency_key="attempt-7")

    (sent,) = emulator.requests_to("/labels/v3/label")
    assert sent.headers["x-idempotency-key"] == "attempt-7:0"
    assert sent.headers["x-payment-authorization-token"]
    body = sent.json
    assert body["imageInfo"]["imageType"] == "PDF"
    assert body["imageInfo"]["labelType"] == "4X6LABEL"
    assert body["toAddress"] == {
        "firstName": "Joe Q",
        "lastName": "Doe",
        "streetAddress": "1100 Wyoming St",
        "secondaryAddress": "Suite 150",
        "city": "St. Louis",
        "state": "MO",
        "ZIPCode": "63118",
        "ZIPPlus4": "2628",
        "email": "joe@example.com",
    }
    assert body["fromAddress"]["firm"] == "Northwind Goods"
    assert body["fromAddress"]["phone"] == "3145550100"
    package = body["packageDescription"]
    assert package["mailClass"] == "USPS_GROUND_ADVANTAGE"
    assert (package["weightUOM"], package["weight"]) == ("lb", 1.5)  # 680 g = 1.4991 lb, rounded up
    assert (package["dimensionsUOM"], package["length"], package["width"], package["height"]) == ("in", 11.9, 7.9, 4.2)
    assert package["mailingDate"] == "2026-11-23"
    assert package["customerReference"] == [{"referenceNumber": "NW-10042", "printReferenceNumber": True}]
    assert package["packageOptions"] == {"packageValue": 49.9}
    stored = emulator.label(label.tracking_numbers[0])
    assert label.documents[0].content == stored.image
    assert label.cost == Decimal(str(stored.metadata["postage"]))
    assert label.currency == "USD"
    labels = label.raw["labels"]
    assert isinstance(labels, list)
    assert labels[0]["SKU"] == stored.metadata["SKU"]


def test_zpl_accounts_ask_for_zpl_203_dpi(emulator: USPSEmulator, clock: VirtualClock) -> None:
    adapter = make_adapter(emulator, clock, label_format=LabelFormat.ZPL)

    label = adapter.buy_label(shipment(680), idempotency_key=new_key())

    assert emulator.requests_to("/labels/v3/label")[0].json["imageInfo"]["imageType"] == "ZPL203DPI"
    assert label.documents[0].content.startswith(b"^XA")
    assert label.documents[0].format is LabelFormat.ZPL


def test_each_parcel_is_its_own_label_with_its_own_key(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    label = adapter.buy_label(shipment(680, 2300, 900), idempotency_key="order-55-try-1")

    sent = emulator.requests_to("/labels/v3/label")
    assert [r.headers["x-idempotency-key"] for r in sent] == [f"order-55-try-1:{i}" for i in range(3)]
    assert [r.json["packageDescription"]["weight"] for r in sent] == [1.5, 5.08, 1.99]
    assert emulator.shipments_booked == 3
    assert [d.tracking_number for d in label.documents] == list(label.tracking_numbers)
    assert label.cost == sum(Decimal(str(emulator.label(n).metadata["postage"])) for n in label.tracking_numbers)


def test_a_lost_answer_is_retried_with_the_same_key_and_books_once(
    adapter: USPSAdapter, emulator: USPSEmulator, clock: VirtualClock
) -> None:
    emulator.fail_next(503, after=True, path_contains="/labels/v3/label")  # booked, but the answer is lost

    label = adapter.buy_label(shipment(680), idempotency_key="attempt-9")

    sent = emulator.requests_to("/labels/v3/label")
    assert [r.status for r in sent] == [503, 200]
    assert {r.headers["x-idempotency-key"] for r in sent} == {"attempt-9:0"}
    assert emulator.shipments_booked == 1
    assert label.tracking_numbers == (emulator.labels[0].tracking_number,)
    assert len(clock.sleeps) == 1, "one backoff between the two tries"


def test_a_retried_attempt_buys_only_what_is_missing(emulator: USPSEmulator, clock: VirtualClock) -> None:
    adapter = make_adapter(emulator, clock, max_retries=0)
    request = shipment(680, 900)
    emulator.fail_next(503, after=True, path_contains="/labels/v3/label")  # parcel 0 booked, answer lost

    with pytest.raises(CarrierUnavailable):
        adapter.buy_label(request, idempotency_key="whole")
    label = adapter.buy_label(request, idempotency_key="whole")  # the OMS retries the same attempt

    assert emulator.shipments_booked == 2
    assert label.tracking_numbers == tuple(stored.tracking_number for stored in emulator.labels)
    keys = [r.headers["x-idempotency-key"] for r in emulator.requests_to("/labels/v3/label")]
    assert keys == ["whole:0", "whole:0", "whole:1"]


def test_the_same_key_with_another_shipment_is_refused(adapter: USPSAdapter) -> None:
    adapter.buy_label(shipment(680), idempotency_key="reused")

    with pytest.raises(CarrierRejected):
        adapter.buy_label(shipment(681), idempotency_key="reused")


def test_a_throttle_is_unavailable_with_retry_after(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    emulator.fail_next(429, retry_after="17", path_contains="/labels/v3/label")

    with pytest.raises(CarrierUnavailable) as caught:
        adapter.buy_label(shipment(680), idempotency_key=new_key())

    assert caught.value.retry_after == 17
    assert len(emulator.requests_to("/labels/v3/label")) == 1, "a 429 is for the queue to wait out"


def test_refusals_name_the_oms_fields(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    request = shipment(680, 40_000, ship_to=replace(SHIP_TO, postal_code="00012"))

    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(request, idempotency_key=new_key())

    # Parcel 0 is refused for the ZIP code alone; nothing was bought.
    assert [e.field for e in caught.value.errors] == ["ship_to.postal_code"]
    assert "00012" in caught.value.errors[0].message
    assert emulator.shipments_booked == 0


def test_a_refusal_after_a_bought_parcel_refunds_it(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(shipment(680, 40_000), idempotency_key=new_key())

    assert [e.field for e in caught.value.errors] == ["parcels[1].weight_grams"]
    (bought,) = emulator.labels
    assert bought.cancelled, "the first parcel's label was refunded"


def test_foreign_addresses_are_refused_before_any_call(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    abroad = replace(SHIP_TO, country_code="CZ", postal_code="110 00", region="")

    with pytest.raises(CarrierRejected) as caught:
        adapter.buy_label(shipment(680, ship_to=abroad, service="FEDEX_GROUND"), idempotency_key=new_key())

    assert {e.field for e in caught.value.errors} == {"ship_to.country_code", "service"}
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("parameter", "field"),
    [
        ("toAddress.ZIPCode", "ship_to.postal_code"),
        ("$.fromAddress.streetAddress", "ship_from.line1"),
        ("/toAddress/state", "ship_to.region"),
        ("toAddress.firstName", "ship_to.name"),
        ("packageDescription.weight", "parcels[2].weight_grams"),
        ("packageDescription.length", "parcels[2].length_cm"),
        ("packageDescription.mailClass", "service"),
        ("packageDescription.mailingDate", "ship_date"),
        ("imageInfo.imageType", ""),
        ("", ""),
    ],
)
def test_usps_parameters_map_to_oms_fields(parameter: str, field: str) -> None:
    assert usps_field(parameter, parcel_index=2) == field


def test_the_multipart_answer_as_usps_documents_it() -> None:
    """The shape of USPS/api-examples' domesticlabel-v3-response.json: no part names, a stray encoding header."""
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    body = (
        b"--726UYUDSQB6JWJXFDY\r\nContent-type: application/json\r\n\r\n"
        b'{"trackingNumber": "9205590109769900012613", "postage": 7.64, "SKU": "DPXX0XXXXC01005"}\r\n'
        b"--726UYUDSQB6JWJXFDY\r\nFile Name: label.pdf\r\nContent-Type: application/pdf\r\n"
        b"Content-Transfer-Encoding: encode\r\n\r\n" + base64.b64encode(pdf) + b"\r\n--726UYUDSQB6JWJXFDY--\r\n"
    )

    metadata, image = parse_label_response("multipart/form-data; boundary=726UYUDSQB6JWJXFDY", body)

    assert metadata["trackingNumber"] == "9205590109769900012613"
    assert image == pdf


# ----------------------------------------------------------------------------------------- voiding


def test_void_cancels_every_parcels_label(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    label = adapter.buy_label(shipment(680, 900), idempotency_key=new_key())

    adapter.void_label(label)

    assert [r.path for r in emulator.requests_to("/labels/v3/label/")] == [
        f"/labels/v3/label/{n}" for n in label.tracking_numbers
    ]
    assert all(r.method == "DELETE" for r in emulator.requests_to("/labels/v3/label/"))
    assert all(emulator.label(n).cancelled for n in label.tracking_numbers)


def test_a_scanned_label_cannot_be_voided(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    label = adapter.buy_label(shipment(680), idempotency_key=new_key())
    emulator.advance(label.tracking_numbers[0], TrackingStatus.IN_TRANSIT)

    with pytest.raises(CarrierRejected, match="scanned"):
        adapter.void_label(label)


# ---------------------------------------------------------------------------------------- tracking


def test_tracking_reads_detail_events_in_utc(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    (number,) = adapter.buy_label(shipment(680), idempotency_key=new_key()).tracking_numbers
    emulator.advance(number, TrackingStatus.DELIVERED)

    (result,) = adapter.track([number])

    (sent,) = emulator.requests_to("/tracking/v3/tracking/")
    assert sent.query == {"expand": ["DETAIL"]}
    assert [e.code for e in result.events] == ["MA", "03", "10", "OF", "01"]
    assert [e.status for e in result.events] == [
        TrackingStatus.PRE_TRANSIT,
        TrackingStatus.IN_TRANSIT,
        TrackingStatus.IN_TRANSIT,
        TrackingStatus.OUT_FOR_DELIVERY,
        TrackingStatus.DELIVERED,
    ]
    scans = emulator.label(number).scans
    assert [e.occurred_at for e in result.events] == [s.at for s in scans]
    assert all(e.occurred_at.utcoffset() is not None for e in result.events)
    assert result.events[-1].location == "ST. LOUIS, MO, 63118"
    assert result.events[-1].description == "Delivered, Front Door/Porch"
    assert result.estimated_delivery == (scans[0].at + timedelta(days=3)).date()


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (TrackingStatus.EXCEPTION, "Alert"),
        (TrackingStatus.AVAILABLE_FOR_PICKUP, "Available for Pickup"),
        (TrackingStatus.RETURNED, "Return to Sender"),
    ],
)
def test_tracking_maps_the_off_road_statuses(
    adapter: USPSAdapter, emulator: USPSEmulator, status: TrackingStatus, category: str
) -> None:
    (number,) = adapter.buy_label(shipment(680), idempotency_key=new_key()).tracking_numbers
    emulator.advance(number, status)

    (result,) = adapter.track([number])

    assert result.status is status
    assert result.events[-1].status is status


def test_a_voided_label_tracks_as_cancelled(adapter: USPSAdapter) -> None:
    label = adapter.buy_label(shipment(680), idempotency_key=new_key())
    adapter.void_label(label)

    (result,) = adapter.track(label.tracking_numbers)

    assert result.status is TrackingStatus.CANCELLED


def test_tracking_retries_an_outage(adapter: USPSAdapter, emulator: USPSEmulator, clock: VirtualClock) -> None:
    (number,) = adapter.buy_label(shipment(680), idempotency_key=new_key()).tracking_numbers
    emulator.fail_next(502, count=2, path_contains="/tracking/")

    (result,) = adapter.track([number])

    assert result.status is TrackingStatus.PRE_TRANSIT
    assert [r.status for r in emulator.requests_to("/tracking/")] == [502, 502, 200]
    assert len(clock.sleeps) == 2
    assert clock.sleeps[1] >= clock.sleeps[0] / 2, "backoff grows (with jitter)"


def test_tracking_skips_what_is_not_a_usps_number(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    assert adapter.track(["../labels/v3/label", ""]) == []
    assert emulator.requests_to("/tracking/") == []


# ------------------------------------------------------------------------------------------- rates


def test_rates_quote_each_mail_class_for_all_parcels(emulator: USPSEmulator, clock: VirtualClock) -> None:
    emulator.unavailable_classes = frozenset({"MEDIA_MAIL"})
    adapter = make_adapter(emulator, clock)

    rates = {rate.service: rate for rate in adapter.rates(shipment(680, 2300))}

    assert set(rates) == set(USPSAdapter.services) - {"MEDIA_MAIL"}
    ground = rates["USPS_GROUND_ADVANTAGE"]
    assert type(ground.amount) is Decimal
    assert ground.amount == Decimal("6.68") + Decimal("9.72")  # 5.40 + 0.85/lb for 1.5 lb, and for 5.08 lb
    assert ground.currency == "USD"
    assert ground.description == "USPS Ground Advantage Machinable Single-piece"
    searches = [r.json for r in emulator.requests_to("/prices/v3/base-rates/search")]
    assert {(s["originZIPCode"], s["destinationZIPCode"]) for s in searches} == {("63116", "63118")}
    assert {s["accountNumber"] for s in searches} == {emulator.account_number}


def test_find_label_is_not_offered_the_key_is(adapter: USPSAdapter) -> None:
    with pytest.raises(NotSupported):
        adapter.find_label(shipment(680), idempotency_key=new_key())


def test_labels_are_stamped_with_todays_date_when_none_is_given(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    adapter.buy_label(shipment(680, ship_date=None), idempotency_key=new_key())

    sent = emulator.requests_to("/labels/v3/label")[0].json
    assert sent["packageDescription"]["mailingDate"] == datetime.now(UTC).date().isoformat()


# ------------------------------------------------------------------------------- whether a call was sent


def test_a_label_call_refused_before_connecting_never_reached_usps(
    adapter: USPSAdapter, emulator: USPSEmulator, clock: VirtualClock
) -> None:
    adapter.rates(shipment(680))  # the tokens are fetched and kept
    adapter.http.close()  # no kept-alive connection to the emulator either
    emulator.stop()

    with pytest.raises(CarrierUnavailable, match="never reached USPS") as caught:
        adapter.buy_label(shipment(680), idempotency_key=new_key())

    assert caught.value.request_sent is False
    assert len(clock.sleeps) == 3  # a label call is safe to retry (the idempotency key): it was, then given up


def test_a_throttled_second_parcel_still_counts_as_sent(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    key = new_key()
    emulator.fail_next(
        429,
        retry_after="5",
        path_contains="/labels/v3/label",
        when=lambda r: r.headers["x-idempotency-key"] == f"{key}:1",
    )

    with pytest.raises(CarrierUnavailable) as caught:
        adapter.buy_label(shipment(680, 2300), idempotency_key=key)

    assert caught.value.request_sent is True  # the first parcel's label was bought in this attempt
    assert caught.value.retry_after == 5
    assert emulator.shipments_booked == 1


def test_a_throttled_label_call_did_nothing(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    emulator.fail_next(429, retry_after="5", path_contains="/labels/v3/label")

    with pytest.raises(CarrierUnavailable) as caught:
        adapter.buy_label(shipment(680), idempotency_key=new_key())

    assert caught.value.request_sent is False
    assert emulator.shipments_booked == 0


def test_a_token_outage_is_known_not_to_have_bought(adapter: USPSAdapter, emulator: USPSEmulator) -> None:
    emulator.fail_next(503, count=4, path_contains="/oauth2/v3/token")

    with pytest.raises(CarrierUnavailable, match="gave up after 4 tries") as caught:
        adapter.buy_label(shipment(680), idempotency_key=new_key())

    assert caught.value.request_sent is False
    assert emulator.requests_to("/labels/") == []
