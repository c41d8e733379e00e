"""The Shopify adapter over real HTTP against its emulator: the shared contract, then Shopify's own."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from channels_adapters.base import (
    AuthenticationFailed,
    ChannelAddress,
    ChannelConfig,
    ChannelError,
    ChannelProduct,
    ChannelStock,
    InvalidPayload,
    InvalidSignature,
    LocalBucket,
    PaymentStatus,
    RateLimiter,
    StockQuantity,
    Throttled,
    Tracking,
)
from channels_adapters.shopify import API_VERSION, ShopifyAdapter
from channels_adapters.shopify.adapter import (
    AVAILABLE_COST_PER_ITEM,
    FULFILLMENT_CREATE_COST,
    FULFILLMENT_ORDER_LINES_PAGE_SIZE,
    FULFILLMENT_ORDERS_PAGE_SIZE,
    LINE_ITEMS_PAGE_SIZE,
    ORDER_FULFILLMENTS_LIMIT,
    ORDERS_PAGE_SIZE,
    PRODUCTS_PAGE_SIZE,
    SET_AVAILABLE_COST,
    STALE_RETRIES,
    STOCK_PAGE_SIZE,
    fulfillment_orders_cost,
    products_cost,
    stock_levels_cost,
)
from channels_adapters.shopify.client import PACE_MARGIN, THROTTLE_JITTER, ShopifyGraphQLClient
from channels_adapters.shopify.mappers import tracking_company
from tests.channels_adapters.conformance import (
    ChannelAdapterConformance,
    ChannelQuantity,
    DriftStock,
    OrderFulfillment,
    SeedFulfillableOrder,
    SeedStock,
    assert_well_formed,
)
from tests.emulators import VirtualClock
from tests.emulators.shopify import ShopifyEmulator, order_payload, webhook_delivery

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
CURRENT_SECRET = "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"
PREVIOUS_SECRET = "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"
ORDER_FIXTURES = [
    "orders_create.json",
    "orders_updated.json",
    "orders_paid.json",
    "orders_cancelled.json",
    "orders_create_digital.json",
    "orders_create_eur.json",
    "orders_create_cod.json",
]


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def make_adapter(
    emulator: ShopifyEmulator,
    *,
    secrets: tuple[str, ...] = (CURRENT_SECRET, PREVIOUS_SECRET),
    token: str | None = None,
    timeout: float = 5.0,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
    base_url: str | None = None,
    location: str | None = "",
    limiter: RateLimiter | None = None,
) -> ShopifyAdapter:
    options = {"shop_domain": emulator.shop_domain}
    if location is not None:
        options["location_id"] = location or emulator.location_id
    config = ChannelConfig(
        slug="main-shop",
        api_base_url=base_url or emulator.base_url,
        credentials={"access_token": emulator.access_token if token is None else token},
        webhook_secrets=secrets,
        options=options,
        timeout=timeout,
    )
    kwargs: dict[str, Any] = {"limiter": limiter}
    if sleep is not None:
        kwargs["sleep"] = sleep
    if clock is not None:
        kwargs["clock"] = clock
    return ShopifyAdapter(config, **kwargs)


def fetch_all(adapter: ShopifyAdapter, *, since: datetime | None = None) -> list[Any]:
    pages = []
    cursor = None
    while True:
        page = adapter.fetch_orders(since=since, cursor=cursor)
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def clock() -> VirtualClock:
    """Simulated time shared by the adapter's waits and the emulator's cost bucket: tests never sleep."""
    return VirtualClock()


@pytest.fixture
def emulator(clock: VirtualClock) -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator(clock=clock.monotonic) as running:
        yield running


@pytest.fixture
def current_secret() -> str:
    return CURRENT_SECRET


@pytest.fixture
def previous_secret() -> str:
    return PREVIOUS_SECRET


@pytest.fixture
def adapter(emulator: ShopifyEmulator, clock: VirtualClock) -> ShopifyAdapter:
    return make_adapter(emulator, sleep=clock.sleep, clock=clock.monotonic)


@pytest.fixture
def stale_secret_adapter(emulator: ShopifyEmulator) -> ShopifyAdapter:
    return make_adapter(emulator, secrets=(CURRENT_SECRET,))


@pytest.fixture
def make_order_payload() -> Callable[..., dict[str, Any]]:
    return order_payload


@pytest.fixture
def signed_delivery(emulator: ShopifyEmulator) -> Callable[..., tuple[dict[str, str], bytes]]:
    def deliver(
        topic: str,
        payload: Mapping[str, Any] | bytes,
        *,
        secret: str | None = None,
        event_id: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        return webhook_delivery(
            topic, payload, secret or CURRENT_SECRET, shop_domain=emulator.shop_domain, event_id=event_id
        )

    return deliver


@pytest.fixture
def seed_stock(emulator: ShopifyEmulator) -> SeedStock:
    def seed(quantities: Sequence[int], *, skus: Sequence[str] | None = None) -> list[StockQuantity]:
        seeded = []
        for index, quantity in enumerate(quantities):
            sku = skus[index] if skus is not None else f"CONF-{uuid.uuid4().hex[:10].upper()}"
            listing = emulator.add_product(sku=sku, available=quantity)
            seeded.append(StockQuantity(external_ids=stock_ids(listing), sku=sku, quantity=quantity))
        return seeded

    return seed


@pytest.fixture
def channel_quantity(emulator: ShopifyEmulator) -> ChannelQuantity:
    return lambda external_ids: emulator.available(external_ids["inventory_item_id"])


@pytest.fixture
def drift_stock(emulator: ShopifyEmulator) -> DriftStock:
    return lambda external_ids, quantity: emulator.set_available(external_ids["inventory_item_id"], quantity)


@pytest.fixture
def unknown_listing(emulator: ShopifyEmulator) -> dict[str, str]:
    return {"inventory_item_id": "gid://shopify/InventoryItem/1", "location_id": emulator.location_id}


def stock_ids(listing: Mapping[str, Any]) -> dict[str, str]:
    """The external ids the OMS keeps for a Shopify listing."""
    return {"inventory_item_id": listing["inventory_item_id"], "location_id": listing["location_id"]}


@pytest.fixture
def seed_orders(emulator: ShopifyEmulator) -> Callable[..., list[str]]:
    def seed(count: int, *, start: datetime, step: timedelta) -> list[str]:
        ids = []
        for index in range(count):
            moment = start + index * step
            ids.append(str(emulator.add_order(created_at=moment - timedelta(minutes=3), updated_at=moment)["id"]))
        return ids

    return seed


class TestShopifyConformance(ChannelAdapterConformance):
    delivery_topic = "orders/create"
    signature_header = "X-Shopify-Hmac-Sha256"
    fixture_dir = FIXTURES
    paging_order_count = 3 * ORDERS_PAGE_SIZE + 3
    stock_paging_count = 2 * STOCK_PAGE_SIZE + 5
    compare_and_swap = True


# ---------------------------------------------------------------------------------- contract declarations


def test_declares_topics_options_and_secrets() -> None:
    assert ShopifyAdapter.kind == "shopify"
    assert ShopifyAdapter.order_topics == {
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
    }
    assert ShopifyAdapter.deferred_topics == {"refunds/create"}
    assert ShopifyAdapter.stock_topics == {"inventory_levels/update"}
    assert ShopifyAdapter.secret_options == {"access_token", "webhook_secret"}
    assert {"shop_domain", "api_base_url", "location_id"} <= ShopifyAdapter.options


def test_api_base_url_comes_from_the_shop_domain_unless_given() -> None:
    assert ShopifyAdapter.api_base_url_for({"shop_domain": "northwind-goods.myshopify.com"}) == (
        "https://northwind-goods.myshopify.com"
    )
    assert ShopifyAdapter.api_base_url_for({"shop_domain": "northwind-goods"}) == (
        "https://northwind-goods.myshopify.com"
    )
    assert (
        ShopifyAdapter.api_base_url_for({"shop_domain": "x.myshopify.com", "api_base_url": "http://127.0.0.1:9/"})
        == "http://127.0.0.1:9"
    )
    with pytest.raises(KeyError):
        ShopifyAdapter.api_base_url_for({})


# ------------------------------------------------------------------------------------------- webhooks


def test_event_id_is_topic_and_shopify_event_id_never_the_delivery_id(
    adapter: ShopifyAdapter, signed_delivery: Callable[..., tuple[dict[str, str], bytes]]
) -> None:
    payload = fixture("orders_create.json")
    headers, body = signed_delivery("orders/create", payload, event_id="2b9d5c1e-7f0a-4e8b-9c3d-6a1f0e2b4c5d")

    envelope = adapter.verify_webhook(headers, body)

    assert envelope.event_id == "orders/create:2b9d5c1e-7f0a-4e8b-9c3d-6a1f0e2b4c5d"
    assert headers["X-Shopify-Webhook-Id"] not in envelope.event_id
    assert envelope.resource_id == "6142385094742"
    assert envelope.triggered_at is not None
    assert envelope.triggered_at.tzinfo is not None


def test_same_event_on_two_topics_is_two_events(
    adapter: ShopifyAdapter, signed_delivery: Callable[..., tuple[dict[str, str], bytes]]
) -> None:
    payload = fixture("orders_paid.json")
    paid = adapter.verify_webhook(*signed_delivery("orders/paid", payload, event_id="same"))
    updated = adapter.verify_webhook(*signed_delivery("orders/updated", payload, event_id="same"))

    assert paid.event_id != updated.event_id


def test_triggered_at_keeps_shopifys_nanosecond_timestamp(
    adapter: ShopifyAdapter, signed_delivery: Callable[..., tuple[dict[str, str], bytes]]
) -> None:
    headers, body = signed_delivery("orders/create", fixture("orders_create.json"))
    headers["X-Shopify-Triggered-At"] = "2026-11-20T14:14:29.877041743Z"

    envelope = adapter.verify_webhook(headers, body)

    assert envelope.triggered_at == datetime(2026, 11, 20, 14, 14, 29, 877041, tzinfo=UTC)


def test_garbled_triggered_at_is_ignored_not_fatal(
    adapter: ShopifyAdapter, signed_delivery: Callable[..., tuple[dict[str, str], bytes]]
) -> None:
    headers, body = signed_delivery("orders/create", fixture("orders_create.json"))
    headers["X-Shopify-Triggered-At"] = "yesterday"

    assert adapter.verify_webhook(headers, body).triggered_at is None


def test_delivery_for_another_shop_is_refused(
    adapter: ShopifyAdapter, signed_delivery: Callable[..., tuple[dict[str, str], bytes]]
) -> None:
    headers, body = signed_delivery("orders/create", fixture("orders_create.json"))
    headers["X-Shopify-Shop-Domain"] = "someone-else.myshopify.com"

    with pytest.raises(InvalidSignature, match="someone-else"):
        adapter.verify_webhook(headers, body)


def test_shop_domain_compare_ignores_case(
    adapter: ShopifyAdapter, signed_delivery: Callable[..., tuple[dict[str, str], bytes]]
) -> None:
    headers, body = signed_delivery("orders/create", fixture("orders_create.json"))
    headers["X-Shopify-Shop-Domain"] = headers["X-Shopify-Shop-Domain"].upper()

    assert adapter.verify_webhook(headers, body).topic == "orders/create"


@pytest.mark.parametrize("header", ["X-Shopify-Topic", "X-Shopify-Event-Id"])
def test_delivery_without_topic_or_event_id_is_an_invalid_payload(
    adapter: ShopifyAdapter, signed_delivery: Callable[..., tuple[dict[str, str], bytes]], header: str
) -> None:
    headers, body = signed_delivery("orders/create", fixture("orders_create.json"))
    del headers[header]

    with pytest.raises(InvalidPayload, match=header):
        adapter.verify_webhook(headers, body)


def test_channel_without_secrets_refuses_every_delivery(
    emulator: ShopifyEmulator, signed_delivery: Callable[..., tuple[dict[str, str], bytes]]
) -> None:
    adapter = make_adapter(emulator, secrets=())

    with pytest.raises(InvalidSignature, match="no webhook secret"):
        adapter.verify_webhook(*signed_delivery("orders/create", fixture("orders_create.json")))


def test_refund_delivery_verifies_for_later_work(
    adapter: ShopifyAdapter, signed_delivery: Callable[..., tuple[dict[str, str], bytes]]
) -> None:
    envelope = adapter.verify_webhook(*signed_delivery("refunds/create", fixture("refunds_create.json")))

    assert envelope.topic in adapter.deferred_topics
    assert envelope.resource_id == "1029584109910"
    assert envelope.payload["order_id"] == 6142385094742


# ------------------------------------------------------------------------------------ mapping: fixtures


def test_orders_create_maps_every_field(adapter: ShopifyAdapter) -> None:
    order = adapter.parse_order(fixture("orders_create.json"))

    assert order.external_id == "6142385094742"
    assert order.number == "#1187"
    assert order.currency == "USD"
    assert order.placed_at == datetime(2026, 11, 20, 14, 14, 27, tzinfo=UTC)
    assert order.placed_at.utcoffset() == timedelta(hours=-5)
    assert order.updated_at == datetime(2026, 11, 20, 14, 14, 29, tzinfo=UTC)
    assert order.payment_status is PaymentStatus.PAID
    assert (order.subtotal, order.total_tax, order.shipping_total, order.discount_total, order.total) == (
        Decimal("59.50"),
        Decimal("3.57"),
        Decimal("9.99"),
        Decimal("5.00"),
        Decimal("73.06"),
    )
    assert order.email == "maya.okafor@example.com"
    assert order.phone == "+15025550187"
    assert order.shipping_method == "Standard Shipping"
    assert order.tags == ("first-order", "newsletter")
    assert order.cancelled_at is None
    assert order.test is False
    assert order.shipping_address == ChannelAddress(
        name="Maya Okafor",
        company="",
        line1="2114 Frankfort Avenue",
        line2="Unit 4",
        city="Louisville",
        region="KY",
        postal_code="40206",
        country_code="US",
        phone="+15025550187",
    )
    assert order.billing_address == order.shipping_address
    assert order.customer is not None
    assert (
        order.customer.external_id,
        order.customer.email,
        order.customer.first_name,
        order.customer.last_name,
    ) == ("7803541143638", "maya.okafor@example.com", "Maya", "Okafor")
    tee, mug = order.lines
    assert (tee.external_id, tee.sku, tee.title, tee.variant_title, tee.quantity) == (
        "13874620301398",
        "TEE-ORG-BLK-M",
        "Organic Cotton Tee",
        "Black / M",
        2,
    )
    assert (tee.unit_price, tee.tax, tee.discount) == (Decimal("25.00"), Decimal("2.70"), Decimal("5.00"))
    assert tee.external_variant_id == "44120957813846"
    assert tee.requires_shipping is True
    assert (mug.sku, mug.quantity, mug.unit_price, mug.tax, mug.discount) == (
        "MUG-STONE-350",
        1,
        Decimal("14.50"),
        Decimal("0.87"),
        Decimal("0"),
    )


def test_orders_updated_is_the_same_order_changed_later(adapter: ShopifyAdapter) -> None:
    created = adapter.parse_order(fixture("orders_create.json"))
    updated = adapter.parse_order(fixture("orders_updated.json"))

    assert updated.external_id == created.external_id
    assert updated.updated_at > created.updated_at
    assert updated.note.startswith("Gift:")
    assert updated.tags == ("first-order", "gift", "newsletter")


def test_orders_paid_maps_a_business_buyer(adapter: ShopifyAdapter) -> None:
    order = adapter.parse_order(fixture("orders_paid.json"))

    assert order.payment_status is PaymentStatus.PAID
    assert order.shipping_address is not None
    assert order.shipping_address.company == "Reyes Design Studio LLC"
    assert order.shipping_method == "UPS Ground"
    assert order.shipping_total == Decimal("18.40")
    assert order.total == Decimal("207.63")
    assert order.note == "PO 2026-118"
    assert order.phone == ""


def test_orders_cancelled_keeps_when_and_why(adapter: ShopifyAdapter) -> None:
    order = adapter.parse_order(fixture("orders_cancelled.json"))

    assert order.cancelled_at == datetime(2026, 11, 20, 20, 30, 7, tzinfo=UTC)
    assert order.cancel_reason == "customer"
    assert order.payment_status is PaymentStatus.REFUNDED


def test_digital_order_has_no_shipping_address_and_no_sku(adapter: ShopifyAdapter) -> None:
    payload = fixture("orders_create_digital.json")
    assert "shipping_address" not in payload

    order = adapter.parse_order(payload)

    assert order.shipping_address is None
    assert order.billing_address is not None
    assert order.billing_address.line2 == ""
    assert order.shipping_total == Decimal("0.00")
    assert order.shipping_method == ""
    (line,) = order.lines
    assert line.sku == ""
    assert line.requires_shipping is False


def test_null_shipping_address_is_none_too(adapter: ShopifyAdapter) -> None:
    payload = fixture("orders_create_digital.json")
    payload["shipping_address"] = None

    assert adapter.parse_order(payload).shipping_address is None


def test_eur_order_with_included_vat_and_a_custom_line(adapter: ShopifyAdapter) -> None:
    order = adapter.parse_order(fixture("orders_create_eur.json"))

    assert order.currency == "EUR"
    assert order.placed_at == datetime(2026, 11, 22, 13, 3, 18, tzinfo=UTC)
    assert order.placed_at.utcoffset() == timedelta(hours=1)
    assert order.shipping_address is not None
    assert (
        order.shipping_address.name,
        order.shipping_address.country_code,
        order.shipping_address.region,
        order.shipping_address.postal_code,
    ) == ("Jonas Schäfer", "DE", "", "10435")
    assert (order.subtotal, order.total_tax, order.shipping_total, order.total) == (
        Decimal("33.40"),
        Decimal("6.11"),
        Decimal("4.90"),
        Decimal("38.30"),
    )
    scarf, wrap = order.lines
    assert scarf.sku == "SCARF-MER-NVY"
    assert (wrap.sku, wrap.title, wrap.external_variant_id, wrap.tax) == (
        "",
        "Geschenkverpackung",
        "",
        Decimal("0.56"),
    )


def test_cash_on_delivery_order_is_cod_not_pending(adapter: ShopifyAdapter) -> None:
    order = adapter.parse_order(fixture("orders_create_cod.json"))

    assert order.payment_status is PaymentStatus.COD
    assert order.currency == "INR"
    assert order.total == Decimal("3097.00")
    assert order.shipping_address is not None
    assert order.shipping_address.region == "MH"


@pytest.mark.parametrize(
    ("gateways", "financial_status", "expected"),
    [
        (["Cash on Delivery (COD)"], "pending", PaymentStatus.COD),
        (["cash_on_delivery"], "pending", PaymentStatus.COD),
        (["COD"], "authorized", PaymentStatus.COD),
        (["cod"], "partially_paid", PaymentStatus.COD),
        (["Cash on Delivery (COD)"], "paid", PaymentStatus.PAID),
        (["Cash on Delivery (COD)"], "voided", PaymentStatus.VOIDED),
        (["shopify_payments"], "pending", PaymentStatus.PENDING),
        (["Codex Pay"], "pending", PaymentStatus.PENDING),
        (["manual"], "partially_refunded", PaymentStatus.PARTIALLY_REFUNDED),
        (["shopify_payments"], "expired", PaymentStatus.VOIDED),
        (["shopify_payments"], None, PaymentStatus.PENDING),
    ],
)
def test_payment_status(
    adapter: ShopifyAdapter, gateways: list[str], financial_status: str | None, expected: PaymentStatus
) -> None:
    payload = order_payload(payment_gateway_names=gateways, financial_status=financial_status)

    assert adapter.parse_order(payload).payment_status is expected


def test_tags_are_split_trimmed_and_blank_ones_dropped(adapter: ShopifyAdapter) -> None:
    payload = order_payload(tags=" vip ,, wholesale,  ,rush ")

    assert adapter.parse_order(payload).tags == ("vip", "wholesale", "rush")


def test_shipping_total_falls_back_to_the_shipping_lines(adapter: ShopifyAdapter) -> None:
    payload = order_payload(
        shipping_lines=[{"title": "Express", "price": "12.00"}, {"title": "Handling", "price": "1.50"}]
    )
    del payload["total_shipping_price_set"]

    order = adapter.parse_order(payload)

    assert order.shipping_total == Decimal("13.50")
    assert order.shipping_method == "Express"


@pytest.mark.parametrize(
    ("change", "field_named"),
    [
        (lambda p: p.pop("id"), "'id'"),
        (lambda p: p.update(id="not-a-number"), "'id'"),
        (lambda p: p.pop("updated_at"), "'updated_at'"),
        (lambda p: p.update(updated_at="20/11/2026 09:14"), "'updated_at'"),
        (lambda p: p.update(updated_at="2026-11-20T09:14:29"), "'updated_at' has no UTC offset"),
        (lambda p: p.pop("currency"), "currency"),
        (lambda p: p.pop("line_items"), "'line_items'"),
        (lambda p: p.update(line_items=None), "'line_items'"),
        (lambda p: p.update(line_items="TEE-ORG-BLK-M"), "'line_items'"),
        (lambda p: p.update(total_price="73,06"), "'total_price'"),
        (lambda p: p["line_items"][0].update(price=None), "'line_items[0].price'"),
        (lambda p: p["line_items"][1].update(quantity="two"), "'line_items[1].quantity'"),
        (lambda p: p["line_items"][0]["tax_lines"][0].update(price="NaN"), "tax_lines[0].price"),
        (lambda p: p.update(shipping_address="Louisville"), "'shipping_address'"),
    ],
)
def test_bad_payload_names_the_field(
    adapter: ShopifyAdapter, change: Callable[[dict[str, Any]], Any], field_named: str
) -> None:
    payload = fixture("orders_create.json")
    change(payload)

    with pytest.raises(InvalidPayload) as caught:
        adapter.parse_order(payload)

    assert field_named in str(caught.value)


def test_an_order_without_lines_is_passed_on_for_the_oms_to_hold(adapter: ShopifyAdapter) -> None:
    payload = fixture("orders_create.json")
    payload["line_items"] = []

    assert adapter.parse_order(payload).lines == ()


def test_money_never_goes_through_float(adapter: ShopifyAdapter) -> None:
    payload = order_payload(line_items=[{"sku": "A", "price": "0.10", "quantity": 3}])
    payload["total_price"] = "0.30"

    order = adapter.parse_order(payload)

    assert order.total == Decimal("0.30")
    assert order.lines[0].unit_price * 3 == order.total


# ----------------------------------------------------------------------------------- REST == GraphQL


@pytest.mark.parametrize("name", ORDER_FIXTURES)
def test_graphql_backfill_and_webhook_give_the_same_order(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter, name: str
) -> None:
    payload = fixture(name)
    emulator.put_order(payload)

    (page,) = fetch_all(adapter)

    assert page.orders == (adapter.parse_order(payload),)


def test_orders_with_more_lines_than_a_page_get_every_line(emulator: ShopifyEmulator, adapter: ShopifyAdapter) -> None:
    many = [{"sku": f"PART-{i:03d}", "price": "1.25", "quantity": i + 1} for i in range(LINE_ITEMS_PAGE_SIZE * 3)]
    payload = emulator.add_order(line_items=many)
    emulator.add_order()

    (page,) = fetch_all(adapter)

    (big,) = [order for order in page.orders if order.external_id == str(payload["id"])]
    assert [line.sku for line in big.lines] == [spec["sku"] for spec in many]
    assert big == adapter.parse_order(payload)
    assert page.calls == 2  # the page, then one query for the rest of the big order's lines


# ------------------------------------------------------------------------------------------ the wire


def test_sends_the_pinned_version_and_the_token(emulator: ShopifyEmulator, adapter: ShopifyAdapter) -> None:
    emulator.add_order()

    adapter.fetch_orders(since=datetime(2026, 11, 1, 12, 30, 15, 999, tzinfo=UTC), cursor=None)

    (request,) = emulator.requests
    assert request.method == "POST"
    assert request.path == f"/admin/api/{API_VERSION}/graphql.json"
    assert request.headers["x-shopify-access-token"] == emulator.access_token
    assert request.headers["Content-Type"] == "application/json"
    variables = request.json["variables"]
    assert variables["query"] == "updated_at:>='2026-11-01T12:30:15Z'"
    assert variables["first"] == ORDERS_PAGE_SIZE
    assert "sortKey: UPDATED_AT" in request.json["query"]
    assert request.response["extensions"]["cost"]["requestedQueryCost"] <= emulator.max_query_cost


def test_without_since_no_filter_is_sent(emulator: ShopifyEmulator, adapter: ShopifyAdapter) -> None:
    adapter.fetch_orders(since=None, cursor=None)

    (request,) = emulator.requests
    assert "query" not in request.json["variables"]


def test_naive_since_is_taken_as_utc(emulator: ShopifyEmulator, adapter: ShopifyAdapter) -> None:
    adapter.fetch_orders(since=datetime(2026, 11, 1, 8, 0), cursor=None)  # noqa: DTZ001 - the point of the test

    assert emulator.requests[0].json["variables"]["query"] == "updated_at:>='2026-11-01T08:00:00Z'"


def test_since_in_another_zone_is_converted_to_utc(emulator: ShopifyEmulator, adapter: ShopifyAdapter) -> None:
    adapter.fetch_orders(since=datetime(2026, 11, 1, 8, 0, tzinfo=timezone(timedelta(hours=2))), cursor=None)

    assert emulator.requests[0].json["variables"]["query"] == "updated_at:>='2026-11-01T06:00:00Z'"


def test_pagination_of_120_orders(emulator: ShopifyEmulator, adapter: ShopifyAdapter, clock: VirtualClock) -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    ids = [str(emulator.add_order(updated_at=start + timedelta(minutes=i))["id"]) for i in range(120)]

    pages = fetch_all(adapter)

    assert len(pages) == math.ceil(120 / ORDERS_PAGE_SIZE)
    assert [o.external_id for page in pages for o in page.orders] == ids
    # 12 pages drain the 2,000-point bucket: the client waits for it to refill rather than be throttled
    assert sum(page.calls for page in pages) == len(emulator.requests) == len(pages)
    assert not any("errors" in r.response for r in emulator.requests)
    assert clock.sleeps, "the bucket ran low, so the client had to pace itself"
    cursors = [r.json["variables"].get("after") for r in emulator.requests]
    assert cursors[0] is None
    assert len(set(cursors)) == len(cursors)


def test_an_order_changed_during_a_backfill_is_seen_again_not_lost(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    start = datetime.now(UTC) - timedelta(days=1)
    ids = [str(emulator.add_order(updated_at=start + timedelta(minutes=i))["id"]) for i in range(15)]

    first = adapter.fetch_orders(since=None, cursor=None)
    emulator.update_order(ids[0], note="changed while paging")
    rest = fetch_all_from(adapter, first.next_cursor)

    seen = [o.external_id for o in first.orders] + [o.external_id for page in rest for o in page.orders]
    assert set(seen) == set(ids)
    assert seen.count(ids[0]) == 2
    assert rest[-1].orders[-1].note == "changed while paging"


def fetch_all_from(adapter: ShopifyAdapter, cursor: str | None) -> list[Any]:
    pages = []
    while cursor is not None:
        page = adapter.fetch_orders(since=None, cursor=cursor)
        pages.append(page)
        cursor = page.next_cursor
    return pages


# ------------------------------------------------------------------------------- throttling and errors


def test_throttled_call_waits_the_computed_time_then_succeeds(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter, clock: VirtualClock
) -> None:
    emulator.add_order()
    emulator.force_throttled(1, currently_available=183)

    page = adapter.fetch_orders(since=None, cursor=None)

    assert len(page.orders) == 1
    assert page.calls == 2
    requested = emulator.requests[0].response["extensions"]["cost"]["requestedQueryCost"]
    (waited,) = clock.sleeps
    assert (requested - 183) / 100 <= waited <= (requested - 183) / 100 + THROTTLE_JITTER
    assert [r.response.get("errors", [{}])[0].get("message") for r in emulator.requests] == [
        "Throttled",
        None,
    ]


def test_a_real_bucket_is_waited_for_on_a_shared_clock(clock: VirtualClock) -> None:
    with ShopifyEmulator(clock=clock.monotonic) as emulator:
        emulator.add_order()
        emulator.set_bucket_available(250)
        adapter = make_adapter(emulator, sleep=clock.sleep, clock=clock.monotonic)

        page = adapter.fetch_orders(since=None, cursor=None)

        requested = emulator.requests[0].response["extensions"]["cost"]["requestedQueryCost"]
        assert len(page.orders) == 1
        assert page.calls == 2
        (waited,) = clock.sleeps
        assert (requested - 250) / 100 <= waited <= (requested - 250) / 100 + THROTTLE_JITTER


def test_the_client_paces_itself_before_the_bucket_runs_dry(clock: VirtualClock) -> None:
    with ShopifyEmulator(clock=clock.monotonic) as emulator:
        for _ in range(ORDERS_PAGE_SIZE * 2):
            emulator.add_order()
        emulator.set_bucket_available(1100)
        adapter = make_adapter(emulator, sleep=clock.sleep, clock=clock.monotonic)

        first = adapter.fetch_orders(since=None, cursor=None)
        left = emulator.requests[0].response["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
        requested = emulator.requests[0].response["extensions"]["cost"]["requestedQueryCost"]
        second = adapter.fetch_orders(since=None, cursor=first.next_cursor)

        assert left < requested, "the first page must leave too little for the second"
        assert second.calls == 1, "no THROTTLED answer: the client waited first"
        assert not any("errors" in r.response for r in emulator.requests)
        assert clock.sleeps == [pytest.approx((requested - left) / 100 + PACE_MARGIN, abs=0.011)]


def test_endless_throttling_raises_throttled(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter, clock: VirtualClock
) -> None:
    emulator.force_throttled(100)

    with pytest.raises(Throttled) as caught:
        adapter.fetch_orders(since=None, cursor=None)

    assert caught.value.retryable is True
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 0
    tries = len(emulator.requests)
    assert 2 <= tries < 100, "bounded retries"
    assert len(clock.sleeps) == tries - 1


def test_429_honours_retry_after(emulator: ShopifyEmulator, adapter: ShopifyAdapter, clock: VirtualClock) -> None:
    emulator.fail_next(1, status=429, retry_after=3)

    page = adapter.fetch_orders(since=None, cursor=None)

    assert page.calls == 2
    assert clock.sleeps == [3.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_with_backoff(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter, clock: VirtualClock, status: int
) -> None:
    emulator.add_order()
    emulator.fail_next(2, status=status)

    page = adapter.fetch_orders(since=None, cursor=None)

    assert len(page.orders) == 1
    assert page.calls == 3
    first, second = clock.sleeps
    assert 0.25 <= first <= 0.5
    assert 0.5 <= second <= 1.0


def test_a_lasting_outage_is_a_retryable_channel_error(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter, clock: VirtualClock
) -> None:
    emulator.fail_next(50, status=503)

    with pytest.raises(ChannelError) as caught:
        adapter.fetch_orders(since=None, cursor=None)

    assert type(caught.value) is ChannelError
    assert caught.value.retryable is True
    assert "503" in str(caught.value)
    assert 2 <= len(emulator.requests) < 50
    assert clock.sleeps == sorted(clock.sleeps), "backoff grows"


def test_unreachable_shop_is_a_retryable_channel_error(clock: VirtualClock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with ShopifyEmulator() as emulator:
        adapter = make_adapter(emulator, base_url=f"http://127.0.0.1:{port}", sleep=clock.sleep)

        with pytest.raises(ChannelError) as caught:
            adapter.fetch_orders(since=None, cursor=None)

    assert caught.value.retryable is True
    assert "could not reach Shopify" in str(caught.value)
    assert len(clock.sleeps) >= 2


def test_a_slow_shop_times_out_into_a_retryable_error(clock: VirtualClock) -> None:
    with ShopifyEmulator(latency=0.3) as emulator:
        adapter = make_adapter(emulator, timeout=0.05, sleep=clock.sleep)

        with pytest.raises(ChannelError) as caught:
            adapter.fetch_orders(since=None, cursor=None)

    assert caught.value.retryable is True


def test_wrong_token_is_authentication_failed(emulator: ShopifyEmulator, clock: VirtualClock) -> None:
    adapter = make_adapter(emulator, token="shpat_wrong", sleep=clock.sleep)

    with pytest.raises(AuthenticationFailed, match="Invalid API key or access token"):
        adapter.fetch_orders(since=None, cursor=None)

    assert len(emulator.requests) == 1, "no retry with a refused token"
    assert emulator.requests[0].status == 401


def test_missing_token_fails_before_calling(emulator: ShopifyEmulator) -> None:
    adapter = make_adapter(emulator, token="")

    with pytest.raises(AuthenticationFailed, match="access_token"):
        adapter.fetch_orders(since=None, cursor=None)

    assert emulator.requests == []


def test_too_costly_a_page_is_halved_until_shopify_accepts_it(clock: VirtualClock) -> None:
    with ShopifyEmulator(max_query_cost=500) as emulator:
        ids = {str(emulator.add_order()["id"]) for _ in range(12)}
        adapter = make_adapter(emulator, sleep=clock.sleep)

        pages = fetch_all(adapter)

        assert {o.external_id for page in pages for o in page.orders} == ids
        refused = [r for r in emulator.requests if "errors" in r.response]
        assert [r.response["errors"][0]["extensions"]["code"] for r in refused] == ["MAX_COST_EXCEEDED"]
        assert adapter.orders_page_size == ORDERS_PAGE_SIZE // 2


def test_graphql_errors_are_not_retried(emulator: ShopifyEmulator, clock: VirtualClock) -> None:
    client = ShopifyGraphQLClient(endpoint=emulator.graphql_url, access_token=emulator.access_token, sleep=clock.sleep)

    with pytest.raises(ChannelError) as caught:
        client.execute("query { ordersss(first: 1) { nodes { id } } }")

    assert caught.value.retryable is False
    assert "Field 'ordersss' doesn't exist on type 'QueryRoot'" in str(caught.value)
    assert client.calls == 1
    assert clock.sleeps == []


def test_client_counts_every_attempt(emulator: ShopifyEmulator, clock: VirtualClock) -> None:
    client = ShopifyGraphQLClient(endpoint=emulator.graphql_url, access_token=emulator.access_token, sleep=clock.sleep)
    emulator.fail_next(1, status=500)
    emulator.force_throttled(1)

    data = client.execute("{ shop { myshopifyDomain } }")

    assert data == {"shop": {"myshopifyDomain": emulator.shop_domain}}
    assert client.calls == 3
    assert client.throttle_status is not None
    assert client.throttle_status.maximum_available == 2000


def test_fetched_orders_are_well_formed(emulator: ShopifyEmulator, adapter: ShopifyAdapter) -> None:
    emulator.add_order(
        currency="EUR",
        shipping_address=None,
        line_items=[{"sku": None, "requires_shipping": False, "price": "9.00"}],
    )

    (page,) = fetch_all(adapter)

    (order,) = page.orders
    assert_well_formed(order, source="fetched")
    assert order.shipping_address is None
    assert order.lines[0].sku == ""


# ------------------------------------------------------------------------------------------------ stock


def mutations(emulator: ShopifyEmulator) -> list[Any]:
    return [r for r in emulator.graphql_requests if "inventorySetQuantities" in r.json["query"]]


def levels_for(listings: Sequence[Mapping[str, Any]], targets: Sequence[int]) -> list[StockQuantity]:
    return [
        StockQuantity(external_ids=stock_ids(listing), sku=str(listing["sku"]), quantity=target)
        for listing, target in zip(listings, targets, strict=True)
    ]


def test_push_stock_sends_an_absolute_set_with_compare_and_swap_and_a_key(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    tee = emulator.add_product(sku="TEE-ORG-BLK-M", available=5)
    mug = emulator.add_product(sku="MUG-STONE-350", available=2)
    push = [
        StockQuantity(external_ids=stock_ids(tee), sku="TEE-ORG-BLK-M", quantity=3, change_from=5),
        # the location falls back to the channel's location_id option
        StockQuantity(external_ids={"inventory_item_id": mug["inventory_item_id"]}, sku="MUG-STONE-350", quantity=9),
    ]

    results = adapter.push_stock(push, reference="outbox-batch-41")

    assert [(r.sku, r.ok, r.stale, r.previous) for r in results] == [
        ("TEE-ORG-BLK-M", True, False, 5),
        ("MUG-STONE-350", True, False, 2),
    ]
    assert (emulator.available(tee), emulator.available(mug)) == (3, 9)
    (request,) = emulator.requests
    assert "@idempotent(key: $idempotencyKey)" in request.json["query"]
    variables = request.json["variables"]
    assert uuid.UUID(variables["idempotencyKey"]).version == 5
    assert variables["input"] == {
        "name": "available",
        "reason": "correction",
        "referenceDocumentUri": "gid://oms/StockPush/outbox-batch-41",
        "quantities": [
            {
                "inventoryItemId": tee["inventory_item_id"],
                "locationId": emulator.location_id,
                "quantity": 3,
                "changeFromQuantity": 5,
            },
            {
                "inventoryItemId": mug["inventory_item_id"],
                "locationId": emulator.location_id,
                "quantity": 9,
                "changeFromQuantity": None,  # sent as null: Shopify requires the key from 2026-04
            },
        ],
    }
    assert request.response["extensions"]["cost"]["requestedQueryCost"] == SET_AVAILABLE_COST


def test_numeric_ids_are_taken_as_shopifys(emulator: ShopifyEmulator, adapter: ShopifyAdapter) -> None:
    listing = emulator.add_product(sku="A", available=1)
    numbers = {key: listing[key].rsplit("/", 1)[1] for key in ("inventory_item_id", "location_id")}

    (result,) = adapter.push_stock([StockQuantity(external_ids=numbers, sku="A", quantity=4, change_from=1)])

    assert result.ok
    assert emulator.available(listing) == 4


def test_600_quantities_go_in_three_calls_of_at_most_250(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter, clock: VirtualClock
) -> None:
    listings = [emulator.add_product(sku=f"BULK-{i:04d}", available=0) for i in range(600)]
    push = [
        StockQuantity(external_ids=stock_ids(listing), sku=listing["sku"], quantity=i % 50, change_from=0)
        for i, listing in enumerate(listings)
    ]

    results = adapter.push_stock(push, reference="bulk")

    assert all(r.ok for r in results)
    assert [r.sku for r in results] == [p.sku for p in push]
    assert [len(r.json["variables"]["input"]["quantities"]) for r in mutations(emulator)] == [250, 250, 100]
    assert [emulator.available(listing) for listing in listings] == [i % 50 for i in range(600)]
    keys = {r.json["variables"]["idempotencyKey"] for r in mutations(emulator)}
    assert len(keys) == 3, "each batch has its own key"


def test_a_stale_item_is_re_read_and_set_from_what_shopify_holds(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    listings = [emulator.add_product(sku=f"S{i}", available=10) for i in range(5)]
    emulator.set_available(listings[3], 7)  # three sold on Shopify since our last push
    push = [
        StockQuantity(external_ids=stock_ids(listing), sku=listing["sku"], quantity=4, change_from=10)
        for listing in listings
    ]

    results = adapter.push_stock(push, reference="stale-1")

    assert all(r.ok for r in results)
    assert [(r.stale, r.previous) for r in results] == [(False, 10)] * 3 + [(True, 7)] + [(False, 10)]
    assert [emulator.available(listing) for listing in listings] == [4] * 5
    first, reread, second = emulator.requests
    assert first.response["data"]["inventorySetQuantities"]["userErrors"][0]["code"] == "CHANGE_FROM_QUANTITY_STALE"
    assert reread.json["variables"] == {"ids": [listings[3]["inventory_item_id"]], "locationId": emulator.location_id}
    assert reread.response["extensions"]["cost"]["requestedQueryCost"] == AVAILABLE_COST_PER_ITEM
    rebuilt = second.json["variables"]["input"]["quantities"]
    assert [q["changeFromQuantity"] for q in rebuilt] == [10, 10, 10, 7, 10]
    assert second.json["variables"]["idempotencyKey"] != first.json["variables"]["idempotencyKey"]


def test_an_item_that_keeps_changing_is_given_up_with_stale(emulator: ShopifyEmulator, adapter: ShopifyAdapter) -> None:
    busy, calm = emulator.add_product(sku="BUSY", available=10), emulator.add_product(sku="CALM", available=1)
    sales = iter(range(9, 0, -1))
    original = emulator._inventory_set_quantities

    def selling_meanwhile(arguments: dict[str, Any]) -> dict[str, Any]:
        emulator.set_available(busy, next(sales))  # another sale lands before every set
        return original(arguments)

    emulator.register_root_field(
        "inventorySetQuantities", selling_meanwhile, operation="mutation", arguments=("input",), required=("input",)
    )
    push = levels_for([busy, calm], [0, 5])
    push = [replace(push[0], change_from=10), replace(push[1], change_from=1)]

    stuck, other = adapter.push_stock(push)

    assert (stuck.ok, stuck.stale) == (False, True)
    assert "kept changing" in stuck.error
    assert stuck.previous is not None
    assert other.ok, "the calm item is not held back by the busy one"
    assert emulator.available(calm) == 5
    assert len(mutations(emulator)) == STALE_RETRIES + 2  # 1 + 3 retries, then once more without the busy item


def test_a_refused_item_is_reported_and_the_rest_of_its_batch_still_set(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    good = emulator.add_product(sku="GOOD", available=1)
    unstocked = emulator.add_product(sku="NOT-HERE", available=None)
    push = [
        StockQuantity(external_ids={"inventory_item_id": "gid://shopify/InventoryItem/1"}, sku="GHOST", quantity=1),
        StockQuantity(external_ids={"inventory_item_id": unstocked["inventory_item_id"]}, sku="NOT-HERE", quantity=1),
        StockQuantity(external_ids=stock_ids(good), sku="GOOD", quantity=8, change_from=1),
    ]

    ghost, not_here, ok = adapter.push_stock(push)

    assert (ghost.ok, not_here.ok, ok.ok) == (False, False, True)
    assert "INVALID_INVENTORY_ITEM" in ghost.error
    assert "ITEM_NOT_STOCKED_AT_LOCATION" in not_here.error
    assert emulator.available(good) == 8
    first, second = mutations(emulator)
    assert len(first.json["variables"]["input"]["quantities"]) == 3
    assert len(second.json["variables"]["input"]["quantities"]) == 1


def test_levels_without_ids_fail_without_a_call(emulator: ShopifyEmulator) -> None:
    adapter = make_adapter(emulator, location=None)
    listing = emulator.add_product(sku="A", available=1)

    no_item, no_location = adapter.push_stock(
        [
            StockQuantity(external_ids={"variant_id": "1"}, sku="X", quantity=1),
            StockQuantity(external_ids={"inventory_item_id": listing["inventory_item_id"]}, sku="A", quantity=1),
        ]
    )

    assert (no_item.ok, no_location.ok) == (False, False)
    assert "inventory_item_id" in no_item.error
    assert "location" in no_location.error
    assert emulator.requests == []


def test_the_latest_of_two_quantities_for_one_item_wins(emulator: ShopifyEmulator, adapter: ShopifyAdapter) -> None:
    listing = emulator.add_product(sku="A", available=1)
    ids = stock_ids(listing)

    older, newer = adapter.push_stock(
        [StockQuantity(ids, "A", quantity=3, change_from=1), StockQuantity(ids, "A", quantity=2, change_from=1)]
    )

    assert (older.ok, newer.ok) == (True, True)
    assert emulator.available(listing) == 2
    (request,) = mutations(emulator)
    assert [q["quantity"] for q in request.json["variables"]["input"]["quantities"]] == [2]


def test_a_retry_after_a_lost_answer_reuses_the_key_and_is_applied_once(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    listing = emulator.add_product(sku="A", available=3)
    emulator.fail_next(1, status=504, after=True)  # Shopify applied it, the answer never came back

    (result,) = adapter.push_stock([StockQuantity(stock_ids(listing), "A", quantity=5, change_from=3)], reference="r1")

    assert (result.ok, result.stale, result.previous) == (True, False, 3)
    assert emulator.available(listing) == 5
    first, retry = mutations(emulator)
    assert first.status == 504
    assert retry.json == first.json, "the same body under the same key"
    assert retry.response["data"]["inventorySetQuantities"]["userErrors"] == []


def test_keys_follow_the_reference_and_the_content(emulator: ShopifyEmulator, clock: VirtualClock) -> None:
    listing = emulator.add_product(sku="A", available=3)
    ids = stock_ids(listing)

    def key_of(adapter: ShopifyAdapter, quantity: int, reference: str) -> str:
        emulator.clear_requests()
        adapter.push_stock([StockQuantity(ids, "A", quantity=quantity, change_from=None)], reference=reference)
        return str(mutations(emulator)[0].json["variables"]["idempotencyKey"])

    one = make_adapter(emulator, sleep=clock.sleep, clock=clock.monotonic)
    other_worker = make_adapter(emulator, sleep=clock.sleep, clock=clock.monotonic)

    assert key_of(one, 5, "job-7") == key_of(other_worker, 5, "job-7"), "a job retried on another worker"
    assert key_of(one, 6, "job-7") != key_of(one, 5, "job-7"), "a newer quantity is a new request"
    assert key_of(one, 5, "job-8") != key_of(one, 5, "job-7")
    assert key_of(one, 5, "") != key_of(one, 5, ""), "no reference: no repeat across calls"


def test_a_throttled_set_is_paced_by_the_limiter_then_succeeds(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter, clock: VirtualClock
) -> None:
    listing = emulator.add_product(sku="A", available=3)
    emulator.force_throttled(1, currently_available=4)

    (result,) = adapter.push_stock([StockQuantity(stock_ids(listing), "A", quantity=1, change_from=3)])

    assert result.ok
    (waited,) = clock.sleeps
    assert (SET_AVAILABLE_COST - 4) / 100 <= waited <= (SET_AVAILABLE_COST - 4) / 100 + THROTTLE_JITTER + PACE_MARGIN
    assert [r.response.get("errors", [{}])[0].get("message") for r in emulator.requests] == ["Throttled", None]


def test_a_429_makes_every_adapter_sharing_the_limiter_wait(emulator: ShopifyEmulator, clock: VirtualClock) -> None:
    shared = LocalBucket(clock=clock.monotonic)
    first = make_adapter(emulator, sleep=clock.sleep, clock=clock.monotonic, limiter=shared)
    second = make_adapter(emulator, sleep=clock.sleep, clock=clock.monotonic, limiter=shared)
    listing = emulator.add_product(sku="A", available=3)
    emulator.fail_next(1, status=429, retry_after=4)

    first.fetch_orders(since=None, cursor=None)  # 429, waits 4 s, retries
    clock.advance(-1.0)  # as if the second worker asked 1 s into that wait (the clock is shared)
    second.push_stock([StockQuantity(stock_ids(listing), "A", quantity=1, change_from=3)])

    assert clock.sleeps[0] == 4.0
    assert clock.sleeps[1] == pytest.approx(1.0), "the second adapter never saw the 429 yet held off"


def test_adapters_sharing_one_bucket_stay_within_shopifys() -> None:
    # Real time, real threads: two workers push as fast as they can through a small bucket (about 2 s).
    with ShopifyEmulator(maximum_available=50, restore_rate=250) as small:
        shared = LocalBucket()
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            time.sleep(seconds)

        listings = [small.add_product(sku=f"T{i}", available=0) for i in range(2)]
        workers = [make_adapter(small, sleep=sleep, limiter=shared) for _ in listings]
        failures: list[BaseException] = []

        def work(adapter: ShopifyAdapter, listing: Mapping[str, Any]) -> None:
            try:
                for quantity in range(1, 16):
                    (result,) = adapter.push_stock([StockQuantity(stock_ids(listing), "T", quantity=quantity)])
                    assert result.ok
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=work, args=pair) for pair in zip(workers, listings, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert failures == []
        assert [small.available(listing) for listing in listings] == [15, 15]
        throttled = [r for r in small.graphql_requests if "errors" in r.response]
        assert throttled == [], "sharing the bucket, no call was ever refused"
        assert len(small.graphql_requests) == 30
        assert sum(waits) >= 1.0, "30 calls of 16 points through a 50-point bucket: the limiter made them wait"


def test_fetch_stock_pages_through_300_levels(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter, clock: VirtualClock
) -> None:
    listings = [emulator.add_product(sku=f"SKU-{i:03d}", available=i) for i in range(299)]
    bare = emulator.add_product(sku="", available=4)  # Shopify allows it; the OMS reports it
    emulator.add_product(sku="ELSEWHERE", available=1, location=emulator.add_location("Overflow"))

    pages = []
    cursor = None
    while True:
        page = adapter.fetch_stock(cursor=cursor)
        pages.append(page)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    items = [item for page in pages for item in page.items]
    assert [len(page.items) for page in pages] == [STOCK_PAGE_SIZE, 300 - STOCK_PAGE_SIZE]
    assert [item.sku for item in items] == [f"SKU-{i:03d}" for i in range(299)] + [""]
    assert [item.quantity for item in items] == [*range(299), 4]
    assert items[0] == ChannelStock(
        external_ids={
            "inventory_item_id": listings[0]["inventory_item_id"],
            "location_id": emulator.location_id,
            "variant_id": listings[0]["variant_id"],
            "product_id": listings[0]["product_id"],
        },
        sku="SKU-000",
        quantity=0,
        updated_at=items[0].updated_at,
    )
    assert items[0].updated_at is not None
    assert items[-1].external_ids["inventory_item_id"] == bare["inventory_item_id"]
    for request in emulator.requests:
        requested = request.response["extensions"]["cost"]["requestedQueryCost"]
        assert requested == stock_levels_cost(request.json["variables"]["first"]) <= emulator.max_query_cost
    assert [page.calls for page in pages] == [1, 1]
    assert not any("errors" in r.response for r in emulator.requests)


def test_fetch_stock_needs_the_location_option(emulator: ShopifyEmulator) -> None:
    with pytest.raises(ChannelError, match="location_id") as missing:
        make_adapter(emulator, location=None).fetch_stock(cursor=None)
    with pytest.raises(ChannelError, match="no location") as unknown:
        make_adapter(emulator, location="gid://shopify/Location/1").fetch_stock(cursor=None)
    with pytest.raises(ChannelError, match="not a Shopify location"):
        make_adapter(emulator, location="Main warehouse").fetch_stock(cursor=None)

    assert missing.value.retryable is False
    assert unknown.value.retryable is False


def test_fetch_products_lists_variants_with_prices_weights_and_stock(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    tee = emulator.add_product(
        sku="TEE-ORG-BLK-M",
        available=7,
        title="Organic Cotton Tee",
        variant_title="Black / M",
        barcode="0889842150017",
        price="24.00",
        weight=(0.4, "POUNDS"),
    )
    larger = emulator.add_variant(tee["product_id"], sku="TEE-ORG-BLK-L", available=None, title="Black / L")
    mug = emulator.add_product(sku="MUG", available=2, title="Stoneware Mug", price="16.5", weight_grams=420)

    page = adapter.fetch_products(cursor=None)

    assert page.next_cursor is None
    assert page.items == (
        ChannelProduct(
            external_ids={
                "variant_id": tee["variant_id"],
                "product_id": tee["product_id"],
                "inventory_item_id": tee["inventory_item_id"],
                "location_id": emulator.location_id,
            },
            sku="TEE-ORG-BLK-M",
            title="Organic Cotton Tee",
            variant_title="Black / M",
            barcode="0889842150017",
            price=Decimal("24.00"),
            weight_grams=181,  # 0.4 lb
            quantity=7,
        ),
        ChannelProduct(
            external_ids={
                "variant_id": larger["variant_id"],
                "product_id": tee["product_id"],
                "inventory_item_id": larger["inventory_item_id"],
                "location_id": emulator.location_id,
            },
            sku="TEE-ORG-BLK-L",
            title="Organic Cotton Tee",
            variant_title="Black / L",
            price=Decimal("19.99"),
            quantity=None,  # not stocked at the managed location
        ),
        ChannelProduct(
            external_ids={
                "variant_id": mug["variant_id"],
                "product_id": mug["product_id"],
                "inventory_item_id": mug["inventory_item_id"],
                "location_id": emulator.location_id,
            },
            sku="MUG",
            title="Stoneware Mug",
            variant_title="",  # Shopify's "Default Title"
            price=Decimal("16.50"),
            weight_grams=420,
            quantity=2,
        ),
    )
    (request,) = emulator.requests
    requested = request.response["extensions"]["cost"]["requestedQueryCost"]
    assert requested == products_cost(PRODUCTS_PAGE_SIZE, with_level=True) <= emulator.max_query_cost


def test_fetch_products_pages_and_works_without_a_location(emulator: ShopifyEmulator, clock: VirtualClock) -> None:
    skus = [emulator.add_product(sku=f"P{i:03d}", available=i)["sku"] for i in range(PRODUCTS_PAGE_SIZE + 10)]
    adapter = make_adapter(emulator, location=None, sleep=clock.sleep, clock=clock.monotonic)

    first = adapter.fetch_products(cursor=None)
    assert first.next_cursor is not None
    second = adapter.fetch_products(cursor=first.next_cursor)

    assert second.next_cursor is None
    assert [p.sku for p in first.items + second.items] == skus
    assert all(p.quantity is None and "location_id" not in p.external_ids for p in first.items)
    assert "inventoryLevel" not in emulator.requests[0].json["query"]
    assert emulator.requests[0].response["extensions"]["cost"]["requestedQueryCost"] == products_cost(
        PRODUCTS_PAGE_SIZE, with_level=False
    )


# ---------------------------------------------------------------------------------- stock webhooks


def test_an_inventory_levels_update_delivery_parses_to_channel_stock(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    listing = emulator.add_product(sku="A", available=9)
    emulator.set_available(listing, 6)
    headers, body = emulator.level_webhook(listing, CURRENT_SECRET, event_id="0d6b4a52-evt")

    envelope = adapter.verify_webhook(headers, body)
    stock = adapter.parse_stock_update(envelope.payload)

    assert envelope.topic in adapter.stock_topics
    assert envelope.event_id == "inventory_levels/update:0d6b4a52-evt"
    assert stock.external_ids == stock_ids(listing)
    assert (stock.sku, stock.quantity) == ("", 6)
    assert stock.updated_at is not None
    assert stock.updated_at.utcoffset() is not None


def test_the_fixture_parses(adapter: ShopifyAdapter) -> None:
    stock = adapter.parse_stock_update(fixture("inventory_levels_update.json"))

    assert stock == ChannelStock(
        external_ids={
            "inventory_item_id": "gid://shopify/InventoryItem/47393211465814",
            "location_id": "gid://shopify/Location/71028195414",
        },
        sku="",
        quantity=7,
        updated_at=datetime(2026, 11, 20, 14, 31, 4, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.update(available=None), "not tracked"),
        (lambda p: p.update(available="7"), "'available'"),
        (lambda p: p.pop("inventory_item_id"), "'inventory_item_id'"),
        (lambda p: p.update(location_id="gid://shopify/Order/1"), "'location_id'"),
        (lambda p: p.update(updated_at="yesterday"), "updated_at"),
    ],
)
def test_a_bad_level_payload_is_an_invalid_payload(
    adapter: ShopifyAdapter, change: Callable[[dict[str, Any]], Any], message: str
) -> None:
    payload = fixture("inventory_levels_update.json")
    change(payload)

    with pytest.raises(InvalidPayload, match=message):
        adapter.parse_stock_update(payload)


def test_our_own_set_comes_back_as_a_webhook_the_oms_can_recognise(clock: VirtualClock) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((dict(self.headers.items()), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/main-shop/"
        with ShopifyEmulator(clock=clock.monotonic, webhook_url=url, webhook_secret=CURRENT_SECRET) as emulator:
            adapter = make_adapter(emulator, sleep=clock.sleep, clock=clock.monotonic)
            listing = emulator.add_product(sku="ONE-OF-A-KIND", available=1)

            adapter.push_stock([StockQuantity(stock_ids(listing), "ONE-OF-A-KIND", quantity=0, change_from=1)])
            emulator.wait_for_webhooks()
    finally:
        server.shutdown()
        server.server_close()

    ((headers, body),) = received
    echo = adapter.parse_stock_update(adapter.verify_webhook(headers, body).payload)
    assert (echo.external_ids, echo.quantity) == (stock_ids(listing), 0)


# ------------------------------------------------------------------------------------------- fulfillment


@pytest.fixture
def seed_fulfillable_order(emulator: ShopifyEmulator) -> SeedFulfillableOrder:
    return lambda: str(emulator.add_order()["id"])


@pytest.fixture
def order_fulfillment(emulator: ShopifyEmulator) -> OrderFulfillment:
    def read(order_external_id: str) -> list[Tracking]:
        return [
            Tracking(
                numbers=tuple(recorded["tracking_numbers"]),
                carrier=recorded["tracking_company"] or "",
                url=(recorded["tracking_urls"] or [""])[0],
            )
            for recorded in emulator.fulfillments(order_external_id)
        ]

    return read


class Meddler(requests.Session):
    """A session that lets something happen on Shopify's side just before the first fulfillmentCreate goes out
    (between the adapter's read of the order and its write)."""

    def __init__(self, before_create: Callable[[], None]) -> None:
        super().__init__()
        self.before_create = before_create
        self.meddled = False

    def post(self, url: Any, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        body = kwargs.get("json")
        if not self.meddled and isinstance(body, dict) and "fulfillmentCreate" in str(body.get("query")):
            self.meddled = True
            self.before_create()
        return super().post(url, *args, **kwargs)


def meddled_adapter(
    emulator: ShopifyEmulator, clock: VirtualClock, before_create: Callable[[], None]
) -> ShopifyAdapter:
    config = make_adapter(emulator).config
    return ShopifyAdapter(config, session=Meddler(before_create), sleep=clock.sleep, clock=clock.monotonic)


def creates(emulator: ShopifyEmulator) -> list[Any]:
    return [r for r in emulator.graphql_requests if "fulfillmentCreate" in r.json["query"]]


def mark(adapter: ShopifyAdapter, order: Mapping[str, Any] | str, *numbers: str, **tracking: Any) -> None:
    ident = order if isinstance(order, str) else str(order["id"])
    tracking.setdefault("carrier", "UPS")
    adapter.mark_fulfilled(order_external_id=ident, tracking=Tracking(numbers=numbers, **tracking))


USPS_NUMBER = "9400111899223197428490"
HAND_FULFILLMENT = """
mutation ByHand($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) { userErrors { field message } } }
"""
USPS_URL = f"https://tools.usps.com/go/TrackConfirmAction?tLabels={USPS_NUMBER}"


def test_a_single_parcel_becomes_one_fulfillment_of_every_line(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    order = emulator.add_order()

    mark(adapter, order, USPS_NUMBER, carrier="usps", url=USPS_URL)

    (fulfillment,) = emulator.fulfillments(order["id"])
    (fulfillment_order,) = emulator.fulfillment_orders(order["id"])
    assert (fulfillment["tracking_company"], fulfillment["tracking_numbers"], fulfillment["tracking_urls"]) == (
        "USPS",  # Shopify's spelling: it builds the link and follows the parcel
        [USPS_NUMBER],
        [USPS_URL],
    )
    assert fulfillment["notify_customer"] is False
    assert fulfillment["fulfillment_order_ids"] == [fulfillment_order["id"]]
    assert sorted(line["quantity"] for line in fulfillment["line_items"]) == [1, 2], "every line, every unit"
    assert fulfillment_order["status"] == "CLOSED"
    rest = emulator.get_order(order["id"])
    assert rest["fulfillment_status"] == "fulfilled"
    assert rest["fulfillments"][0]["tracking_numbers"] == [USPS_NUMBER]


def test_the_write_back_reads_fulfillment_orders_then_calls_fulfillment_create_with_a_key(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    order = emulator.add_order()

    mark(adapter, order, USPS_NUMBER, carrier="USPS", url=USPS_URL)

    read, create = emulator.graphql_requests
    (fulfillment_order,) = emulator.fulfillment_orders(order["id"])
    assert "fulfillmentOrders(first: $first, after: $after)" in read.json["query"]
    assert read.json["variables"]["id"] == f"gid://shopify/Order/{order['id']}"
    assert read.response["extensions"]["cost"]["requestedQueryCost"] <= fulfillment_orders_cost(
        FULFILLMENT_ORDERS_PAGE_SIZE, FULFILLMENT_ORDER_LINES_PAGE_SIZE, ORDER_FULFILLMENTS_LIMIT
    )
    assert "fulfillmentCreate(fulfillment: $fulfillment) @idempotent(key: $idempotencyKey)" in create.json["query"]
    assert "fulfillmentCreateV2" not in create.json["query"], "the deprecated name"
    assert "FulfillmentInput!" in create.json["query"]
    variables = create.json["variables"]
    assert uuid.UUID(variables["idempotencyKey"]).version == 5
    assert variables["fulfillment"] == {
        "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fulfillment_order["id"]}],
        "notifyCustomer": False,
        "trackingInfo": {"company": "USPS", "numbers": [USPS_NUMBER], "urls": [USPS_URL]},
    }
    assert create.response["extensions"]["cost"]["requestedQueryCost"] == FULFILLMENT_CREATE_COST
    assert create.response["data"]["fulfillmentCreate"]["userErrors"] == []


def test_several_parcels_go_in_one_tracking_info_with_a_url_each(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    order = emulator.add_order()

    mark(
        adapter,
        order,
        "1Z999AA10123456784",
        " 1Z999AA10123456791 ",
        "1Z999AA10123456784",  # the same parcel twice: once is enough
        carrier="UPS",
        url="https://www.ups.com/track?tracknum={number}",  # the carrier account's template
        notify_customer=True,
    )

    (fulfillment,) = emulator.fulfillments(order["id"])
    assert fulfillment["tracking_numbers"] == ["1Z999AA10123456784", "1Z999AA10123456791"]
    assert fulfillment["tracking_urls"] == [
        "https://www.ups.com/track?tracknum=1Z999AA10123456784",
        "https://www.ups.com/track?tracknum=1Z999AA10123456791",
    ]
    assert fulfillment["notify_customer"] is True
    (create,) = creates(emulator)
    assert create.json["variables"]["fulfillment"]["trackingInfo"]["numbers"] == fulfillment["tracking_numbers"]
    assert create.json["variables"]["fulfillment"]["notifyCustomer"] is True


@pytest.mark.parametrize(
    ("carrier", "company"),
    [
        ("usps", "USPS"),
        ("Fedex", "FedEx"),
        ("Federal Express", "FedEx"),
        ("dpd", "DPD"),
        ("DPD UK", "DPD UK"),
        ("gls", "GLS"),
        ("packeta", "Packeta"),
        ("Zásilkovna", "Packeta"),
        ("royal-mail", "Royal Mail"),
        ("Kurýr Novák", "Kurýr Novák"),  # unknown to Shopify: sent as the OMS names it
    ],
)
def test_carriers_are_sent_in_shopifys_spelling_when_it_knows_them(carrier: str, company: str) -> None:
    assert tracking_company(carrier) == company


def test_an_unknown_carrier_goes_as_is_with_its_url(emulator: ShopifyEmulator, adapter: ShopifyAdapter) -> None:
    order = emulator.add_order()

    mark(adapter, order, "KN-0042", carrier="Kurýr Novák", url="https://kuryr.example/sledovani/KN-0042")

    (fulfillment,) = emulator.fulfillments(order["id"])
    assert fulfillment["tracking_company"] == "Kurýr Novák"
    assert fulfillment["tracking_urls"] == ["https://kuryr.example/sledovani/KN-0042"]


def test_no_tracking_number_still_fulfils(emulator: ShopifyEmulator, adapter: ShopifyAdapter) -> None:
    order = emulator.add_order()

    mark(adapter, order, carrier="")

    (fulfillment,) = emulator.fulfillments(order["id"])
    assert (fulfillment["tracking_company"], fulfillment["tracking_numbers"]) == (None, [])
    assert "trackingInfo" not in creates(emulator)[0].json["variables"]["fulfillment"]


def test_a_retry_with_the_same_tracking_is_not_a_second_fulfillment(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    order = emulator.add_order()

    mark(adapter, order, USPS_NUMBER, carrier="USPS")
    mark(adapter, order, USPS_NUMBER, carrier="USPS")
    mark(adapter, order, f" {USPS_NUMBER}", carrier="usps", url=USPS_URL)  # the same parcel, described again

    assert len(emulator.fulfillments(order["id"])) == 1
    assert len(creates(emulator)) == 1, "the retries only read the order"
    assert len(emulator.graphql_requests) == 4


def test_a_lost_answer_is_retried_under_the_same_key_and_fulfils_once(
    emulator: ShopifyEmulator, clock: VirtualClock
) -> None:
    order = emulator.add_order()
    # Shopify creates the fulfillment, then the gateway times out: the client retries the very same call.
    adapter = meddled_adapter(emulator, clock, lambda: emulator.fail_next(1, status=504, after=True))

    mark(adapter, order, USPS_NUMBER, carrier="USPS")

    (fulfillment,) = emulator.fulfillments(order["id"])
    first, retry = creates(emulator)
    assert first.status == 504
    assert retry.json == first.json, "the same body under the same key"
    assert retry.response["data"]["fulfillmentCreate"]["fulfillment"]["id"] == fulfillment["id"]


def test_two_workers_writing_back_the_same_tracking_make_one_fulfillment(
    emulator: ShopifyEmulator, clock: VirtualClock
) -> None:
    order = emulator.add_order()
    other_worker = make_adapter(emulator, sleep=clock.sleep, clock=clock.monotonic)
    adapter = meddled_adapter(emulator, clock, lambda: mark(other_worker, order, USPS_NUMBER, carrier="USPS"))

    mark(adapter, order, USPS_NUMBER, carrier="USPS")

    assert len(emulator.fulfillments(order["id"])) == 1
    ours, theirs = creates(emulator)  # the other worker's ran first, inside ours
    assert ours.json["variables"]["idempotencyKey"] == theirs.json["variables"]["idempotencyKey"]


def test_fulfilled_by_hand_with_the_same_number_meanwhile_counts_as_done(
    emulator: ShopifyEmulator, clock: VirtualClock
) -> None:
    order = emulator.add_order()
    (fulfillment_order,) = emulator.fulfillment_orders(order["id"])

    def merchant_fulfils() -> None:
        requests.post(
            emulator.graphql_url,
            json={
                "query": HAND_FULFILLMENT,
                "variables": {
                    "f": {
                        "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fulfillment_order["id"]}],
                        "trackingInfo": {"number": USPS_NUMBER},
                    }
                },
            },
            headers={"X-Shopify-Access-Token": emulator.access_token},
            timeout=5,
        ).raise_for_status()

    adapter = meddled_adapter(emulator, clock, merchant_fulfils)

    mark(adapter, order, USPS_NUMBER, carrier="USPS")  # refused as closed, then found done

    assert len(emulator.fulfillments(order["id"])) == 1
    ours = creates(emulator)[-1]
    assert "unfulfillable status= closed" in ours.response["data"]["fulfillmentCreate"]["userErrors"][0]["message"]


def test_an_unknown_order_is_a_final_error_without_a_write(emulator: ShopifyEmulator, adapter: ShopifyAdapter) -> None:
    with pytest.raises(ChannelError) as caught:
        mark(adapter, "4404040404", USPS_NUMBER)

    assert type(caught.value) is ChannelError
    assert caught.value.retryable is False
    assert "no order gid://shopify/Order/4404040404" in str(caught.value)
    assert creates(emulator) == []


def test_an_order_id_shopify_cannot_have_fails_before_any_call(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    with pytest.raises(ChannelError) as caught:
        mark(adapter, "#1001", USPS_NUMBER)

    assert caught.value.retryable is False
    assert emulator.requests == []


def test_a_closed_fulfillment_order_is_a_final_error_without_a_write(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    order = emulator.add_order()
    (fulfillment_order,) = emulator.fulfillment_orders(order["id"])
    emulator.set_fulfillment_order_status(fulfillment_order["id"], "CLOSED")  # fulfilled outside the OMS

    with pytest.raises(ChannelError) as caught:
        mark(adapter, order, USPS_NUMBER)

    assert caught.value.retryable is False
    assert "nothing left to fulfil" in str(caught.value)
    assert "CLOSED" in str(caught.value)
    assert creates(emulator) == []


def test_an_order_fulfilled_with_other_tracking_is_a_final_error(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    order = emulator.add_order()
    mark(adapter, order, "1Z999AA10123456784")

    with pytest.raises(ChannelError) as caught:
        mark(adapter, order, "1Z999AA10123456791")  # a second label for a shipment already written back

    assert caught.value.retryable is False
    assert "other tracking (1Z999AA10123456784)" in str(caught.value)
    assert len(emulator.fulfillments(order["id"])) == 1


def test_a_fulfillment_order_closed_between_read_and_write_is_shopifys_final_refusal(
    emulator: ShopifyEmulator, clock: VirtualClock
) -> None:
    order = emulator.add_order()
    (fulfillment_order,) = emulator.fulfillment_orders(order["id"])
    adapter = meddled_adapter(
        emulator, clock, lambda: emulator.set_fulfillment_order_status(fulfillment_order["id"], "CLOSED")
    )

    with pytest.raises(ChannelError) as caught:
        mark(adapter, order, USPS_NUMBER)

    assert caught.value.retryable is False
    number = fulfillment_order["id"].rsplit("/", 1)[1]
    assert f"Fulfillment order {number} has an unfulfillable status= closed." in str(caught.value)
    assert emulator.fulfillments(order["id"]) == []
    assert [("fulfillmentCreate" in r.json["query"]) for r in emulator.graphql_requests] == [False, True, False]


def test_an_order_on_hold_is_a_retryable_error(emulator: ShopifyEmulator, adapter: ShopifyAdapter) -> None:
    order = emulator.add_order()
    (fulfillment_order,) = emulator.fulfillment_orders(order["id"])
    emulator.set_fulfillment_order_status(fulfillment_order["id"], "ON_HOLD")

    with pytest.raises(ChannelError) as caught:
        mark(adapter, order, USPS_NUMBER)

    assert caught.value.retryable is True, "the hold may be released"
    assert creates(emulator) == []
    emulator.set_fulfillment_order_status(fulfillment_order["id"], "OPEN")
    mark(adapter, order, USPS_NUMBER)
    assert len(emulator.fulfillments(order["id"])) == 1


def test_a_throttled_write_waits_then_succeeds(emulator: ShopifyEmulator, clock: VirtualClock) -> None:
    order = emulator.add_order()
    adapter = meddled_adapter(emulator, clock, lambda: emulator.force_throttled(1, currently_available=4))

    mark(adapter, order, USPS_NUMBER, carrier="USPS")

    (waited,) = clock.sleeps
    low = (FULFILLMENT_CREATE_COST - 4) / 100
    assert low <= waited <= low + THROTTLE_JITTER + PACE_MARGIN
    assert [r.response.get("errors", [{}])[0].get("message") for r in emulator.requests] == [None, "Throttled", None]
    assert len(emulator.fulfillments(order["id"])) == 1


def test_endless_throttling_is_a_retryable_throttled(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter, clock: VirtualClock
) -> None:
    order = emulator.add_order()
    emulator.force_throttled(100)

    with pytest.raises(Throttled) as caught:
        mark(adapter, order, USPS_NUMBER)

    assert caught.value.retryable is True
    assert emulator.fulfillments(order["id"]) == []


def test_an_outage_during_the_write_is_retried(emulator: ShopifyEmulator, clock: VirtualClock) -> None:
    order = emulator.add_order()
    adapter = meddled_adapter(emulator, clock, lambda: emulator.fail_next(2, status=503))

    mark(adapter, order, USPS_NUMBER)

    assert [r.status for r in creates(emulator)] == [503, 503, 200]
    assert len(emulator.fulfillments(order["id"])) == 1


def test_an_order_split_over_two_locations_gets_a_fulfillment_at_each(
    emulator: ShopifyEmulator, adapter: ShopifyAdapter
) -> None:
    order = emulator.add_order()
    second = emulator.add_location("Overflow warehouse")
    emulator.split_fulfillment_order(order["id"], [order["line_items"][1]["id"]], location=second)

    mark(adapter, order, USPS_NUMBER, carrier="USPS")

    fulfillments = emulator.fulfillments(order["id"])
    assert sorted(f["location_id"] for f in fulfillments) == sorted([emulator.location_id, second])
    assert all(f["tracking_numbers"] == [USPS_NUMBER] for f in fulfillments)
    assert len(creates(emulator)) == 2, "one fulfillmentCreate per location"
    assert {fo["status"] for fo in emulator.fulfillment_orders(order["id"])} == {"CLOSED"}
    assert emulator.get_order(order["id"])["fulfillment_status"] == "fulfilled"


def test_a_location_put_on_hold_midway_is_retried_later_for_what_is_left(
    emulator: ShopifyEmulator, clock: VirtualClock
) -> None:
    order = emulator.add_order()
    second = emulator.split_fulfillment_order(
        order["id"], [order["line_items"][1]["id"]], location=emulator.add_location("Overflow")
    )
    adapter = meddled_adapter(emulator, clock, lambda: emulator.set_fulfillment_order_status(second, "ON_HOLD"))

    with pytest.raises(ChannelError) as caught:
        mark(adapter, order, USPS_NUMBER)

    assert caught.value.retryable is True
    assert len(emulator.fulfillments(order["id"])) == 1, "the other location went through"
    emulator.set_fulfillment_order_status(second, "OPEN")
    emulator.clear_requests()

    mark(adapter, order, USPS_NUMBER)

    assert len(emulator.fulfillments(order["id"])) == 2
    (create,) = creates(emulator)
    assert create.json["variables"]["fulfillment"]["lineItemsByFulfillmentOrder"] == [{"fulfillmentOrderId": second}]
