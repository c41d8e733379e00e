"""The Shopify emulator speaks Shopify's wire format: checked with plain requests, no adapter involved."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import requests

from tests.emulators import VirtualClock
from tests.emulators.shopify import ShopifyEmulator, order_payload, sign, webhook_delivery


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def emulator(clock: VirtualClock) -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator(clock=clock.monotonic) as running:
        yield running


def post(
    emulator: ShopifyEmulator, query: str, variables: dict[str, Any] | None = None, **extra: Any
) -> requests.Response:
    body: dict[str, Any] = {"query": query, **extra}
    if variables is not None:
        body["variables"] = variables
    return requests.post(
        emulator.graphql_url, json=body, timeout=5, headers={"X-Shopify-Access-Token": emulator.access_token}
    )


def gql(emulator: ShopifyEmulator, query: str, variables: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    response = post(emulator, query, variables, **extra)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# ------------------------------------------------------------------------------------------------ HTTP


def test_serves_on_loopback_with_a_free_port(emulator: ShopifyEmulator) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emulator.base_url)
    assert emulator.graphql_url.endswith(f"/admin/api/{emulator.api_version}/graphql.json")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/admin/api/2019-04/graphql.json"),
        ("POST", "/admin/api/{version}/orders.json"),
        ("GET", "/admin/api/{version}/graphql.json"),
        ("POST", "/"),
    ],
)
def test_anything_but_the_graphql_endpoint_is_404(emulator: ShopifyEmulator, method: str, path: str) -> None:
    url = emulator.base_url + path.format(version=emulator.api_version)

    response = requests.request(
        method,
        url,
        json={"query": "{ shop { name } }"},
        timeout=5,
        headers={"X-Shopify-Access-Token": emulator.access_token},
    )

    assert response.status_code == 404
    assert response.json() == {"errors": "Not Found"}


@pytest.mark.parametrize("token", [None, "", "shpat_not_the_token"])
def test_a_missing_or_wrong_token_is_401(emulator: ShopifyEmulator, token: str | None) -> None:
    headers = {} if token is None else {"X-Shopify-Access-Token": token}

    response = requests.post(emulator.graphql_url, json={"query": "{ shop { name } }"}, headers=headers, timeout=5)

    assert response.status_code == 401
    assert response.json() == {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"variables": {}}', b'{"query": ""}', b""])
def test_a_body_without_a_query_is_400(emulator: ShopifyEmulator, body: bytes) -> None:
    response = requests.post(
        emulator.graphql_url,
        data=body,
        timeout=5,
        headers={"X-Shopify-Access-Token": emulator.access_token, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json() == {"errors": {"query": "Required parameter missing or invalid"}}


def test_answers_carry_the_api_version_and_a_request_id(emulator: ShopifyEmulator) -> None:
    response = post(emulator, "{ shop { name } }")

    assert response.headers["X-Shopify-API-Version"] == emulator.api_version
    assert response.headers["X-Request-Id"]
    assert response.headers["Content-Type"].startswith("application/json")


def test_records_every_request_from_many_threads(emulator: ShopifyEmulator) -> None:
    threads = [threading.Thread(target=post, args=(emulator, "{ shop { name } }")) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    requests.get(emulator.base_url + "/nowhere", timeout=5)

    recorded = emulator.requests

    assert len(recorded) == 21
    assert len(emulator.graphql_requests) == 20
    first = recorded[0]
    assert first.headers["x-shopify-access-token"] == emulator.access_token
    assert first.json == {"query": "{ shop { name } }"}
    assert first.status == 200
    assert recorded[-1].status == 404
    emulator.clear_requests()
    assert emulator.requests == []


def test_latency_is_injected_per_request(emulator: ShopifyEmulator) -> None:
    emulator.latency = 0.2
    started = time.perf_counter()

    post(emulator, "{ shop { name } }")

    assert time.perf_counter() - started >= 0.2


def test_server_errors_can_be_injected(emulator: ShopifyEmulator) -> None:
    emulator.fail_next(2, status=502)

    assert post(emulator, "{ shop { name } }").status_code == 502
    second = post(emulator, "{ shop { name } }")
    assert (second.status_code, second.json()) == (502, {"errors": "Bad Gateway"})
    assert post(emulator, "{ shop { name } }").status_code == 200


def test_429_comes_with_retry_after(emulator: ShopifyEmulator) -> None:
    emulator.fail_next(1, status=429, retry_after=4)

    response = post(emulator, "{ shop { name } }")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "4.0"


def test_stop_frees_the_port() -> None:
    emulator = ShopifyEmulator().start()
    url = emulator.graphql_url
    emulator.stop()

    with pytest.raises(requests.ConnectionError):
        requests.post(url, json={}, timeout=2)


# ---------------------------------------------------------------------------------------------- GraphQL


def test_returns_only_the_selected_fields_under_their_aliases(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order(name="#2001")

    result = gql(
        emulator,
        "{ orders(first: 5) { nodes { __typename id number: name totalPriceSet { shopMoney { amount } } } } }",
    )

    (node,) = result["data"]["orders"]["nodes"]
    assert node == {
        "__typename": "Order",
        "id": f"gid://shopify/Order/{order['id']}",
        "number": "#2001",
        "totalPriceSet": {"shopMoney": {"amount": node["totalPriceSet"]["shopMoney"]["amount"]}},
    }
    assert Decimal(node["totalPriceSet"]["shopMoney"]["amount"]) == Decimal(order["total_price"])


def test_renders_an_order_the_way_the_graphql_api_does(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order(
        created_at=datetime(2026, 11, 20, 14, 0, tzinfo=UTC),
        tags="b, a",
        financial_status="partially_refunded",
        cancel_reason="customer",
    )

    result = gql(
        emulator,
        """{ orders(first: 1) { nodes {
        legacyResourceId createdAt tags displayFinancialStatus cancelReason
        subtotalPriceSet { shopMoney { amount currencyCode } }
        lineItems(first: 5) { nodes { id variant { legacyResourceId } } } } } }""",
    )

    (node,) = result["data"]["orders"]["nodes"]
    assert node["legacyResourceId"] == str(order["id"])
    assert node["createdAt"] == "2026-11-20T14:00:00Z"
    assert node["tags"] == ["b", "a"]
    assert node["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert node["cancelReason"] == "CUSTOMER"
    assert node["subtotalPriceSet"]["shopMoney"]["currencyCode"] == "USD"
    assert re.fullmatch(r"\d+\.\d+", node["subtotalPriceSet"]["shopMoney"]["amount"])
    line = order["line_items"][0]
    assert node["lineItems"]["nodes"][0] == {
        "id": f"gid://shopify/LineItem/{line['id']}",
        "variant": {"legacyResourceId": str(line["variant_id"])},
    }


def test_variables_defaults_inline_arguments_fragments_and_directives(emulator: ShopifyEmulator) -> None:
    for _ in range(3):
        emulator.add_order()
    query = """
    query Page($n: Int = 2, $withName: Boolean!) {
      orders(first: $n, sortKey: ID, reverse: true) {
        nodes { ...Bits ... on Order { email } name @include(if: $withName) }
      }
    }
    fragment Bits on Order { id }
    """

    result = gql(emulator, query, {"withName": False})

    nodes = result["data"]["orders"]["nodes"]
    assert len(nodes) == 2
    assert set(nodes[0]) == {"id", "email"}
    assert nodes[0]["id"] > nodes[1]["id"]


def test_operation_name_picks_one_of_several(emulator: ShopifyEmulator) -> None:
    query = "query A { shop { name } } query B { shop { myshopifyDomain } }"

    assert gql(emulator, query, operationName="B")["data"] == {"shop": {"myshopifyDomain": emulator.shop_domain}}
    assert "operation name is required" in gql(emulator, query)["errors"][0]["message"]


def test_edges_cursors_and_page_info_paginate(emulator: ShopifyEmulator) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [emulator.add_order(updated_at=start + timedelta(hours=i))["id"] for i in range(5)]
    query = """query($after: String) { orders(first: 2, after: $after, sortKey: UPDATED_AT) {
        edges { cursor node { legacyResourceId } } pageInfo { hasNextPage hasPreviousPage endCursor } } }"""

    seen, after, pages = [], None, 0
    while True:
        connection = gql(emulator, query, {"after": after})["data"]["orders"]
        pages += 1
        seen += [int(edge["node"]["legacyResourceId"]) for edge in connection["edges"]]
        assert connection["pageInfo"]["endCursor"] == connection["edges"][-1]["cursor"]
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    assert (seen, pages) == (ids, 3)


def test_search_filters_by_update_time_and_warns_of_unknown_fields(emulator: ShopifyEmulator) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [emulator.add_order(updated_at=start + timedelta(days=i))["id"] for i in range(5)]

    later = gql(
        emulator,
        "{ orders(first: 10, query: \"updated_at:>='2026-01-03T00:00:00Z'\") { nodes { legacyResourceId } } }",
    )
    window = gql(
        emulator,
        "{ orders(first: 10, query: \"updated_at:>2026-01-02 updated_at:<'2026-01-04'\") "
        "{ nodes { legacyResourceId } } }",
    )
    odd = gql(emulator, '{ orders(first: 10, query: "colour:blue") { nodes { id } } }')

    assert [int(n["legacyResourceId"]) for n in later["data"]["orders"]["nodes"]] == ids[2:]
    assert [int(n["legacyResourceId"]) for n in window["data"]["orders"]["nodes"]] == ids[2:3]
    assert odd["extensions"]["search"][0]["warnings"][0]["field"] == "colour"


def test_order_by_id(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order()

    found = gql(emulator, "query($id: ID!) { order(id: $id) { name } }", {"id": order["admin_graphql_api_id"]})
    missing = gql(emulator, '{ order(id: "gid://shopify/Order/1") { name } }')
    no_id = gql(emulator, "{ order { name } }")

    assert found["data"] == {"order": {"name": order["name"]}}
    assert missing["data"] == {"order": None}
    assert no_id["errors"][0]["extensions"]["code"] == "missingRequiredArguments"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("{ nope { id } }", "Field 'nope' doesn't exist on type 'QueryRoot'"),
        ("mutation { nope(input: {}) { id } }", "Field 'nope' doesn't exist on type 'Mutation'"),
        ("{ orders(first: 1) { nodes { colour } } }", "Field 'colour' doesn't exist on type 'Order'"),
        (
            "{ orders(first: 1, colour: RED) { nodes { id } } }",
            "Field 'orders' doesn't accept argument 'colour'",
        ),
        ("{ orders(first: 1) { nodes { customer } } }", "Field must have selections"),
        ("{ orders(first: 1) { nodes { id { x } } } }", "Selections can't be made on scalars"),
        ("{ orders { nodes { id } } }", "you must provide one of first or last"),
        ("{ orders(first: 251) { nodes { id } } }", "The first argument must be between 0 and 250"),
        ('{ orders(first: 1, after: "garbage") { nodes { id } } }', "Invalid cursor"),
        ("{ orders(first: 1) { nodes { ...Missing } } }", "Fragment Missing was used, but not defined"),
        ("{ orders(first: 1) { nodes { id }", 'Parse error on "end of file"'),
    ],
)
def test_bad_queries_get_graphql_errors_and_no_data(emulator: ShopifyEmulator, query: str, message: str) -> None:
    emulator.add_order()

    response = post(emulator, query)

    assert response.status_code == 200
    body = response.json()
    assert "data" not in body
    assert message in body["errors"][0]["message"]


def test_unknown_root_field_error_has_shopifys_shape(emulator: ShopifyEmulator) -> None:
    (error,) = gql(emulator, "{\n  nope { id }\n}")["errors"]

    assert error == {
        "message": "Field 'nope' doesn't exist on type 'QueryRoot'",
        "locations": [{"line": 2, "column": 3}],
        "path": ["query", "nope"],
        "extensions": {"code": "undefinedField", "typeName": "QueryRoot", "fieldName": "nope"},
    }


def test_new_root_fields_can_be_registered(emulator: ShopifyEmulator) -> None:
    emulator.register_root_field(
        "locations",
        lambda args: {
            "__typename": "LocationConnection",
            "nodes": [{"__typename": "Location", "id": "gid://shopify/Location/1", "name": "Main"}],
        },
        arguments=("first",),
    )
    emulator.register_root_field(
        "ping",
        lambda args: {"__typename": "PingPayload", "echo": args["text"]},
        operation="mutation",
        arguments=("text",),
        required=("text",),
    )

    query = gql(emulator, "{ locations(first: 5) { nodes { name } } }")
    mutation = gql(emulator, 'mutation { ping(text: "hi") { echo } }')

    assert query["data"] == {"locations": {"nodes": [{"name": "Main"}]}}
    assert mutation["data"] == {"ping": {"echo": "hi"}}
    assert mutation["extensions"]["cost"]["requestedQueryCost"] == 11


# ------------------------------------------------------------------------------------------------- cost


@pytest.mark.parametrize(
    ("query", "requested"),
    [
        ("{ shop { name } }", 1),
        ("{ orders(first: 10) { nodes { id } } }", 12),
        ("{ orders(first: 10) { pageInfo { hasNextPage } edges { cursor node { id } } } }", 13),
        ("{ orders(first: 5) { nodes { customer { id } totalPriceSet { shopMoney { amount } } } } }", 22),
        (
            "{ orders(first: 4) { nodes { lineItems(first: 3) { nodes {"
            " taxLines { priceSet { shopMoney { amount } } } } } } } }",
            2 + 4 * (1 + 2 + 3 * (1 + 3)),
        ),
    ],
)
def test_requested_cost_follows_shopifys_rules(emulator: ShopifyEmulator, query: str, requested: int) -> None:
    cost = gql(emulator, query)["extensions"]["cost"]

    assert cost["requestedQueryCost"] == requested


def test_actual_cost_counts_what_came_back_and_is_what_the_bucket_pays(emulator: ShopifyEmulator) -> None:
    for _ in range(3):
        emulator.add_order()

    cost = gql(emulator, "{ orders(first: 50) { nodes { id } } }")["extensions"]["cost"]

    assert cost["requestedQueryCost"] == 52
    assert cost["actualQueryCost"] == 5
    assert cost["throttleStatus"] == {
        "maximumAvailable": 2000.0,
        "currentlyAvailable": 1995,
        "restoreRate": 100.0,
    }


def test_a_query_over_the_single_query_limit_is_refused(emulator: ShopifyEmulator) -> None:
    result = gql(emulator, "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }")

    (error,) = result["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["cost"] == 2 + 250 * (1 + 2 + 250)
    assert error["extensions"]["maxCost"] == 1000
    assert error["message"].startswith(f"Query cost is {2 + 250 * 253}, which exceeds the single query max cost")


def test_an_empty_bucket_answers_throttled(emulator: ShopifyEmulator) -> None:
    emulator.set_bucket_available(5)

    result = gql(emulator, "{ orders(first: 10) { nodes { id } } }")

    assert result == {
        "errors": [
            {
                "message": "Throttled",
                "extensions": {
                    "code": "THROTTLED",
                    "documentation": "https://shopify.dev/api/usage/rate-limits",
                },
            }
        ],
        "extensions": {
            "cost": {
                "requestedQueryCost": 12,
                "actualQueryCost": None,
                "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 5, "restoreRate": 100.0},
            }
        },
    }


def test_the_bucket_leaks_back_at_the_restore_rate(emulator: ShopifyEmulator, clock: VirtualClock) -> None:
    emulator.set_bucket_available(0)

    clock.advance(0.5)
    assert emulator.throttle_status()["currentlyAvailable"] == 50
    clock.advance(60)
    assert emulator.throttle_status()["currentlyAvailable"] == 2000


def test_forced_throttles_then_normal_service(emulator: ShopifyEmulator) -> None:
    emulator.force_throttled(2, currently_available=7)

    first = gql(emulator, "{ shop { name } }")
    gql(emulator, "{ shop { name } }")
    third = gql(emulator, "{ shop { name } }")

    assert first["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert first["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 7
    assert third["data"] == {"shop": {"name": "OMS Emulator"}}


# ----------------------------------------------------------------------------------------- store helpers


def test_order_payload_is_consistent_and_fresh() -> None:
    first, second = order_payload(), order_payload()

    assert first["id"] != second["id"]
    assert first["admin_graphql_api_id"] == f"gid://shopify/Order/{first['id']}"
    lines = sum(Decimal(li["price"]) * li["quantity"] for li in first["line_items"])
    assert Decimal(first["total_line_items_price"]) == lines
    assert Decimal(first["total_price"]) == (
        Decimal(first["subtotal_price"])
        + Decimal(first["total_shipping_price_set"]["shop_money"]["amount"])
        + Decimal(first["total_tax"])
    )
    assert isinstance(first["tags"], str)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", first["updated_at"])


def test_order_payload_overrides() -> None:
    payload = order_payload(
        currency="EUR",
        email="x@example.de",
        shipping_address=None,
        line_items=[{"sku": None, "price": "9.50", "requires_shipping": False, "tax": "1.52"}],
    )

    assert "shipping_address" not in payload
    assert payload["shipping_lines"] == []
    assert payload["line_items"][0]["sku"] is None
    assert payload["total_price"] == "11.02"
    assert payload["total_price_set"]["shop_money"]["currency_code"] == "EUR"
    assert payload["customer"]["email"] == "x@example.de"


def test_update_order_moves_updated_at_forward(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order(updated_at=datetime.now(UTC) + timedelta(hours=1))

    changed = emulator.update_order(order["id"], note="moved")

    assert datetime.fromisoformat(changed["updated_at"]) > datetime.fromisoformat(order["updated_at"])
    assert changed["note"] == "moved"
    assert emulator.get_order(order["id"])["note"] == "moved"
    with pytest.raises(ValueError, match="already exists"):
        emulator.add_order(id=order["id"])


# ---------------------------------------------------------------------------------------------- webhooks


def test_sign_is_base64_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"id":1}'

    expected = base64.b64encode(hmac.new(b"secret", body, hashlib.sha256).digest()).decode()

    assert sign(body, "secret") == expected


def test_webhook_delivery_has_shopifys_headers() -> None:
    payload = order_payload()

    headers, body = webhook_delivery("orders/create", payload, "secret", shop_domain="x.myshopify.com")
    again, _ = webhook_delivery(
        "orders/create",
        payload,
        "secret",
        shop_domain="x.myshopify.com",
        event_id=headers["X-Shopify-Event-Id"],
    )

    assert json.loads(body) == payload
    assert body == json.dumps(payload, separators=(",", ":")).encode()  # compact, as Shopify sends
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Shopify-Topic"] == "orders/create"
    assert headers["X-Shopify-Hmac-Sha256"] == sign(body, "secret")
    assert headers["X-Shopify-Shop-Domain"] == "x.myshopify.com"
    assert headers["X-Shopify-API-Version"] == "2026-07"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", headers["X-Shopify-Triggered-At"])
    assert again["X-Shopify-Event-Id"] == headers["X-Shopify-Event-Id"]
    assert again["X-Shopify-Webhook-Id"] != headers["X-Shopify-Webhook-Id"]


def test_webhook_delivery_signs_raw_bytes_as_given() -> None:
    headers, body = webhook_delivery("orders/create", b"{broken", "secret")

    assert body == b"{broken"
    assert headers["X-Shopify-Hmac-Sha256"] == sign(b"{broken", "secret")


# --------------------------------------------------------------------------------------------- inventory

SET_MUTATION = """
mutation Set($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id reason referenceDocumentUri
      changes { name delta quantityAfterChange item { id sku } location { id } } }
    userErrors { code field message }
  }
}
"""

UNKEYED_MUTATION = (
    "mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) { userErrors { code } } }"
)


def set_quantities(
    emulator: ShopifyEmulator,
    quantities: list[dict[str, Any]],
    *,
    key: str | None = None,
    name: str = "available",
    reason: str = "correction",
    uri: str | None = "gid://oms/StockPush/1",
) -> dict[str, Any]:
    payload = {"name": name, "reason": reason, "referenceDocumentUri": uri, "quantities": quantities}
    return gql(emulator, SET_MUTATION, {"input": payload, "key": key or str(uuid.uuid4())})


def quantity(listing: dict[str, Any], value: int, change_from: int | None) -> dict[str, Any]:
    return {
        "inventoryItemId": listing["inventory_item_id"],
        "locationId": listing["location_id"],
        "quantity": value,
        "changeFromQuantity": change_from,
    }


def test_add_product_gives_shopifys_ids_and_renders_the_catalogue(emulator: ShopifyEmulator) -> None:
    listing = emulator.add_product(
        sku="MUG-STONE-350",
        available=12,
        title="Stoneware Mug",
        variant_title="Sand / 350 ml",
        barcode="5012345678900",
        price="16.5",
        weight=(0.42, "KILOGRAMS"),
    )

    result = gql(
        emulator,
        """query($loc: ID!) { productVariants(first: 5) { nodes {
        id sku barcode title price displayName product { id title }
        inventoryItem { id tracked measurement { weight { unit value } }
          inventoryLevel(locationId: $loc) { id quantities(names: ["available", "on_hand", "committed"]) {
            name quantity } } } } } }""",
        {"loc": emulator.location_id},
    )

    assert re.fullmatch(r"gid://shopify/Product/\d+", listing["product_id"])
    assert re.fullmatch(r"gid://shopify/InventoryItem/\d+", listing["inventory_item_id"])
    assert listing["location_id"] == emulator.location_id
    (node,) = result["data"]["productVariants"]["nodes"]
    item_number = listing["inventory_item_id"].rsplit("/", 1)[1]
    location_number = emulator.location_id.rsplit("/", 1)[1]
    assert node == {
        "id": listing["variant_id"],
        "sku": "MUG-STONE-350",
        "barcode": "5012345678900",
        "title": "Sand / 350 ml",
        "price": "16.50",
        "displayName": "Stoneware Mug - Sand / 350 ml",
        "product": {"id": listing["product_id"], "title": "Stoneware Mug"},
        "inventoryItem": {
            "id": listing["inventory_item_id"],
            "tracked": True,
            "measurement": {"weight": {"unit": "KILOGRAMS", "value": 0.42}},
            "inventoryLevel": {
                "id": f"gid://shopify/InventoryLevel/{location_number}?inventory_item_id={item_number}",
                "quantities": [
                    {"name": "available", "quantity": 12},
                    {"name": "on_hand", "quantity": 12},
                    {"name": "committed", "quantity": 0},
                ],
            },
        },
    }


def test_location_inventory_levels_paginate_only_what_is_stocked_there(emulator: ShopifyEmulator) -> None:
    items = [emulator.add_product(sku=f"SKU-{i:03d}", available=i)["inventory_item_id"] for i in range(300)]
    elsewhere = emulator.add_location("Overflow")
    emulator.add_product(sku="ONLY-ELSEWHERE", available=5, location=elsewhere)
    emulator.add_product(sku="NOWHERE", available=None)
    query = """query($loc: ID!, $after: String) { location(id: $loc) { name
        inventoryLevels(first: 120, after: $after) { pageInfo { hasNextPage endCursor }
          nodes { item { id sku } quantities(names: ["available"]) { quantity } } } } }"""

    seen: list[tuple[str, int]] = []
    after, costs = None, []
    while True:
        result = gql(emulator, query, {"loc": emulator.location_id, "after": after})
        costs.append(result["extensions"]["cost"]["requestedQueryCost"])
        levels = result["data"]["location"]["inventoryLevels"]
        seen += [(n["item"]["id"], n["quantities"][0]["quantity"]) for n in levels["nodes"]]
        if not levels["pageInfo"]["hasNextPage"]:
            break
        after = levels["pageInfo"]["endCursor"]

    assert seen == [(item, i) for i, item in enumerate(items)]
    assert costs == [1 + 2 + 1 + 120 * (1 + 1 + 1)] * 3
    other = gql(emulator, "query($loc: ID!) { location(id: $loc) { name } }", {"loc": elsewhere})
    assert other["data"] == {"location": {"name": "Overflow"}}
    assert gql(emulator, "{ location { name } }")["data"] == {"location": {"name": "Main warehouse"}}


def test_set_quantities_sets_available_moves_on_hand_and_lists_the_changes(emulator: ShopifyEmulator) -> None:
    tee, mug = emulator.add_product(sku="TEE", available=5), emulator.add_product(sku="MUG", available=2)

    result = set_quantities(emulator, [quantity(tee, 3, 5), quantity(mug, 2, None)])

    payload = result["data"]["inventorySetQuantities"]
    assert payload["userErrors"] == []
    group = payload["inventoryAdjustmentGroup"]
    assert (group["reason"], group["referenceDocumentUri"]) == ("correction", "gid://oms/StockPush/1")
    assert group["changes"] == [
        {
            "name": "available",
            "delta": -2,
            "quantityAfterChange": 3,
            "item": {"id": tee["inventory_item_id"], "sku": "TEE"},
            "location": {"id": emulator.location_id},
        },
        {
            "name": "on_hand",
            "delta": -2,
            "quantityAfterChange": 3,
            "item": {"id": tee["inventory_item_id"], "sku": "TEE"},
            "location": {"id": emulator.location_id},
        },
    ]  # the mug did not move, so it is not listed
    assert emulator.quantities(tee)["available"] == 3
    assert emulator.quantities(tee)["on_hand"] == 3
    assert emulator.available(mug) == 2


def test_a_mutation_costs_10_plus_its_payload_and_is_charged(emulator: ShopifyEmulator) -> None:
    listing = emulator.add_product(sku="A", available=1)

    cost = set_quantities(emulator, [quantity(listing, 2, 1)])["extensions"]["cost"]

    # mutation 10, payload 1, group 1, changes 1 (+ item 1 + location 1), userErrors 1
    assert cost["requestedQueryCost"] == 16
    assert cost["actualQueryCost"] == 15  # the empty userErrors list came back as nothing
    assert cost["throttleStatus"]["currentlyAvailable"] == 2000 - 15


def test_a_stale_change_from_fails_the_whole_call_and_applies_nothing(emulator: ShopifyEmulator) -> None:
    listings = [emulator.add_product(sku=f"S{i}", available=10) for i in range(5)]
    emulator.set_available(listings[3], 8)  # sold on Shopify meanwhile

    result = set_quantities(emulator, [quantity(listing, 1, 10) for listing in listings])

    payload = result["data"]["inventorySetQuantities"]
    assert payload["inventoryAdjustmentGroup"] is None
    assert payload["userErrors"] == [
        {
            "code": "CHANGE_FROM_QUANTITY_STALE",
            "field": ["input", "quantities", "3", "changeFromQuantity"],
            "message": "The changeFromQuantity value does not match persisted value.",
        }
    ]
    assert [emulator.available(listing) for listing in listings] == [10, 10, 10, 8, 10]


@pytest.mark.parametrize(
    ("spoil", "code", "field"),
    [
        (
            lambda q, e: q.update(inventoryItemId="gid://shopify/InventoryItem/1"),
            "INVALID_INVENTORY_ITEM",
            "inventoryItemId",
        ),
        (lambda q, e: q.update(locationId="gid://shopify/Location/1"), "INVALID_LOCATION", "locationId"),
        (lambda q, e: q.update(locationId=e.add_location("Empty")), "ITEM_NOT_STOCKED_AT_LOCATION", "locationId"),
        (lambda q, e: q.update(quantity=1_000_000_001), "INVALID_QUANTITY_TOO_HIGH", "quantity"),
    ],
)
def test_a_bad_quantity_is_a_user_error_naming_it_and_nothing_is_applied(
    emulator: ShopifyEmulator, spoil: Any, code: str, field: str
) -> None:
    good, bad = emulator.add_product(sku="GOOD", available=1), emulator.add_product(sku="BAD", available=1)
    spoilt = quantity(bad, 4, None)
    spoil(spoilt, emulator)

    errors = set_quantities(emulator, [quantity(good, 9, 1), spoilt])["data"]["inventorySetQuantities"]["userErrors"]

    assert [(e["code"], e["field"]) for e in errors] == [(code, ["input", "quantities", "1", field])]
    assert emulator.available(good) == 1


def test_the_same_item_twice_and_bad_name_or_reason_are_user_errors(emulator: ShopifyEmulator) -> None:
    listing = emulator.add_product(sku="A", available=1)

    twice = set_quantities(emulator, [quantity(listing, 2, None), quantity(listing, 3, None)])
    odd = set_quantities(emulator, [quantity(listing, 2, None)], name="committed", reason="because", uri="nope")

    assert [e["code"] for e in twice["data"]["inventorySetQuantities"]["userErrors"]] == [
        "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR"
    ]
    assert [e["code"] for e in odd["data"]["inventorySetQuantities"]["userErrors"]] == [
        "INVALID_NAME",
        "INVALID_REASON",
        "INVALID_REFERENCE_DOCUMENT",
    ]
    assert emulator.available(listing) == 1


def test_more_than_250_quantities_refuse_the_request(emulator: ShopifyEmulator) -> None:
    listings = [emulator.add_product(sku=f"S{i}", available=0) for i in range(251)]

    result = set_quantities(emulator, [quantity(listing, 1, 0) for listing in listings])

    assert "data" not in result
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"
    assert error["message"] == "The input array size of 251 is greater than the maximum allowed of 250."
    assert not any(emulator.available(listing) for listing in listings)


def test_from_2026_04_change_from_must_be_given_on_every_quantity(emulator: ShopifyEmulator) -> None:
    listing = emulator.add_product(sku="A", available=1)
    bare = quantity(listing, 5, None)
    del bare["changeFromQuantity"]

    missing = set_quantities(emulator, [bare])
    legacy = set_quantities(emulator, [{**bare, "compareQuantity": 1}])

    assert "changeFromQuantity is required" in missing["errors"][0]["message"]
    assert "compareQuantity" in legacy["errors"][0]["message"]
    assert emulator.available(listing) == 1


def test_before_2026_04_change_from_may_be_left_out(clock: VirtualClock) -> None:
    with ShopifyEmulator(api_version="2026-01", clock=clock.monotonic) as old:
        listing = old.add_product(sku="A", available=1)
        bare = quantity(listing, 5, None)
        del bare["changeFromQuantity"]

        result = gql(
            old,
            UNKEYED_MUTATION,
            {"input": {"name": "available", "reason": "correction", "quantities": [bare]}},
        )

        assert result["data"] == {"inventorySetQuantities": {"userErrors": []}}
        assert old.available(listing) == 5


def test_from_2026_04_the_idempotent_directive_is_required(emulator: ShopifyEmulator) -> None:
    listing = emulator.add_product(sku="A", available=1)

    result = gql(
        emulator,
        UNKEYED_MUTATION,
        {"input": {"name": "available", "reason": "correction", "quantities": [quantity(listing, 5, 1)]}},
    )

    assert "@idempotent" in result["errors"][0]["message"]
    assert emulator.available(listing) == 1


def test_the_same_key_and_input_answer_the_first_result_without_applying_again(emulator: ShopifyEmulator) -> None:
    listing = emulator.add_product(sku="A", available=1)
    key = str(uuid.uuid4())

    first = set_quantities(emulator, [quantity(listing, 5, None)], key=key)
    emulator.set_available(listing, 4)  # a sale on Shopify between the two
    again = set_quantities(emulator, [quantity(listing, 5, None)], key=key)
    other = set_quantities(emulator, [quantity(listing, 6, None)], key=key)

    assert again["data"] == first["data"]
    assert emulator.available(listing) == 4, "the repeat was not applied a second time"
    assert other["data"]["inventorySetQuantities"] == {
        "inventoryAdjustmentGroup": None,
        "userErrors": [
            {
                "code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                "field": None,
                "message": "The same idempotency key cannot be used with different operation parameters.",
            }
        ],
    }


def test_nodes_are_priced_per_id_and_unknown_ones_are_null(emulator: ShopifyEmulator) -> None:
    listings = [emulator.add_product(sku=f"S{i}", available=i) for i in range(3)]
    ids = [listing["inventory_item_id"] for listing in listings] + ["gid://shopify/InventoryItem/1"]

    result = gql(
        emulator,
        """query($ids: [ID!]!, $loc: ID!) { nodes(ids: $ids) { ... on InventoryItem { id
        inventoryLevel(locationId: $loc) { quantities(names: ["available"]) { quantity } } } } }""",
        {"ids": ids, "loc": emulator.location_id},
    )

    nodes = result["data"]["nodes"]
    assert [n and n["inventoryLevel"]["quantities"][0]["quantity"] for n in nodes] == [0, 1, 2, None]
    assert result["extensions"]["cost"]["requestedQueryCost"] == 4 * 3


def test_an_unknown_quantity_name_is_an_error(emulator: ShopifyEmulator) -> None:
    listing = emulator.add_product(sku="A", available=1)

    result = gql(
        emulator,
        "query($id: ID!) { inventoryItem(id: $id) { inventoryLevels(first: 1) { nodes {"
        ' quantities(names: ["sold"]) { quantity } } } } }',
        {"id": listing["inventory_item_id"]},
    )

    assert "Invalid quantity names" in result["errors"][0]["message"]


def test_drift_moves_available_and_on_hand_together(emulator: ShopifyEmulator) -> None:
    listing = emulator.add_product(sku="A", available=6)

    emulator.set_available(listing["inventory_item_id"], 2)

    assert (emulator.available(listing), emulator.quantities(listing)["on_hand"]) == (2, 2)
    with pytest.raises(KeyError):
        emulator.available(listing, location=emulator.add_location("Elsewhere"))


def test_level_webhook_is_a_signed_inventory_levels_update(emulator: ShopifyEmulator) -> None:
    listing = emulator.add_product(sku="A", available=6)
    emulator.set_available(listing, 5)

    headers, body = emulator.level_webhook(listing, "secret", event_id="evt-9")

    payload = json.loads(body)
    item = int(listing["inventory_item_id"].rsplit("/", 1)[1])
    location = int(emulator.location_id.rsplit("/", 1)[1])
    assert payload["inventory_item_id"] == item
    assert payload["location_id"] == location
    assert payload["available"] == 5
    assert payload["admin_graphql_api_id"] == f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", payload["updated_at"])
    assert headers["X-Shopify-Topic"] == "inventory_levels/update"
    assert headers["X-Shopify-Event-Id"] == "evt-9"
    assert headers["X-Shopify-Hmac-Sha256"] == sign(body, "secret")


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers.items()), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/shopify/", received
    server.shutdown()
    server.server_close()


def test_level_changes_are_posted_as_webhooks_our_own_sets_included(
    clock: VirtualClock, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = receiver
    with ShopifyEmulator(clock=clock.monotonic, webhook_url=url, webhook_secret="whsec") as emulator:
        listing = emulator.add_product(sku="A", available=6)
        set_quantities(emulator, [quantity(listing, 4, 6)])  # our own set: Shopify echoes it
        emulator.set_available(listing, 3)  # a sale on Shopify
        set_quantities(emulator, [quantity(listing, 3, 3)])  # no change: no webhook

        deliveries = emulator.wait_for_webhooks()

    assert [d.status for d in deliveries] == [200, 200]
    assert [json.loads(body)["available"] for _, body in received] == [4, 3]
    for headers, body in received:
        assert headers["X-Shopify-Topic"] == "inventory_levels/update"
        assert headers["X-Shopify-Hmac-Sha256"] == sign(body, "whsec")
    assert received[0][0]["X-Shopify-Event-Id"] != received[1][0]["X-Shopify-Event-Id"]


def test_webhooks_are_off_by_default(emulator: ShopifyEmulator) -> None:
    listing = emulator.add_product(sku="A", available=6)

    emulator.set_available(listing, 1)

    assert emulator.wait_for_webhooks() == []


def test_latency_can_be_a_random_range(emulator: ShopifyEmulator) -> None:
    emulator.latency = (0.05, 0.1)
    started = time.perf_counter()

    for _ in range(3):
        post(emulator, "{ shop { name } }")

    assert time.perf_counter() - started >= 0.15


def test_a_failure_after_processing_keeps_the_effect(emulator: ShopifyEmulator) -> None:
    listing = emulator.add_product(sku="A", available=1)
    emulator.fail_next(1, status=504, after=True)

    response = post(
        emulator,
        SET_MUTATION,
        {
            "input": {"name": "available", "reason": "correction", "quantities": [quantity(listing, 9, 1)]},
            "key": "k-1",
        },
    )

    assert response.status_code == 504
    assert emulator.available(listing) == 9


# ------------------------------------------------------------------------------------------- fulfillment

ORDER_FULFILLMENT_QUERY = """
query Fulfilment($id: ID!) {
  order(id: $id) {
    displayFulfillmentStatus
    fulfillmentOrders(first: 5) {
      nodes {
        id status requestStatus updatedAt
        assignedLocation { name location { id } }
        lineItems(first: 10) { nodes { id totalQuantity remainingQuantity lineItem { sku } } }
      }
    }
    fulfillments(first: 5) { id status trackingInfo { company number url } }
  }
}
"""

CREATE_MUTATION = """
mutation Fulfil($fulfillment: FulfillmentInput!, $key: String!) {
  fulfillmentCreate(fulfillment: $fulfillment) @idempotent(key: $key) {
    fulfillment { id status trackingInfo { company number url } }
    userErrors { field message }
  }
}
"""


def fulfilment_of(emulator: ShopifyEmulator, order: dict[str, Any]) -> dict[str, Any]:
    result = gql(emulator, ORDER_FULFILLMENT_QUERY, {"id": order["admin_graphql_api_id"]})
    assert "errors" not in result, result
    node: dict[str, Any] = result["data"]["order"]
    return node


def fulfil(
    emulator: ShopifyEmulator, fulfillment_orders: list[str], *, key: str | None = None, **fields: Any
) -> dict[str, Any]:
    fulfillment = {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo} for fo in fulfillment_orders], **fields}
    return gql(emulator, CREATE_MUTATION, {"fulfillment": fulfillment, "key": key or str(uuid.uuid4())})


def only_fulfillment_order(emulator: ShopifyEmulator, order: dict[str, Any]) -> str:
    (fulfillment_order,) = emulator.fulfillment_orders(order["id"])
    return str(fulfillment_order["id"])


def test_an_order_gets_one_open_fulfillment_order_for_all_its_lines(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order()

    node = fulfilment_of(emulator, order)

    assert node["displayFulfillmentStatus"] == "UNFULFILLED"
    assert node["fulfillments"] == []
    (fulfillment_order,) = node["fulfillmentOrders"]["nodes"]
    assert re.fullmatch(r"gid://shopify/FulfillmentOrder/\d+", fulfillment_order["id"])
    assert (fulfillment_order["status"], fulfillment_order["requestStatus"]) == ("OPEN", "UNSUBMITTED")
    assert fulfillment_order["assignedLocation"] == {
        "name": "Main warehouse",
        "location": {"id": emulator.location_id},
    }
    assert [
        (line["lineItem"]["sku"], line["totalQuantity"], line["remainingQuantity"])
        for line in fulfillment_order["lineItems"]["nodes"]
    ] == [("TEE-ORG-BLK-M", 2, 2), ("MUG-STONE-350", 1, 1)]
    by_id = gql(emulator, "query($id: ID!) { fulfillmentOrder(id: $id) { status } }", {"id": fulfillment_order["id"]})
    assert by_id["data"] == {"fulfillmentOrder": {"status": "OPEN"}}
    as_node = gql(emulator, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": [fulfillment_order["id"]]})
    assert as_node["data"] == {"nodes": [{"id": fulfillment_order["id"]}]}


@pytest.mark.parametrize(
    "changes", [{"fulfillment_status": "fulfilled"}, {"cancelled_at": "2026-11-02T10:00:00-05:00"}]
)
def test_an_order_stored_fulfilled_or_cancelled_has_nothing_to_fulfil(
    emulator: ShopifyEmulator, changes: dict[str, Any]
) -> None:
    order = emulator.put_order(order_payload(**changes))

    (fulfillment_order,) = emulator.fulfillment_orders(order["id"])

    assert fulfillment_order["status"] == "CLOSED"
    assert [line["remaining"] for line in fulfillment_order["lines"]] == [0, 0]


def test_fulfillment_create_fulfils_every_line_closes_and_records_the_tracking(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order()
    fulfillment_order = only_fulfillment_order(emulator, order)

    result = fulfil(
        emulator,
        [fulfillment_order],
        notifyCustomer=True,
        trackingInfo={
            "company": "UPS",
            "numbers": ["1Z999AA10123456784", "1Z999AA10123456791"],
            "urls": ["https://www.ups.com/track?tracknum=1Z999AA10123456784"],
        },
    )

    payload = result["data"]["fulfillmentCreate"]
    assert payload["userErrors"] == []
    assert payload["fulfillment"]["status"] == "SUCCESS"
    assert payload["fulfillment"]["trackingInfo"] == [
        {
            "company": "UPS",
            "number": "1Z999AA10123456784",
            "url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
        },
        {"company": "UPS", "number": "1Z999AA10123456791", "url": None},
    ]
    node = fulfilment_of(emulator, order)
    assert node["displayFulfillmentStatus"] == "FULFILLED"
    assert node["fulfillmentOrders"]["nodes"][0]["status"] == "CLOSED"
    assert [line["remainingQuantity"] for line in node["fulfillmentOrders"]["nodes"][0]["lineItems"]["nodes"]] == [0, 0]
    assert node["fulfillments"] == [payload["fulfillment"]]
    (recorded,) = emulator.fulfillments(order["id"])
    assert recorded["id"] == payload["fulfillment"]["id"]
    assert recorded["notify_customer"] is True
    assert recorded["fulfillment_order_ids"] == [fulfillment_order]
    assert recorded["line_items"] == [{"id": line["id"], "quantity": line["quantity"]} for line in order["line_items"]]
    rest = emulator.get_order(order["id"])
    assert rest["fulfillment_status"] == "fulfilled"
    assert [(line["fulfillable_quantity"], line["fulfillment_status"]) for line in rest["line_items"]] == [
        (0, "fulfilled"),
        (0, "fulfilled"),
    ]
    (rest_fulfillment,) = rest["fulfillments"]
    assert rest_fulfillment["status"] == "success"
    assert rest_fulfillment["tracking_company"] == "UPS"
    assert rest_fulfillment["tracking_numbers"] == ["1Z999AA10123456784", "1Z999AA10123456791"]
    assert rest_fulfillment["admin_graphql_api_id"] == payload["fulfillment"]["id"]
    assert datetime.fromisoformat(rest["updated_at"]) > datetime.fromisoformat(order["updated_at"])


def test_the_single_number_and_url_forms_are_one_tracking_entry(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order()

    result = fulfil(
        emulator,
        [only_fulfillment_order(emulator, order)],
        trackingInfo={"company": "DPD", "number": "05212345678901", "url": "https://tracking.dpd.de/05212345678901"},
    )

    assert result["data"]["fulfillmentCreate"]["fulfillment"]["trackingInfo"] == [
        {"company": "DPD", "number": "05212345678901", "url": "https://tracking.dpd.de/05212345678901"}
    ]


def test_a_closed_fulfillment_order_is_refused_as_shopify_refuses_it(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order()
    fulfillment_order = only_fulfillment_order(emulator, order)
    fulfil(emulator, [fulfillment_order])

    again = fulfil(emulator, [fulfillment_order], trackingInfo={"number": "SECOND"})

    number = fulfillment_order.rsplit("/", 1)[1]
    assert again["data"]["fulfillmentCreate"] == {
        "fulfillment": None,
        "userErrors": [
            {"field": ["fulfillment"], "message": f"Fulfillment order {number} has an unfulfillable status= closed."}
        ],
    }
    assert len(emulator.fulfillments(order["id"])) == 1


def test_an_unknown_fulfillment_order_does_not_exist(emulator: ShopifyEmulator) -> None:
    result = fulfil(emulator, ["gid://shopify/FulfillmentOrder/1"])

    assert result["data"]["fulfillmentCreate"]["userErrors"] == [
        {"field": ["fulfillment"], "message": "Fulfillment order does not exist."}
    ]


def test_blank_line_items_by_fulfillment_order_is_a_user_error(emulator: ShopifyEmulator) -> None:
    result = fulfil(emulator, [])

    assert result["data"]["fulfillmentCreate"]["userErrors"][0]["field"] == [
        "fulfillment",
        "lineItemsByFulfillmentOrder",
    ]


def test_part_of_a_line_leaves_the_fulfillment_order_in_progress(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order()
    (fulfillment_order,) = emulator.fulfillment_orders(order["id"])
    tee = fulfillment_order["lines"][0]  # two units
    one_of = {
        "fulfillmentOrderId": fulfillment_order["id"],
        "fulfillmentOrderLineItems": [{"id": tee["id"], "quantity": 1}],
    }

    result = gql(
        emulator,
        CREATE_MUTATION,
        {"fulfillment": {"lineItemsByFulfillmentOrder": [one_of]}, "key": str(uuid.uuid4())},
    )
    too_many = {**one_of, "fulfillmentOrderLineItems": [{"id": tee["id"], "quantity": 2}]}
    refused = gql(
        emulator,
        CREATE_MUTATION,
        {"fulfillment": {"lineItemsByFulfillmentOrder": [too_many]}, "key": str(uuid.uuid4())},
    )

    assert result["data"]["fulfillmentCreate"]["userErrors"] == []
    (after,) = emulator.fulfillment_orders(order["id"])
    assert after["status"] == "IN_PROGRESS"
    assert [line["remaining"] for line in after["lines"]] == [1, 1]
    assert fulfilment_of(emulator, order)["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    assert emulator.get_order(order["id"])["line_items"][0]["fulfillment_status"] == "partial"
    assert refused["data"]["fulfillmentCreate"]["userErrors"] == [
        {"field": ["fulfillment"], "message": "Invalid fulfillment order line item quantity requested."}
    ]


def test_the_same_key_and_input_answer_the_first_fulfillment_again(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order()
    fulfillment_order = only_fulfillment_order(emulator, order)
    key = str(uuid.uuid4())

    first = fulfil(emulator, [fulfillment_order], key=key, trackingInfo={"numbers": ["A1"]})
    again = fulfil(emulator, [fulfillment_order], key=key, trackingInfo={"numbers": ["A1"]})
    other = fulfil(emulator, [fulfillment_order], key=key, trackingInfo={"numbers": ["B2"]})

    assert again["data"] == first["data"], "answered, not refused as closed"
    assert len(emulator.fulfillments(order["id"])) == 1
    assert other["data"]["fulfillmentCreate"] == {
        "fulfillment": None,
        "userErrors": [
            {"field": None, "message": "The same idempotency key cannot be used with different operation parameters."}
        ],
    }


def test_a_fulfillment_costs_10_plus_its_payload(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order()

    result = fulfil(emulator, [only_fulfillment_order(emulator, order)], trackingInfo={"numbers": ["A1"]})

    # payload 1, fulfillment 1, its tracking info 1, userErrors 1
    assert result["extensions"]["cost"]["requestedQueryCost"] == 14
    assert result["extensions"]["cost"]["actualQueryCost"] == 13, "no userErrors came back"


def test_user_errors_of_fulfillment_create_have_no_code(emulator: ShopifyEmulator) -> None:
    query = CREATE_MUTATION.replace("userErrors { field message }", "userErrors { code field message }")
    # The emulator checks the fields of what comes back: make a user error come back.
    unknown = {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": "gid://shopify/FulfillmentOrder/1"}]}

    result = gql(emulator, query, {"fulfillment": unknown, "key": str(uuid.uuid4())})

    assert result["errors"][0]["extensions"]["code"] == "undefinedField"
    assert result["errors"][0]["extensions"]["typeName"] == "UserError"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"trackingNumber": "A1"}, "Field is not defined on FulfillmentInput: trackingNumber"),
        ({"trackingInfo": {"numbers": "A1"}}, "Expected value to be a list: numbers"),
        ({"trackingInfo": {"numbers": ["A1"], "urls": ["ups.com/track"]}}, "Invalid URL"),
        ({"trackingInfo": {"carrier": "UPS"}}, "Field is not defined on FulfillmentTrackingInput: carrier"),
        ({"notifyCustomer": "yes"}, "to Boolean: notifyCustomer"),
    ],
)
def test_a_malformed_fulfillment_input_refuses_the_whole_request(
    emulator: ShopifyEmulator, fields: dict[str, Any], message: str
) -> None:
    order = emulator.add_order()

    result = fulfil(emulator, [only_fulfillment_order(emulator, order)], **fields)

    assert "data" not in result
    assert message in result["errors"][0]["message"]
    assert result["errors"][0]["extensions"]["code"] == "INVALID_VARIABLE"
    assert emulator.fulfillments(order["id"]) == []


def test_number_and_numbers_together_are_refused(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order()

    result = fulfil(
        emulator, [only_fulfillment_order(emulator, order)], trackingInfo={"number": "A1", "numbers": ["A1", "B2"]}
    )

    assert result["data"]["fulfillmentCreate"]["userErrors"][0]["field"] == ["fulfillment", "trackingInfo"]
    assert emulator.fulfillments(order["id"]) == []


def test_a_fulfillment_order_on_hold_is_unfulfillable_until_released(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order()
    fulfillment_order = only_fulfillment_order(emulator, order)
    before = fulfilment_of(emulator, order)["fulfillmentOrders"]["nodes"][0]["updatedAt"]

    emulator.set_fulfillment_order_status(fulfillment_order, "ON_HOLD")
    held = fulfil(emulator, [fulfillment_order])
    emulator.set_fulfillment_order_status(fulfillment_order, "OPEN")
    released = fulfil(emulator, [fulfillment_order])

    assert held["data"]["fulfillmentCreate"]["userErrors"][0]["message"].endswith("unfulfillable status= on_hold.")
    assert released["data"]["fulfillmentCreate"]["userErrors"] == []
    after = fulfilment_of(emulator, order)["fulfillmentOrders"]["nodes"][0]["updatedAt"]
    assert after > before, "every change moves updatedAt on"
    with pytest.raises(ValueError, match="status must be one of"):
        emulator.set_fulfillment_order_status(fulfillment_order, "DONE")


def test_lines_split_to_another_location_need_a_fulfillment_of_their_own(emulator: ShopifyEmulator) -> None:
    order = emulator.add_order()
    overflow = emulator.add_location("Overflow")
    moved = emulator.split_fulfillment_order(order["id"], [order["line_items"][1]["id"]], location=overflow)
    main, split = emulator.fulfillment_orders(order["id"])

    together = fulfil(emulator, [main["id"], split["id"]])
    first = fulfil(emulator, [main["id"]])

    assert split["id"] == moved
    assert (split["location_id"], [line["line_item_id"] for line in split["lines"]]) == (
        overflow,
        [order["line_items"][1]["id"]],
    )
    assert [line["line_item_id"] for line in main["lines"]] == [order["line_items"][0]["id"]]
    assert together["data"]["fulfillmentCreate"]["userErrors"] == [
        {"field": ["fulfillment"], "message": "All fulfillment orders must be assigned to the same location."}
    ]
    assert first["data"]["fulfillmentCreate"]["userErrors"] == []
    assert emulator.get_order(order["id"])["fulfillment_status"] == "partial"
    fulfil(emulator, [split["id"]])
    assert emulator.get_order(order["id"])["fulfillment_status"] == "fulfilled"
    assert [f["location_id"] for f in emulator.fulfillments(order["id"])] == [emulator.location_id, overflow]
