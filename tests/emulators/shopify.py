"""A Shopify Admin API emulator on 127.0.0.1 (GraphQL endpoint, cost-based throttling) and webhook helpers.

Speaks Shopify's wire format as documented: `POST /admin/api/{version}/graphql.json` with
`X-Shopify-Access-Token`, answers `{"data", "extensions": {"cost": ...}}`, refuses with Shopify's error
bodies, and records every request so that tests assert on what an adapter really sent. It stores orders in
their REST (webhook) shape and renders them as GraphQL `Order` nodes, so one order can be seen both ways.

GraphQL is read by a small parser (operations, variables, fragments, aliases, directives); only the
fields that a query selects are returned, and a field the emulator does not know is an error, exactly as a
typo would be on Shopify. Root fields: `orders`, `order`, `shop`, the inventory ones below, `fulfillmentOrder`,
`nodes`; more can be added with `register_root_field`.

Inventory follows Shopify's model: a product has variants, each variant one inventory item (SKU, tracked,
measurement), stocked at locations through inventory levels with named quantities (`available`, `on_hand`,
...). Queries: `location(s)`, `inventoryItem(s)`, `productVariant(s)`, `product(s)`, `nodes(ids:)`; mutation
`inventorySetQuantities` with compare-and-swap (`changeFromQuantity`, required on every quantity from 2026-04:
a mismatch fails the whole call with CHANGE_FROM_QUANTITY_STALE and applies nothing) and the `@idempotent(key:)`
directive (required from 2026-04; the same key and input answer the first result again without applying it,
the same key with another input is IDEMPOTENCY_KEY_PARAMETER_MISMATCH). Helpers: `add_product`, `add_variant`,
`add_location`, `set_available` (a change made on Shopify's side), `available`, `level_webhook`; with
`webhook_url` set, every change of a level is POSTed there as a signed `inventory_levels/update`, our own sets
included (the echo), as Shopify does.

Fulfillment follows the fulfillment-order model (2023-07 on): every stored order gets one OPEN `FulfillmentOrder`
at the primary location covering all its lines (CLOSED when the order is already fulfilled or cancelled),
listed by `Order.fulfillmentOrders` and `fulfillmentOrder(id:)`; `fulfillmentCreate(fulfillment:)` fulfils them
(all remaining lines, or the quantities given), closes each one left with nothing to fulfil, records a
`Fulfillment` with its tracking (`Order.fulfillments`, helper `fulfillments()`), and updates the REST shape as
Shopify does (`fulfillment_status`, the lines' `fulfillable_quantity`, the order's `fulfillments`). It refuses
with the userErrors Shopify sends (plain `UserError`: field and message, no code), e.g. "Fulfillment order does
not exist." or "Fulfillment order 1 has an unfulfillable status= closed.", and honours `@idempotent(key:)` as
inventorySetQuantities does (optional there). Helpers: `fulfillment_orders()`, `set_fulfillment_order_status()`
(a hold, or a fulfillment made elsewhere), `split_fulfillment_order()` (lines moved to another location).

Query cost follows Shopify's published rules: scalars and enums cost 0, an object 1, a connection
2 + first x (1 + the cost of one node) plus 1 for its pageInfo, `nodes(ids:)` one node per id, a mutation's
root field 10 (charged too). A list of objects that is not a connection costs as one object. The requested
cost is computed before running; the actual cost counts the objects really returned and is what the bucket is
charged. Example: the OMS adapter's orders page, `orders(first: 10)` with `lineItems(first: 8)`, requests
3 + 10 x (18 + 8 x 10) = 983 points. A query over `max_query_cost` (1,000) is refused with MAX_COST_EXCEEDED;
a query the bucket (leaky, per app and store, default 2,000 points restoring 100/s: the Standard plan) cannot
pay for is answered THROTTLED.

Helpers for webhooks: `order_payload()` builds a realistic orders/create body, `sign()` computes
X-Shopify-Hmac-Sha256 and `webhook_delivery()` returns the exact headers and bytes Shopify sends.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import random
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

DEFAULT_API_VERSION = "2026-07"
DEFAULT_SHOP_DOMAIN = "oms-emulator.myshopify.com"
SHOP_TZ = timezone(timedelta(hours=-5))  # the shop's zone for REST timestamps (EST, like Shopify's samples)
RATE_LIMITS_DOC = "https://shopify.dev/api/usage/rate-limits"
MAX_PAGE_SIZE = 250
MAX_INPUT_SIZE = 250  # any input array (shopify.dev/docs/api/usage/limits)
MAX_QUANTITY = 1_000_000_000
QUANTITY_NAMES = frozenset(
    {"available", "on_hand", "committed", "reserved", "incoming", "damaged", "quality_control", "safety_stock"}
)
SETTABLE_QUANTITY_NAMES = frozenset({"available", "on_hand"})
# The adjustment reasons Shopify documents for inventory mutations; anything else is INVALID_REASON.
INVENTORY_REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_canceled",
        "movement_created",
        "movement_received",
        "movement_updated",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)
WEIGHT_UNITS = frozenset({"GRAMS", "KILOGRAMS", "OUNCES", "POUNDS"})
FULFILLMENT_ORDER_STATUSES = frozenset(
    {"OPEN", "IN_PROGRESS", "CLOSED", "CANCELLED", "INCOMPLETE", "ON_HOLD", "SCHEDULED"}
)
FULFILLABLE_STATUSES = frozenset({"OPEN", "IN_PROGRESS"})

# --------------------------------------------------------------------------------------------------------
# ids and timestamps

_rng = random.Random()
_ids = itertools.count(_rng.randrange(5_600_000_000_000, 5_700_000_000_000, 1000))
_numbers = itertools.count(_rng.randrange(1001, 9000))


def next_id() -> int:
    """A fresh Shopify-like numeric id (13 digits), unique within this process."""
    return next(_ids)


def rest_timestamp(moment: datetime | str | None = None) -> str:
    """A REST timestamp in the shop's zone, as Shopify writes them: `2026-11-23T05:35:12-05:00`."""
    if isinstance(moment, str):
        return moment
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(SHOP_TZ).replace(microsecond=0).isoformat()


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def graphql_timestamp(value: str | None) -> str | None:
    """GraphQL DateTime: UTC with a `Z`, whole seconds."""
    if not value:
        return None
    return parse_time(value).astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value if value not in (None, "") else "0"))


def _amount(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


def graphql_decimal(value: Any) -> str:
    """GraphQL `Decimal` as Shopify serialises it: `409.94`, `398.0`, `0.0`."""
    amount = _decimal(value)
    if amount == amount.to_integral_value():
        return f"{int(amount)}.0"
    return format(amount.normalize(), "f")


# --------------------------------------------------------------------------------------------------------
# REST order payloads (what orders/* webhooks carry)

DEFAULT_LINES: tuple[dict[str, Any], ...] = (
    {
        "sku": "TEE-ORG-BLK-M",
        "title": "Organic Cotton Tee",
        "variant_title": "Black / M",
        "price": "24.00",
        "quantity": 2,
        "tax": "2.88",
        "grams": 180,
    },
    {
        "sku": "MUG-STONE-350",
        "title": "Stoneware Mug",
        "variant_title": "Sand / 350 ml",
        "price": "16.50",
        "quantity": 1,
        "tax": "0.99",
        "grams": 420,
    },
)


def _money_set(amount: Any, currency: str) -> dict[str, Any]:
    text = _amount(_decimal(amount))
    return {
        "shop_money": {"amount": text, "currency_code": currency},
        "presentment_money": {"amount": text, "currency_code": currency},
    }


def line_item(currency: str = "USD", **spec: Any) -> dict[str, Any]:
    """A REST order line. Shorthands: `tax` (one tax line of that amount), `discount` (one allocation)."""
    line_id = spec.pop("id", None) or next_id()
    variant_id = spec.pop("variant_id", next_id())
    product_id = spec.pop("product_id", next_id())
    title = spec.pop("title", "Emulated Product")
    variant_title = spec.pop("variant_title", None)
    price = _decimal(spec.pop("price", "19.99"))
    quantity = int(spec.pop("quantity", 1))
    tax = spec.pop("tax", None)
    discount = spec.pop("discount", None)
    tax_lines = spec.pop("tax_lines", None)
    if tax_lines is None:
        tax_lines = []
        if tax not in (None, "0", "0.00"):
            tax_lines.append(
                {
                    "channel_liable": False,
                    "price": _amount(_decimal(tax)),
                    "price_set": _money_set(tax, currency),
                    "rate": 0.06,
                    "title": "State Tax",
                }
            )
    allocations = spec.pop("discount_allocations", None)
    if allocations is None:
        allocations = []
        if discount not in (None, "0", "0.00"):
            allocations.append(
                {
                    "amount": _amount(_decimal(discount)),
                    "amount_set": _money_set(discount, currency),
                    "discount_application_index": 0,
                }
            )
    total_discount = sum((_decimal(a["amount"]) for a in allocations), Decimal("0"))
    line: dict[str, Any] = {
        "id": line_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
        "attributed_staffs": [],
        "current_quantity": quantity,
        "fulfillable_quantity": quantity,
        "fulfillment_service": "manual",
        "fulfillment_status": None,
        "gift_card": False,
        "grams": spec.pop("grams", 0),
        "name": f"{title} - {variant_title}" if variant_title else title,
        "price": _amount(price),
        "price_set": _money_set(price, currency),
        "product_exists": True,
        "product_id": product_id,
        "properties": [],
        "quantity": quantity,
        "requires_shipping": spec.pop("requires_shipping", True),
        "sku": spec.pop("sku", f"SKU-{line_id % 100000:05d}"),
        "taxable": spec.pop("taxable", True),
        "title": title,
        "total_discount": _amount(total_discount),
        "total_discount_set": _money_set(total_discount, currency),
        "variant_id": variant_id,
        "variant_inventory_management": "shopify",
        "variant_title": variant_title,
        "vendor": spec.pop("vendor", "OMS Emulator Goods"),
        "tax_lines": tax_lines,
        "duties": [],
        "discount_allocations": allocations,
    }
    line.update(spec)
    return line


def address(**overrides: Any) -> dict[str, Any]:
    """A REST mailing address (defaults: Louisville, Kentucky)."""
    first = overrides.pop("first_name", "Ada")
    last = overrides.pop("last_name", "Lovelace")
    data = {
        "first_name": first,
        "address1": "1200 Bardstown Road",
        "phone": "+15025550142",
        "city": "Louisville",
        "zip": "40204",
        "province": "Kentucky",
        "country": "United States",
        "last_name": last,
        "address2": "Apt 3",
        "company": None,
        "latitude": 38.2335,
        "longitude": -85.7171,
        "name": f"{first} {last}".strip(),
        "country_code": "US",
        "province_code": "KY",
    }
    data.update(overrides)
    return data


def order_payload(**overrides: Any) -> dict[str, Any]:
    """A realistic REST orders/create payload with fresh ids and consistent totals.

    Any top-level key may be overridden. `line_items` takes partial line specs (see `line_item`),
    `shipping_lines` partial shipping lines; totals follow from them unless overridden too.
    `shipping_address=None` makes a digital order (no address); `created_at`/`updated_at` take a datetime.
    """
    order_id = overrides.pop("id", None) or next_id()
    number = overrides.pop("order_number", None) or next(_numbers)
    currency = overrides.pop("currency", "USD")
    email = overrides.pop("email", f"buyer{order_id % 100000}@example.com")
    created = rest_timestamp(overrides.pop("created_at", None) or datetime.now(UTC) - timedelta(minutes=5))
    updated = rest_timestamp(overrides.pop("updated_at", None) or created)
    taxes_included = overrides.pop("taxes_included", False)
    lines = [line_item(currency, **dict(spec)) for spec in overrides.pop("line_items", DEFAULT_LINES)]
    shipping_specs = overrides.pop("shipping_lines", None)
    if shipping_specs is None:
        shippable = any(line["requires_shipping"] for line in lines)
        shipping_specs = [{"title": "Standard Shipping", "code": "STANDARD", "price": "7.50"}] if shippable else []
    shipping_lines = []
    for spec in shipping_specs:
        price = _decimal(spec.get("price", "0"))
        ident = spec.get("id") or next_id()
        shipping_lines.append(
            {
                "id": ident,
                "carrier_identifier": None,
                "code": spec.get("code", spec.get("title", "Shipping")),
                "discounted_price": _amount(price),
                "discounted_price_set": _money_set(price, currency),
                "is_removed": False,
                "phone": None,
                "price": _amount(price),
                "price_set": _money_set(price, currency),
                "requested_fulfillment_service_id": None,
                "source": "shopify",
                "title": spec.get("title", "Shipping"),
                "tax_lines": spec.get("tax_lines", []),
                "discount_allocations": [],
            }
        )

    line_total = sum((_decimal(li["price"]) * li["quantity"] for li in lines), Decimal("0"))
    discounts = sum((_decimal(li["total_discount"]) for li in lines), Decimal("0"))
    line_tax = sum((_decimal(t["price"]) for li in lines for t in li["tax_lines"]), Decimal("0"))
    shipping_tax = sum((_decimal(t["price"]) for s in shipping_lines for t in s["tax_lines"]), Decimal("0"))
    shipping = sum((_decimal(s["price"]) for s in shipping_lines), Decimal("0"))
    subtotal = line_total - discounts
    tax = line_tax + shipping_tax
    total = subtotal + shipping + (Decimal("0") if taxes_included else tax)
    financial_status = overrides.pop("financial_status", "paid")
    gateways = overrides.pop("payment_gateway_names", ["shopify_payments"])

    customer_id = next_id()
    shipping_address = overrides.pop("shipping_address", address())
    billing_address = overrides.pop("billing_address", shipping_address or address())
    customer = {
        "id": customer_id,
        "email": email,
        "created_at": created,
        "updated_at": created,
        "first_name": (billing_address or {}).get("first_name", "Ada"),
        "last_name": (billing_address or {}).get("last_name", "Lovelace"),
        "state": "disabled",
        "note": None,
        "verified_email": True,
        "multipass_identifier": None,
        "tax_exempt": False,
        "phone": None,
        "currency": currency,
        "tax_exemptions": [],
        "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
        "default_address": {
            "id": next_id(),
            "customer_id": customer_id,
            "default": True,
            **(billing_address or address()),
        },
    }
    payload: dict[str, Any] = {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "app_id": 580111,
        "browser_ip": "203.0.113.24",
        "buyer_accepts_marketing": False,
        "cancel_reason": None,
        "cancelled_at": None,
        "cart_token": secrets.token_hex(16),
        "checkout_id": next_id(),
        "checkout_token": secrets.token_hex(16),
        "closed_at": None,
        "confirmation_number": secrets.token_hex(5).upper()[:9],
        "confirmed": True,
        "contact_email": email,
        "created_at": created,
        "currency": currency,
        "current_subtotal_price": _amount(subtotal),
        "current_subtotal_price_set": _money_set(subtotal, currency),
        "current_total_discounts": _amount(discounts),
        "current_total_discounts_set": _money_set(discounts, currency),
        "current_total_price": _amount(total),
        "current_total_price_set": _money_set(total, currency),
        "current_total_tax": _amount(tax),
        "current_total_tax_set": _money_set(tax, currency),
        "customer_locale": "en-US",
        "discount_codes": [],
        "email": email,
        "estimated_taxes": False,
        "financial_status": financial_status,
        "fulfillment_status": None,
        "landing_site": "/",
        "name": f"#{number}",
        "note": None,
        "note_attributes": [],
        "number": number - 1000,
        "order_number": number,
        "order_status_url": f"https://{DEFAULT_SHOP_DOMAIN}/orders/{secrets.token_hex(16)}/authenticate",
        "payment_gateway_names": gateways,
        "phone": None,
        "presentment_currency": currency,
        "processed_at": created,
        "source_name": "web",
        "subtotal_price": _amount(subtotal),
        "subtotal_price_set": _money_set(subtotal, currency),
        "tags": "",
        "tax_lines": [],
        "taxes_included": taxes_included,
        "test": False,
        "token": secrets.token_hex(16),
        "total_discounts": _amount(discounts),
        "total_discounts_set": _money_set(discounts, currency),
        "total_line_items_price": _amount(line_total),
        "total_line_items_price_set": _money_set(line_total, currency),
        "total_outstanding": "0.00" if financial_status == "paid" else _amount(total),
        "total_price": _amount(total),
        "total_price_set": _money_set(total, currency),
        "total_shipping_price_set": _money_set(shipping, currency),
        "total_tax": _amount(tax),
        "total_tax_set": _money_set(tax, currency),
        "total_tip_received": "0.00",
        "total_weight": sum(li["grams"] * li["quantity"] for li in lines),
        "updated_at": updated,
        "user_id": None,
        "billing_address": billing_address,
        "customer": customer,
        "discount_applications": [],
        "fulfillments": [],
        "line_items": lines,
        "payment_terms": None,
        "refunds": [],
        "shipping_address": shipping_address,
        "shipping_lines": shipping_lines,
    }
    if shipping_address is None:
        del payload["shipping_address"]  # Shopify leaves the key out of a digital order's payload
    payload.update(overrides)
    return payload


# --------------------------------------------------------------------------------------------------------
# webhooks


def sign(body: bytes, secret: str) -> str:
    """X-Shopify-Hmac-Sha256: base64 of HMAC-SHA256 over the raw body with the app's client secret."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


def webhook_delivery(
    topic: str,
    payload: Mapping[str, Any] | bytes,
    secret: str,
    *,
    shop_domain: str = DEFAULT_SHOP_DOMAIN,
    event_id: str | None = None,
    api_version: str = DEFAULT_API_VERSION,
    triggered_at: datetime | None = None,
) -> tuple[dict[str, str], bytes]:
    """The headers and body of one delivery, as Shopify sends them; a fresh X-Shopify-Webhook-Id each call."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    moment = (triggered_at or datetime.now(UTC)).astimezone(UTC)
    nanos = f"{moment.microsecond:06d}{_rng.randrange(1000):03d}"
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Shopify-Captain-Hook",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos}Z",
    }
    return headers, body


# --------------------------------------------------------------------------------------------------------
# a small GraphQL reader: enough of the language for real client queries


class GraphQLError(Exception):
    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        path: list[Any] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.path = path
        self.extensions = extensions

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message}
        if self.line is not None:
            error["locations"] = [{"line": self.line, "column": self.column}]
        if self.path is not None:
            error["path"] = self.path
        if self.extensions is not None:
            error["extensions"] = self.extensions
        return error


@dataclass(frozen=True)
class Variable:
    name: str


@dataclass(frozen=True)
class EnumValue:
    name: str


@dataclass
class Field:
    name: str
    alias: str | None
    arguments: dict[str, Any]
    directives: list[tuple[str, dict[str, Any]]]
    selections: list[Any]
    line: int
    column: int

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass
class FragmentSpread:
    name: str
    directives: list[tuple[str, dict[str, Any]]]
    line: int
    column: int


@dataclass
class InlineFragment:
    type_condition: str | None
    directives: list[tuple[str, dict[str, Any]]]
    selections: list[Any]


@dataclass
class Operation:
    kind: str
    name: str | None
    variable_defaults: dict[str, Any]
    selections: list[Any]


@dataclass
class Document:
    operations: list[Operation] = field(default_factory=list)
    fragments: dict[str, tuple[str, list[Any]]] = field(default_factory=dict)


_TOKEN = re.compile(
    r"""
    (?P<skip>[\s,\ufeff]+|\#[^\n\r]*)
  | (?P<block>\"\"\"(?:\\\"\"\"|[^"]|"(?!""))*\"\"\")
  | (?P<string>"(?:\\.|[^"\\\n])*")
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$&():=@\[\]{|}])
  | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
    """,
    re.VERBOSE,
)


def _tokens(source: str) -> list[tuple[str, Any, int, int]]:
    tokens: list[tuple[str, Any, int, int]] = []
    pos = 0
    line, line_start = 1, 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        column = pos - line_start + 1
        if match is None:
            raise GraphQLError(
                f'Parse error on "{source[pos]}" (error) at [{line}, {column}]', line=line, column=column
            )
        kind = match.lastgroup or ""
        text = match.group()
        if kind == "block":
            tokens.append(("string", _block_string(text[3:-3]), line, column))
        elif kind == "string":
            tokens.append(("string", json.loads(text), line, column))
        elif kind == "number":
            tokens.append(("number", float(text) if any(c in text for c in ".eE") else int(text), line, column))
        elif kind != "skip":
            tokens.append((kind, text, line, column))
        newlines = text.count("\n")
        if newlines:
            line += newlines
            line_start = match.start() + text.rfind("\n") + 1
        pos = match.end()
    tokens.append(("eof", None, line, pos - line_start + 1))
    return tokens


def _block_string(raw: str) -> str:
    lines = raw.replace('\\"""', '"""').splitlines()
    indents = [len(text) - len(text.lstrip()) for text in lines[1:] if text.strip()]
    common = min(indents, default=0)
    lines = [lines[0], *(text[common:] for text in lines[1:])] if lines else []
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = _tokens(source)
        self.pos = 0

    # token helpers
    def peek(self, offset: int = 0) -> tuple[str, Any, int, int]:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def next(self) -> tuple[str, Any, int, int]:
        token = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def fail(self, token: tuple[str, Any, int, int]) -> GraphQLError:
        kind, value, line, column = token
        shown = "end of file" if kind == "eof" else value
        label = {"name": "IDENTIFIER", "string": "STRING", "number": "NUMBER", "eof": "EOF"}.get(kind, kind.upper())
        return GraphQLError(f'Parse error on "{shown}" ({label}) at [{line}, {column}]', line=line, column=column)

    def at(self, kind: str, value: Any = None) -> bool:
        token = self.peek()
        return token[0] == kind and (value is None or token[1] == value)

    def expect(self, kind: str, value: Any = None) -> tuple[str, Any, int, int]:
        if not self.at(kind, value):
            raise self.fail(self.peek())
        return self.next()

    def skip(self, kind: str, value: Any = None) -> bool:
        if self.at(kind, value):
            self.next()
            return True
        return False

    # grammar
    def document(self) -> Document:
        doc = Document()
        while not self.at("eof"):
            if self.at("punct", "{"):
                doc.operations.append(Operation("query", None, {}, self.selection_set()))
            elif self.at("name", "fragment"):
                self.next()
                name = self.expect("name")[1]
                if not self.skip("name", "on"):
                    raise self.fail(self.peek())
                type_condition = self.expect("name")[1]
                self.directives()
                doc.fragments[name] = (type_condition, self.selection_set())
            elif self.at("name") and self.peek()[1] in ("query", "mutation", "subscription"):
                kind = self.next()[1]
                name = self.next()[1] if self.at("name") else None
                defaults = self.variable_definitions() if self.at("punct", "(") else {}
                self.directives()
                doc.operations.append(Operation(kind, name, defaults, self.selection_set()))
            else:
                raise self.fail(self.peek())
        if not doc.operations:
            raise GraphQLError("No operations in the query document")
        return doc

    def variable_definitions(self) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        self.expect("punct", "(")
        while not self.skip("punct", ")"):
            self.expect("punct", "$")
            name = self.expect("name")[1]
            self.expect("punct", ":")
            self.type_reference()
            defaults[name] = self.value() if self.skip("punct", "=") else None
            self.directives()
        return defaults

    def type_reference(self) -> None:
        if self.skip("punct", "["):
            self.type_reference()
            self.expect("punct", "]")
        else:
            self.expect("name")
        self.skip("punct", "!")

    def directives(self) -> list[tuple[str, dict[str, Any]]]:
        found = []
        while self.skip("punct", "@"):
            name = self.expect("name")[1]
            found.append((name, self.arguments() if self.at("punct", "(") else {}))
        return found

    def selection_set(self) -> list[Any]:
        self.expect("punct", "{")
        selections: list[Any] = []
        while not self.skip("punct", "}"):
            if self.at("eof"):
                raise self.fail(self.peek())
            selections.append(self.selection())
        return selections

    def selection(self) -> Any:
        if self.at("spread"):
            _, _, line, column = self.next()
            if self.at("name") and self.peek()[1] != "on":
                name = self.next()[1]
                return FragmentSpread(name, self.directives(), line, column)
            type_condition = None
            if self.skip("name", "on"):
                type_condition = self.expect("name")[1]
            directives = self.directives()
            return InlineFragment(type_condition, directives, self.selection_set())
        _, name, line, column = self.expect("name")
        alias = None
        if self.skip("punct", ":"):
            alias, name = name, self.expect("name")[1]
        arguments = self.arguments() if self.at("punct", "(") else {}
        directives = self.directives()
        selections = self.selection_set() if self.at("punct", "{") else []
        return Field(name, alias, arguments, directives, selections, line, column)

    def arguments(self) -> dict[str, Any]:
        self.expect("punct", "(")
        arguments: dict[str, Any] = {}
        while not self.skip("punct", ")"):
            name = self.expect("name")[1]
            self.expect("punct", ":")
            arguments[name] = self.value()
        return arguments

    def value(self) -> Any:
        kind, value, _, _ = token = self.peek()
        if kind == "punct" and value == "$":
            self.next()
            return Variable(self.expect("name")[1])
        if kind in ("string", "number"):
            self.next()
            return value
        if kind == "name":
            self.next()
            return {"true": True, "false": False, "null": None}.get(value, EnumValue(value))
        if kind == "punct" and value == "[":
            self.next()
            items = []
            while not self.skip("punct", "]"):
                items.append(self.value())
            return items
        if kind == "punct" and value == "{":
            self.next()
            fields = {}
            while not self.skip("punct", "}"):
                name = self.expect("name")[1]
                self.expect("punct", ":")
                fields[name] = self.value()
            return fields
        raise self.fail(token)


def parse_graphql(source: str) -> Document:
    return _Parser(source).document()


def resolve_value(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, Variable):
        return variables.get(value.name)
    if isinstance(value, EnumValue):
        return value.name
    if isinstance(value, list):
        return [resolve_value(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: resolve_value(item, variables) for key, item in value.items()}
    return value


def _included(directives: Iterable[tuple[str, dict[str, Any]]], variables: Mapping[str, Any]) -> bool:
    for name, arguments in directives:
        condition = bool(resolve_value(arguments.get("if"), variables))
        if (name == "skip" and condition) or (name == "include" and not condition):
            return False
    return True


def _type_matches(condition: str | None, typename: str | None) -> bool:
    return condition is None or typename is None or condition == typename or condition == "Node"


def collect_fields(
    selections: Iterable[Any],
    fragments: Mapping[str, tuple[str, list[Any]]],
    variables: Mapping[str, Any],
    typename: str | None = None,
) -> list[Field]:
    """The fields of a selection set with fragments expanded and same-key fields merged, in order."""
    merged: dict[str, Field] = {}
    for selection in selections:
        if isinstance(selection, Field):
            if not _included(selection.directives, variables):
                continue
            existing = merged.get(selection.key)
            if existing is None:
                merged[selection.key] = Field(
                    selection.name,
                    selection.alias,
                    selection.arguments,
                    selection.directives,
                    list(selection.selections),
                    selection.line,
                    selection.column,
                )
            else:
                existing.selections.extend(selection.selections)
            continue
        if isinstance(selection, FragmentSpread):
            if not _included(selection.directives, variables):
                continue
            if selection.name not in fragments:
                raise GraphQLError(
                    f"Fragment {selection.name} was used, but not defined",
                    line=selection.line,
                    column=selection.column,
                    extensions={"code": "useAndDefineFragment", "fragmentName": selection.name},
                )
            condition, inner = fragments[selection.name]
        else:
            if not _included(selection.directives, variables):
                continue
            condition, inner = selection.type_condition, selection.selections
        if _type_matches(condition, typename):
            for child in collect_fields(inner, fragments, variables, typename):
                existing = merged.get(child.key)
                if existing is None:
                    merged[child.key] = child
                else:
                    existing.selections.extend(child.selections)
    return list(merged.values())


# --------------------------------------------------------------------------------------------------------
# cost


def _page_size(arguments: Mapping[str, Any], variables: Mapping[str, Any]) -> int | None:
    for name in ("first", "last"):
        if name in arguments:
            value = resolve_value(arguments[name], variables)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def requested_cost(
    fields: Iterable[Field], fragments: Mapping[str, tuple[str, list[Any]]], variables: Mapping[str, Any]
) -> int:
    """Shopify's static cost of a selection, before anything runs (see the module docstring)."""
    total = 0
    for item in fields:
        if not item.selections:
            continue
        children = collect_fields(item.selections, fragments, variables)
        ids = resolve_value(item.arguments["ids"], variables) if "ids" in item.arguments else None
        if isinstance(ids, list):  # nodes(ids:): one node per id
            total += len(ids) * (1 + requested_cost(children, fragments, variables))
            continue
        size = _page_size(item.arguments, variables)
        if size is None:
            total += 1 + requested_cost(children, fragments, variables)
            continue
        node_cost = 0
        extra = 0
        for child in children:
            if child.name == "nodes":
                grand = collect_fields(child.selections, fragments, variables)
                node_cost = max(node_cost, 1 + requested_cost(grand, fragments, variables))
            elif child.name == "edges":
                for edge_field in collect_fields(child.selections, fragments, variables):
                    if edge_field.name == "node":
                        grand = collect_fields(edge_field.selections, fragments, variables)
                        node_cost = max(node_cost, 1 + requested_cost(grand, fragments, variables))
            elif child.name == "pageInfo":
                extra += 1
            else:
                extra += requested_cost([child], fragments, variables)
        total += 2 + max(size, 0) * node_cost + extra
    return total


# --------------------------------------------------------------------------------------------------------
# resolvers: REST-shaped data rendered as GraphQL objects, with connections resolved lazily by arguments


class Resolver:
    """A field that takes arguments: called with the resolved arguments, refuses ones it does not know."""

    def __init__(
        self,
        function: Callable[[dict[str, Any]], Any],
        arguments: Iterable[str],
        required: Iterable[str] = (),
    ) -> None:
        self.function = function
        self.arguments = frozenset(arguments)
        self.required = frozenset(required)

    def __call__(self, arguments: dict[str, Any]) -> Any:
        return self.function(arguments)


def _encode_cursor(key: tuple[Any, Any]) -> str:
    raw = json.dumps({"last_id": key[1], "last_value": key[0]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: Any) -> tuple[Any, Any]:
    try:
        text = str(cursor)
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return (data["last_value"], data["last_id"])
    except (ValueError, KeyError, TypeError):
        raise GraphQLError("Invalid cursor for current pagination sort.", extensions={"code": "BAD_REQUEST"}) from None


def connection(
    typename: str,
    items: list[Any],
    arguments: Mapping[str, Any],
    *,
    sort_keys: Mapping[str, Callable[[Any], tuple[Any, Any]]],
    default_sort: str,
    render: Callable[[Any], dict[str, Any]],
    field_name: str,
) -> dict[str, Any]:
    """Relay pagination as Shopify does it: first/after, last/before, reverse, sortKey; at most 250 a page."""
    first, last = arguments.get("first"), arguments.get("last")
    if first is None and last is None:
        raise GraphQLError(
            "you must provide one of first or last", path=[field_name], extensions={"code": "BAD_REQUEST"}
        )
    for name, size in (("first", first), ("last", last)):
        if size is not None and (not isinstance(size, int) or size < 0 or size > MAX_PAGE_SIZE):
            raise GraphQLError(
                f"The {name} argument must be between 0 and {MAX_PAGE_SIZE}, got {size}",
                path=[field_name],
                extensions={"code": "BAD_REQUEST"},
            )
    sort_key = arguments.get("sortKey") or default_sort
    if sort_key not in sort_keys:
        raise GraphQLError(
            f"Argument 'sortKey' on Field '{field_name}' has an invalid value ({sort_key}).",
            path=[field_name],
            extensions={"code": "argumentLiteralsIncompatible"},
        )
    key = sort_keys[sort_key]
    reverse = bool(arguments.get("reverse"))
    ordered = sorted(items, key=key, reverse=reverse)
    after, before = arguments.get("after"), arguments.get("before")
    if after:
        mark = _decode_cursor(after)
        ordered = [item for item in ordered if (key(item) < mark if reverse else key(item) > mark)]
    if before:
        mark = _decode_cursor(before)
        ordered = [item for item in ordered if (key(item) > mark if reverse else key(item) < mark)]
    if first is not None:
        page = ordered[:first]
        has_next, has_previous = len(ordered) > first, bool(after)
    else:
        page = ordered[max(len(ordered) - last, 0) :] if last else []
        has_next, has_previous = bool(before), len(ordered) > len(page)
    cursors = [_encode_cursor(key(item)) for item in page]
    nodes = [render(item) for item in page]
    base = typename.removesuffix("Connection")
    return {
        "__typename": typename,
        "nodes": nodes,
        "edges": [{"__typename": f"{base}Edge", "cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)],
        "pageInfo": {
            "__typename": "PageInfo",
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def _money_bag(money_set: Any, amount: Any, currency: str) -> dict[str, Any]:
    shop = presentment = {"amount": amount, "currency_code": currency}
    if isinstance(money_set, Mapping):
        shop = money_set.get("shop_money") or shop
        presentment = money_set.get("presentment_money") or shop
    return {
        "__typename": "MoneyBag",
        "shopMoney": {
            "__typename": "MoneyV2",
            "amount": graphql_decimal(shop.get("amount")),
            "currencyCode": shop.get("currency_code") or currency,
        },
        "presentmentMoney": {
            "__typename": "MoneyV2",
            "amount": graphql_decimal(presentment.get("amount")),
            "currencyCode": presentment.get("currency_code") or currency,
        },
    }


def _mailing_address(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, Mapping):
        return None
    return {
        "__typename": "MailingAddress",
        "firstName": data.get("first_name"),
        "lastName": data.get("last_name"),
        "name": data.get("name"),
        "company": data.get("company"),
        "address1": data.get("address1"),
        "address2": data.get("address2"),
        "city": data.get("city"),
        "province": data.get("province"),
        "provinceCode": data.get("province_code"),
        "country": data.get("country"),
        "countryCodeV2": data.get("country_code"),
        "zip": data.get("zip"),
        "phone": data.get("phone"),
        "latitude": data.get("latitude"),
        "longitude": data.get("longitude"),
    }


def _line_item_node(line: Mapping[str, Any], currency: str) -> dict[str, Any]:
    variant_id = line.get("variant_id")
    product_id = line.get("product_id")
    return {
        "__typename": "LineItem",
        "id": f"gid://shopify/LineItem/{line['id']}",
        "sku": line.get("sku"),
        "name": line.get("name"),
        "title": line.get("title"),
        "variantTitle": line.get("variant_title"),
        "vendor": line.get("vendor"),
        "quantity": line.get("quantity"),
        "currentQuantity": line.get("current_quantity", line.get("quantity")),
        "requiresShipping": line.get("requires_shipping"),
        "taxable": line.get("taxable"),
        "isGiftCard": line.get("gift_card", False),
        "originalUnitPriceSet": _money_bag(line.get("price_set"), line.get("price"), currency),
        "totalDiscountSet": _money_bag(line.get("total_discount_set"), line.get("total_discount"), currency),
        "taxLines": [
            {
                "__typename": "TaxLine",
                "title": tax.get("title"),
                "rate": tax.get("rate"),
                "ratePercentage": (tax.get("rate") or 0) * 100,
                "channelLiable": tax.get("channel_liable"),
                "priceSet": _money_bag(tax.get("price_set"), tax.get("price"), currency),
            }
            for tax in line.get("tax_lines") or []
        ],
        "discountAllocations": [
            {
                "__typename": "DiscountAllocation",
                "allocatedAmountSet": _money_bag(d.get("amount_set"), d.get("amount"), currency),
            }
            for d in line.get("discount_allocations") or []
        ],
        "variant": None
        if variant_id is None
        else {
            "__typename": "ProductVariant",
            "id": f"gid://shopify/ProductVariant/{variant_id}",
            "legacyResourceId": str(variant_id),
            "sku": line.get("sku"),
            "title": line.get("variant_title"),
        },
        "product": None
        if product_id is None
        else {
            "__typename": "Product",
            "id": f"gid://shopify/Product/{product_id}",
            "legacyResourceId": str(product_id),
            "title": line.get("title"),
        },
    }


_FULFILLMENT_STATUS = {
    None: "UNFULFILLED",
    "fulfilled": "FULFILLED",
    "partial": "PARTIALLY_FULFILLED",
    "restocked": "RESTOCKED",
}
_CONNECTION_ARGS = ("first", "after", "last", "before", "reverse", "sortKey", "query")


def order_node(order: Mapping[str, Any]) -> dict[str, Any]:
    """A REST order rendered as the GraphQL Admin API's `Order` object."""
    currency = order.get("currency") or "USD"
    lines = list(order.get("line_items") or [])
    shipping_lines = list(order.get("shipping_lines") or [])
    customer = order.get("customer")
    tags = [tag.strip() for tag in (order.get("tags") or "").split(",") if tag.strip()]
    positions = {line["id"]: index for index, line in enumerate(lines)}

    def line_items(arguments: dict[str, Any]) -> dict[str, Any]:
        return connection(
            "LineItemConnection",
            lines,
            arguments,
            field_name="lineItems",
            sort_keys={"POSITION": lambda li: (positions[li["id"]], li["id"])},
            default_sort="POSITION",
            render=lambda li: _line_item_node(li, currency),
        )

    def shipping_line_nodes(arguments: dict[str, Any]) -> dict[str, Any]:
        return connection(
            "ShippingLineConnection",
            shipping_lines,
            arguments,
            field_name="shippingLines",
            sort_keys={"POSITION": lambda s: (shipping_lines.index(s), s.get("id"))},
            default_sort="POSITION",
            render=_shipping_line,
        )

    def money(name: str) -> dict[str, Any]:
        return _money_bag(order.get(f"{name}_set"), order.get(name), currency)

    return {
        "__typename": "Order",
        "id": f"gid://shopify/Order/{order['id']}",
        "legacyResourceId": str(order["id"]),
        "name": order.get("name"),
        "email": order.get("email"),
        "phone": order.get("phone"),
        "note": order.get("note"),
        "tags": tags,
        "test": bool(order.get("test")),
        "confirmed": order.get("confirmed", True),
        "closed": order.get("closed_at") is not None,
        "createdAt": graphql_timestamp(order.get("created_at")),
        "processedAt": graphql_timestamp(order.get("processed_at")),
        "updatedAt": graphql_timestamp(order.get("updated_at")),
        "cancelledAt": graphql_timestamp(order.get("cancelled_at")),
        "closedAt": graphql_timestamp(order.get("closed_at")),
        "cancelReason": (order.get("cancel_reason") or "").upper() or None,
        "currencyCode": currency,
        "presentmentCurrencyCode": order.get("presentment_currency") or currency,
        "displayFinancialStatus": (order.get("financial_status") or "").upper() or None,
        "displayFulfillmentStatus": _FULFILLMENT_STATUS.get(order.get("fulfillment_status"), "UNFULFILLED"),
        "paymentGatewayNames": list(order.get("payment_gateway_names") or []),
        "taxesIncluded": bool(order.get("taxes_included")),
        "subtotalPriceSet": money("subtotal_price"),
        "totalTaxSet": money("total_tax"),
        "totalDiscountsSet": money("total_discounts"),
        "totalShippingPriceSet": _money_bag(
            order.get("total_shipping_price_set"),
            sum((_decimal(s.get("price")) for s in shipping_lines), Decimal("0")),
            currency,
        ),
        "totalPriceSet": money("total_price"),
        "currentTotalPriceSet": _money_bag(
            order.get("current_total_price_set"),
            order.get("current_total_price", order.get("total_price")),
            currency,
        ),
        "customer": None
        if not isinstance(customer, Mapping)
        else {
            "__typename": "Customer",
            "id": f"gid://shopify/Customer/{customer['id']}",
            "legacyResourceId": str(customer["id"]),
            "email": customer.get("email"),
            "phone": customer.get("phone"),
            "firstName": customer.get("first_name"),
            "lastName": customer.get("last_name"),
            "displayName": " ".join(p for p in (customer.get("first_name"), customer.get("last_name")) if p),
        },
        "shippingAddress": _mailing_address(order.get("shipping_address")),
        "billingAddress": _mailing_address(order.get("billing_address")),
        "shippingLine": _shipping_line(shipping_lines[0]) if shipping_lines else None,
        "shippingLines": Resolver(shipping_line_nodes, _CONNECTION_ARGS),
        "lineItems": Resolver(line_items, _CONNECTION_ARGS),
    }


def _shipping_line(line: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "__typename": "ShippingLine",
        "id": f"gid://shopify/ShippingLine/{line.get('id')}",
        "title": line.get("title"),
        "code": line.get("code"),
        "source": line.get("source"),
        "originalPriceSet": _money_bag(line.get("price_set"), line.get("price"), "USD"),
        "discountedPriceSet": _money_bag(line.get("discounted_price_set"), line.get("discounted_price"), "USD"),
    }


# search syntax (`query:` argument), the part Shopify documents for orders
_SEARCH_TERM = re.compile(r"""(?P<field>\w+):(?P<op>>=|<=|>|<)?(?:'(?P<q>[^']*)'|"(?P<qq>[^"]*)"|(?P<bare>\S+))""")
_SEARCH_TIME_FIELDS = {"updated_at", "created_at", "processed_at"}
_SEARCH_TEXT_FIELDS = {"financial_status", "name", "email", "fulfillment_status", "test"}


def _search_time(value: str) -> datetime:
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    return parse_time(text)


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == ">=":
        return bool(left >= right)
    if op == ">":
        return bool(left > right)
    if op == "<=":
        return bool(left <= right)
    if op == "<":
        return bool(left < right)
    return bool(left == right)


def order_search(query: str | None) -> tuple[Callable[[Mapping[str, Any]], bool], list[dict[str, str]]]:
    """A predicate for Shopify's order search syntax (fields ANDed) and the warnings Shopify would give."""
    if not query or not query.strip():
        return (lambda _order: True), []
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    warnings: list[dict[str, str]] = []
    for match in _SEARCH_TERM.finditer(query):
        name, op = match.group("field"), match.group("op") or "="
        raw = next(v for v in (match.group("q"), match.group("qq"), match.group("bare")) if v is not None)
        if name in _SEARCH_TIME_FIELDS:
            try:
                moment = _search_time(raw)
            except ValueError:
                warnings.append({"field": name, "message": f"Invalid date: {raw}"})
                continue
            checks.append(
                lambda o, n=name, op=op, m=moment: bool(o.get(n)) and _compare(parse_time(o[n]), op, m)  # type: ignore[misc]
            )
        elif name == "id":
            wanted = int(raw) if raw.isdigit() else -1
            checks.append(lambda o, op=op, v=wanted: _compare(int(o["id"]), op, v))  # type: ignore[misc]
        elif name in _SEARCH_TEXT_FIELDS:
            text = raw.lower()
            checks.append(lambda o, n=name, v=text: str(o.get(n)).lower() == v)  # type: ignore[misc]
        else:
            warnings.append({"field": name, "message": "Invalid search field for this query."})
    return (lambda order: all(check(order) for check in checks)), warnings


# --------------------------------------------------------------------------------------------------------
# the server


def gid(kind: str, ident: int) -> str:
    return f"gid://shopify/{kind}/{ident}"


def gid_number(value: Any, kind: str) -> int | None:
    """The number in `gid://shopify/<kind>/<n>` (a plain number is taken too); None when it is not one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value > 0 else None
    if not isinstance(value, str):
        return None
    match = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", value.strip())
    if match:
        return int(match.group(1))
    return int(value) if value.strip().isdigit() else None


def _graphql_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _input_error(message: str, path: list[Any]) -> GraphQLError:
    """A variable or argument of the wrong shape: Shopify refuses the whole request before running it."""
    return GraphQLError(message, path=path, extensions={"code": "INVALID_VARIABLE"})


@dataclass(frozen=True)
class WebhookDelivery:
    """One webhook POST the emulator made to `webhook_url`: what it sent and what came back."""

    topic: str
    headers: dict[str, str]
    body: bytes
    status: int | None  # None: the POST failed (error says why)
    error: str = ""


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query_string: str
    headers: CaseInsensitiveDict[str]
    raw_body: bytes
    json: Any  # the parsed body, or None when it was not JSON
    received_at: float
    status: int
    response: Any


@dataclass
class _Failure:
    status: int
    retry_after: float | None
    after: bool = False  # run the request first: its effects stay, only the answer is lost


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall
    server_version = "nginx"
    sys_version = ""
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _dispatch(self) -> None:
        self.server.emulator._handle(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: ShopifyEmulator


RootResolver = Callable[[dict[str, Any]], Any]


class ShopifyEmulator:
    """One Shopify store's Admin GraphQL API on 127.0.0.1. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        shop_domain: str = DEFAULT_SHOP_DOMAIN,
        access_token: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        maximum_available: float = 2000.0,
        restore_rate: float = 100.0,
        max_query_cost: int = 1000,
        latency: float | tuple[float, float] = 0.0,
        currency: str = "USD",
        clock: Callable[[], float] = time.monotonic,
        location_name: str = "Main warehouse",
        webhook_url: str | None = None,
        webhook_secret: str = "",
    ) -> None:
        self.shop_domain = shop_domain
        self.access_token = access_token or f"shpat_{secrets.token_hex(16)}"
        self.api_version = api_version
        self.maximum_available = float(maximum_available)
        self.restore_rate = float(restore_rate)
        self.max_query_cost = max_query_cost
        self.latency = latency  # seconds per request, or (low, high) for a uniformly random delay
        # Where level changes are POSTed as inventory_levels/update (None: nowhere), signed with this secret.
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.currency = currency
        self._clock = clock
        self._lock = threading.RLock()
        self._orders: dict[int, dict[str, Any]] = {}
        self._requests: list[RecordedRequest] = []
        self._available = self.maximum_available
        self._bucket_at = clock()
        self._forced_throttles: list[float] = []
        self._failures: list[_Failure] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._roots: dict[tuple[str, str], Resolver] = {}
        self.register_root_field("orders", self._resolve_orders, arguments=_CONNECTION_ARGS)
        self.register_root_field("order", self._resolve_order, arguments=("id",), required=("id",))
        self.register_root_field("shop", lambda _args: self._shop())
        # inventory
        self._locations: dict[int, dict[str, Any]] = {}
        self._products: dict[int, dict[str, Any]] = {}
        self._variants: dict[int, dict[str, Any]] = {}
        self._items: dict[int, dict[str, Any]] = {}
        self._levels: dict[tuple[int, int], dict[str, Any]] = {}  # (inventory item, location)
        self._idempotency: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (input fingerprint, payload)
        self._webhook_threads: list[threading.Thread] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.location_id = self.add_location(location_name)  # the shop's primary location
        self.register_root_field("location", self._resolve_location, arguments=("id",))
        self.register_root_field("locations", self._resolve_locations, arguments=(*_CONNECTION_ARGS, "includeInactive"))
        self.register_root_field("inventoryItem", self._resolve_inventory_item, arguments=("id",), required=("id",))
        self.register_root_field("inventoryItems", self._resolve_inventory_items, arguments=_CONNECTION_ARGS)
        self.register_root_field("productVariant", self._resolve_variant, arguments=("id",), required=("id",))
        self.register_root_field("productVariants", self._resolve_variants, arguments=_CONNECTION_ARGS)
        self.register_root_field("product", self._resolve_product, arguments=("id",), required=("id",))
        self.register_root_field("products", self._resolve_products, arguments=_CONNECTION_ARGS)
        self.register_root_field("nodes", self._resolve_nodes, arguments=("ids",), required=("ids",))
        self.register_root_field(
            "inventorySetQuantities",
            self._inventory_set_quantities,
            operation="mutation",
            arguments=("input",),
            required=("input",),
        )
        # fulfillment
        self._fulfillment_orders: dict[int, dict[str, Any]] = {}
        self._fulfillments: dict[int, dict[str, Any]] = {}
        self._fulfillment_keys: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (input fingerprint, payload)
        self.register_root_field(
            "fulfillmentOrder", self._resolve_fulfillment_order, arguments=("id",), required=("id",)
        )
        self.register_root_field(
            "fulfillmentCreate",
            self._fulfillment_create,
            operation="mutation",
            arguments=("fulfillment", "message"),
            required=("fulfillment",),
        )

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> ShopifyEmulator:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"shopify-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ShopifyEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start()")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def graphql_path(self) -> str:
        return f"/admin/api/{self.api_version}/graphql.json"

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}{self.graphql_path}"

    # ------------------------------------------------------------------------------------------- store

    def add_order(self, **overrides: Any) -> dict[str, Any]:
        """Store an order (see `order_payload` for overrides); returns a copy of its REST payload."""
        order = order_payload(**overrides)
        with self._lock:
            if int(order["id"]) in self._orders:
                raise ValueError(f"order {order['id']} already exists; use update_order")
            self._orders[int(order["id"])] = order
            self._open_fulfillment_orders(order)
            return copy.deepcopy(order)

    def put_order(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Store a complete REST payload as it is (a fixture, say), replacing any order with its id."""
        order = copy.deepcopy(dict(payload))
        with self._lock:
            self._orders[int(order["id"])] = order
            self._open_fulfillment_orders(order)
            return copy.deepcopy(order)

    def update_order(self, order_id: int | str, **changes: Any) -> dict[str, Any]:
        """Change top-level fields of an order and bump its updated_at (by at least a second)."""
        with self._lock:
            order = self._orders[int(order_id)]
            previous = parse_time(order["updated_at"])
            bumped = max(datetime.now(UTC).replace(microsecond=0), previous + timedelta(seconds=1))
            order.update(copy.deepcopy(changes))
            if "updated_at" in changes:
                order["updated_at"] = rest_timestamp(changes["updated_at"])
            else:
                order["updated_at"] = rest_timestamp(bumped)
            return copy.deepcopy(order)

    def get_order(self, order_id: int | str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._orders[int(order_id)])

    @property
    def orders(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(order) for order in self._orders.values()]

    # ------------------------------------------------------------------------------------ fulfillment store

    def fulfillment_orders(self, order_id: int | str) -> list[dict[str, Any]]:
        """The order's fulfillment orders, oldest first: `id` (gid), `status`, `request_status`, `location_id`
        (gid) and `lines` (each `id` gid, `line_item_id`, `total`, `remaining`)."""
        number = self._order_number(order_id)
        with self._lock:
            return [
                {
                    "id": gid("FulfillmentOrder", ident),
                    "status": record["status"],
                    "request_status": record["request_status"],
                    "location_id": gid("Location", record["location_id"]),
                    "lines": [
                        {
                            "id": gid("FulfillmentOrderLineItem", line["id"]),
                            "line_item_id": line["line_item_id"],
                            "total": line["total"],
                            "remaining": line["remaining"],
                        }
                        for line in record["lines"]
                    ],
                }
                for ident, record in sorted(self._fulfillment_orders.items())
                if record["order_id"] == number
            ]

    def fulfillments(self, order_id: int | str) -> list[dict[str, Any]]:
        """What fulfillmentCreate recorded for the order, oldest first: `id` (gid), `status`, `location_id`,
        `tracking_company`, `tracking_numbers`, `tracking_urls`, `notify_customer`, `fulfillment_order_ids`,
        `line_items` (each `id` of the order's line and `quantity`)."""
        number = self._order_number(order_id)
        with self._lock:
            return [
                {
                    "id": gid("Fulfillment", ident),
                    "status": record["status"],
                    "location_id": gid("Location", record["location_id"]),
                    "tracking_company": record["tracking_company"],
                    "tracking_numbers": [entry["number"] for entry in record["tracking"] if entry["number"]],
                    "tracking_urls": [entry["url"] for entry in record["tracking"] if entry["url"]],
                    "notify_customer": record["notify_customer"],
                    "fulfillment_order_ids": [gid("FulfillmentOrder", fo) for fo in record["fulfillment_order_ids"]],
                    "line_items": [dict(line) for line in record["lines"]],
                }
                for ident, record in sorted(self._fulfillments.items())
                if record["order_id"] == number
            ]

    def set_fulfillment_order_status(self, fulfillment_order: Any, status: str) -> None:
        """Change a fulfillment order's status on Shopify's side: ON_HOLD (a hold), CLOSED (fulfilled outside
        the app: nothing remains), OPEN again. `fulfillment_order` is a gid or a number."""
        if status not in FULFILLMENT_ORDER_STATUSES:
            raise ValueError(f"status must be one of {sorted(FULFILLMENT_ORDER_STATUSES)}")
        number = gid_number(fulfillment_order, "FulfillmentOrder")
        with self._lock:
            record = self._fulfillment_orders[number or -1]
            record["status"] = status
            if status == "CLOSED":
                for line in record["lines"]:
                    line["remaining"] = 0
            _touch(record)

    def split_fulfillment_order(
        self, order_id: int | str, line_item_ids: Iterable[int], *, location: str | None = None
    ) -> str:
        """Move these lines of the order (REST line ids) out of their open fulfillment order into a new OPEN one
        assigned to `location` (default: the primary one), as when the merchant ships them from elsewhere.
        Returns the new fulfillment order's gid."""
        number = self._order_number(order_id)
        location_id = self._location_number(location)
        wanted = {int(ident) for ident in line_item_ids}
        ident = next_id()
        now = _graphql_now()
        with self._lock:
            moved: list[dict[str, Any]] = []
            for record in self._fulfillment_orders.values():
                if record["order_id"] != number or record["status"] not in FULFILLABLE_STATUSES:
                    continue
                taken = [line for line in record["lines"] if line["line_item_id"] in wanted]
                if not taken:
                    continue
                moved.extend(taken)
                record["lines"] = [line for line in record["lines"] if line["line_item_id"] not in wanted]
                if not record["lines"]:
                    record["status"] = "CLOSED"  # emptied: Shopify closes a fulfillment order it moved away
                _touch(record)
            if not moved:
                raise KeyError(f"no open fulfillment order of order {order_id} has lines {sorted(wanted)}")
            self._fulfillment_orders[ident] = {
                "id": ident,
                "order_id": number,
                "status": "OPEN",
                "request_status": "UNSUBMITTED",
                "location_id": location_id,
                "lines": moved,
                "created_at": now,
                "updated_at": now,
            }
        return gid("FulfillmentOrder", ident)

    def _order_number(self, order_id: int | str) -> int:
        number = gid_number(order_id, "Order")
        if number is None:
            raise KeyError(f"not an order id: {order_id!r}")
        return number

    def _open_fulfillment_orders(self, order: Mapping[str, Any]) -> None:
        """One fulfillment order at the primary location for all of a (new or replaced) order's lines; CLOSED
        when the order is fulfilled or cancelled already. Runs under self._lock."""
        order_id = int(order["id"])
        for table in (self._fulfillment_orders, self._fulfillments):
            for ident in [ident for ident, record in table.items() if record["order_id"] == order_id]:
                del table[ident]
        done = order.get("fulfillment_status") == "fulfilled" or order.get("cancelled_at") is not None
        lines = []
        for line in order.get("line_items") or []:
            # put_order takes any payload: a line without a numeric id or quantity has nothing to fulfil.
            line_id, total = gid_number(line.get("id"), "LineItem"), line.get("quantity")
            if line_id is None or isinstance(total, bool) or not isinstance(total, int) or total <= 0:
                continue
            fulfillable = line.get("fulfillable_quantity", total)
            remaining = 0 if done or not isinstance(fulfillable, int) else max(min(fulfillable, total), 0)
            lines.append({"id": next_id(), "line_item_id": line_id, "total": total, "remaining": remaining})
        if not lines:
            return
        ident = next_id()
        now = _graphql_now()
        self._fulfillment_orders[ident] = {
            "id": ident,
            "order_id": order_id,
            "status": "OPEN" if any(line["remaining"] for line in lines) else "CLOSED",
            "request_status": "UNSUBMITTED",
            "location_id": self._location_number(None),
            "lines": lines,
            "created_at": now,
            "updated_at": now,
        }

    # -------------------------------------------------------------------------------------- inventory store

    def add_location(self, name: str = "Warehouse", *, active: bool = True) -> str:
        """A location; returns its gid. The emulator starts with one, `location_id` (the primary location)."""
        ident = next_id()
        with self._lock:
            self._locations[ident] = {"id": ident, "name": name, "active": active}
        return gid("Location", ident)

    def add_product(
        self,
        *,
        sku: str | None = "",
        available: int | None = 0,
        title: str = "Emulated Product",
        variant_title: str | None = None,
        barcode: str | None = None,
        price: str | Decimal = "19.99",
        weight_grams: float | None = None,
        weight: tuple[float, str] | None = None,
        tracked: bool = True,
        location: str | None = None,
        vendor: str = "OMS Emulator Goods",
    ) -> dict[str, Any]:
        """A product with one variant and its inventory item, stocked at `location` (default: the primary one)
        with `available` units (None: not stocked there). Returns the gids: product_id, variant_id,
        inventory_item_id, location_id (None when not stocked), and the sku."""
        product_id = next_id()
        now = _graphql_now()
        with self._lock:
            self._products[product_id] = {
                "id": product_id,
                "title": title,
                "handle": re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or str(product_id),
                "vendor": vendor,
                "status": "ACTIVE",
                "created_at": now,
                "updated_at": now,
                "variant_ids": [],
            }
        return self.add_variant(
            gid("Product", product_id),
            sku=sku,
            available=available,
            title=variant_title,
            barcode=barcode,
            price=price,
            weight_grams=weight_grams,
            weight=weight,
            tracked=tracked,
            location=location,
        )

    def add_variant(
        self,
        product: str | int,
        *,
        sku: str | None = "",
        available: int | None = 0,
        title: str | None = None,
        barcode: str | None = None,
        price: str | Decimal = "19.99",
        weight_grams: float | None = None,
        weight: tuple[float, str] | None = None,
        tracked: bool = True,
        location: str | None = None,
    ) -> dict[str, Any]:
        """One more variant of `product` (see add_product); returns the same gids."""
        product_id = gid_number(product, "Product")
        variant_id, item_id = next_id(), next_id()
        location_id = self._location_number(location)
        if weight is None and weight_grams is not None:
            weight = (float(weight_grams), "GRAMS")
        if weight is not None and weight[1] not in WEIGHT_UNITS:
            raise ValueError(f"weight unit must be one of {sorted(WEIGHT_UNITS)}")
        now = _graphql_now()
        with self._lock:
            if product_id not in self._products:
                raise KeyError(f"no product {product}")
            record = self._products[product_id]
            record["variant_ids"].append(variant_id)
            self._variants[variant_id] = {
                "id": variant_id,
                "product_id": product_id,
                "title": title or "Default Title",
                "barcode": barcode,
                "price": f"{Decimal(str(price)).quantize(Decimal('0.01'))}",
                "position": len(record["variant_ids"]),
                "inventory_item_id": item_id,
                "created_at": now,
                "updated_at": now,
            }
            self._items[item_id] = {
                "id": item_id,
                "variant_id": variant_id,
                "sku": sku,
                "tracked": tracked,
                "requires_shipping": True,
                "weight": None if weight is None else {"value": float(weight[0]), "unit": weight[1]},
                "created_at": now,
                "updated_at": now,
            }
            if available is not None:
                self._levels[(item_id, location_id)] = {
                    "quantities": dict.fromkeys(QUANTITY_NAMES, 0) | {"available": available, "on_hand": available},
                    "created_at": now,
                    "updated_at": now,
                }
        return {
            "product_id": gid("Product", product_id),
            "variant_id": gid("ProductVariant", variant_id),
            "inventory_item_id": gid("InventoryItem", item_id),
            "location_id": gid("Location", location_id) if available is not None else None,
            "sku": sku,
        }

    def stock_at(self, item: Any, location: str | None = None, *, available: int = 0) -> None:
        """Stock an item at a location (inventoryActivate), with `available` units."""
        key = (self._item_number(item), self._location_number(location))
        now = _graphql_now()
        with self._lock:
            self._levels.setdefault(
                key,
                {
                    "quantities": dict.fromkeys(QUANTITY_NAMES, 0) | {"available": available, "on_hand": available},
                    "created_at": now,
                    "updated_at": now,
                },
            )

    def set_available(self, item: Any, quantity: int, *, location: str | None = None) -> None:
        """A change made on Shopify's side (a sale, the merchant's edit): drift for the OMS to notice.
        Like Shopify, it moves on_hand by the same amount and sends inventory_levels/update when configured."""
        key = (self._item_number(item), self._location_number(location))
        with self._lock:
            level = self._levels[key]
            delta = quantity - level["quantities"]["available"]
            level["quantities"]["available"] = quantity
            level["quantities"]["on_hand"] += delta
            level["updated_at"] = _graphql_now()
            self._queue_level_webhooks([key])

    def delete_product(self, product: Any) -> None:
        """The merchant deleted a product (productDelete): its variants, inventory items and levels go with it.
        `product` is a gid, a number, or what add_product returned."""
        value = product.get("product_id") if isinstance(product, Mapping) else product
        product_id = gid_number(value, "Product")
        with self._lock:
            record = self._products.pop(product_id or -1, None)
            if record is None:
                raise KeyError(f"no product {product!r}")
            for variant_id in record["variant_ids"]:
                item_id = self._variants.pop(variant_id)["inventory_item_id"]
                self._items.pop(item_id, None)
                for key in [key for key in self._levels if key[0] == item_id]:
                    del self._levels[key]

    def available(self, item: Any, *, location: str | None = None) -> int:
        return self.quantities(item, location=location)["available"]

    def quantities(self, item: Any, *, location: str | None = None) -> dict[str, int]:
        """Every named quantity of one level (KeyError when the item is not stocked there)."""
        key = (self._item_number(item), self._location_number(location))
        with self._lock:
            return dict(self._levels[key]["quantities"])

    def inventory_level_payload(self, item: Any, *, location: str | None = None) -> dict[str, Any]:
        """The REST body Shopify sends on inventory_levels/update for one level."""
        item_id, location_id = self._item_number(item), self._location_number(location)
        with self._lock:
            level = self._levels[(item_id, location_id)]
            tracked = self._items[item_id]["tracked"]
            return {
                "inventory_item_id": item_id,
                "location_id": location_id,
                "available": level["quantities"]["available"] if tracked else None,
                "updated_at": rest_timestamp(parse_time(level["updated_at"])),
                "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{location_id}?inventory_item_id={item_id}",
            }

    def level_webhook(
        self, item: Any, secret: str, *, location: str | None = None, event_id: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """A signed inventory_levels/update delivery for one level, exactly as Shopify sends it."""
        return webhook_delivery(
            "inventory_levels/update",
            self.inventory_level_payload(item, location=location),
            secret,
            shop_domain=self.shop_domain,
            event_id=event_id,
            api_version=self.api_version,
        )

    def wait_for_webhooks(self, timeout: float = 5.0) -> list[WebhookDelivery]:
        """Wait until every queued webhook POST is done; returns all deliveries so far."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = [thread for thread in self._webhook_threads if thread.is_alive()]
                self._webhook_threads = threads
            if not threads:
                break
            threads[0].join(max(deadline - time.monotonic(), 0.0))
            if time.monotonic() >= deadline:
                break
        with self._lock:
            return list(self.webhook_deliveries)

    def _item_number(self, item: Any) -> int:
        value = item.get("inventory_item_id") if isinstance(item, Mapping) else item
        number = gid_number(value, "InventoryItem")
        if number is None:
            raise KeyError(f"not an inventory item: {item!r}")
        return number

    def _location_number(self, location: str | None) -> int:
        number = gid_number(location or self.location_id, "Location")
        if number is None:
            raise KeyError(f"not a location: {location!r}")
        return number

    def _queue_level_webhooks(self, keys: Iterable[tuple[int, int]]) -> None:
        """POST inventory_levels/update for each changed level to webhook_url, off the request thread."""
        if not self.webhook_url:
            return
        deliveries = [
            self.level_webhook(gid("InventoryItem", item), self.webhook_secret, location=gid("Location", loc))
            for item, loc in keys
        ]
        thread = threading.Thread(target=self._post_webhooks, args=(self.webhook_url, deliveries), daemon=True)
        self._webhook_threads.append(thread)
        thread.start()

    def _post_webhooks(self, url: str, deliveries: list[tuple[dict[str, str], bytes]]) -> None:
        for headers, body in deliveries:
            try:
                response = requests.post(url, data=body, headers=headers, timeout=5)
                record = WebhookDelivery(headers["X-Shopify-Topic"], headers, body, response.status_code)
            except requests.RequestException as exc:
                record = WebhookDelivery(headers["X-Shopify-Topic"], headers, body, None, str(exc))
            with self._lock:
                self.webhook_deliveries.append(record)

    # ----------------------------------------------------------------------------------- fault injection

    def force_throttled(self, count: int = 1, *, currently_available: float = 0.0) -> None:
        """Answer the next `count` GraphQL calls THROTTLED, reporting the bucket at `currently_available`
        (as if other clients of the same app had drained it); the real bucket is left as it is."""
        with self._lock:
            self._forced_throttles.extend([currently_available] * count)

    def fail_next(
        self, count: int = 1, *, status: int = 503, retry_after: float | None = None, after: bool = False
    ) -> None:
        """Answer the next `count` API calls with HTTP `status` (5xx, or 429 with Retry-After). With
        `after=True` each call runs first (a mutation is applied) and only its answer is lost, as when a
        gateway times out after Shopify committed."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after, after) for _ in range(count))

    def set_bucket_available(self, points: float) -> None:
        """Set the cost bucket's level now (it keeps restoring from there)."""
        with self._lock:
            self._available = max(0.0, min(float(points), self.maximum_available))
            self._bucket_at = self._clock()

    def throttle_status(self) -> dict[str, float]:
        with self._lock:
            self._refill()
            return self._throttle_status()

    # ------------------------------------------------------------------------------------------ records

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a snapshot: safe while the server runs)."""
        with self._lock:
            return list(self._requests)

    @property
    def graphql_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == self.graphql_path and r.method == "POST"]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # ----------------------------------------------------------------------------------- extension point

    def register_root_field(
        self,
        name: str,
        resolver: RootResolver,
        *,
        operation: str = "query",
        arguments: Iterable[str] = (),
        required: Iterable[str] = (),
    ) -> None:
        """Serve a root field (`operation` "query" or "mutation"); `resolver(args)` returns REST-free
        GraphQL-shaped data (dicts with `__typename`, Resolver values for fields taking arguments)."""
        self._roots[(operation, name)] = Resolver(resolver, arguments, required)

    # -------------------------------------------------------------------------------------------- HTTP

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        path, _, query_string = handler.path.partition("?")
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(dict(handler.headers.items()))
        latency = self.latency
        delay = _rng.uniform(*latency) if isinstance(latency, tuple) else latency
        if delay > 0:
            time.sleep(delay)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        status, body, extra = self._respond(handler.command, path, headers, raw, parsed)
        with self._lock:
            self._requests.append(
                RecordedRequest(handler.command, path, query_string, headers, raw, parsed, time.time(), status, body)
            )
        data = json.dumps(body, separators=(",", ":")).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("X-Request-Id", str(uuid.uuid4()))
        for name, value in extra.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _respond(
        self, method: str, path: str, headers: CaseInsensitiveDict[str], raw: bytes, parsed: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if method != "POST" or path != self.graphql_path:
            return 404, {"errors": "Not Found"}, {}
        extra = {"X-Shopify-API-Version": self.api_version}
        token = headers.get("X-Shopify-Access-Token", "")
        if not token or not hmac.compare_digest(token.encode(), self.access_token.encode()):
            return (
                401,
                {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"},
                extra,
            )
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None and failure.after:
            self._respond_ok(parsed, extra)
        if failure is not None:
            if failure.status == 429:
                extra["Retry-After"] = f"{failure.retry_after if failure.retry_after is not None else 2.0:.1f}"
                return (
                    429,
                    {
                        "errors": "Exceeded 2 calls per second for api client. Reduce request rates to "
                        "resume uninterrupted service."
                    },
                    extra,
                )
            if failure.retry_after is not None:
                extra["Retry-After"] = f"{failure.retry_after:.1f}"
            return failure.status, {"errors": HTTPStatus(failure.status).phrase}, extra
        return self._respond_ok(parsed, extra)

    def _respond_ok(self, parsed: Any, extra: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(parsed, dict) or not isinstance(parsed.get("query"), str) or not parsed["query"].strip():
            return 400, {"errors": {"query": "Required parameter missing or invalid"}}, extra
        variables = parsed.get("variables") or {}
        if isinstance(variables, str):
            try:
                variables = json.loads(variables)
            except ValueError:
                variables = None
        if not isinstance(variables, dict):
            return 400, {"errors": {"variables": "Invalid variables: expected a JSON object"}}, extra
        return 200, self._graphql(parsed["query"], variables, parsed.get("operationName")), extra

    # ---------------------------------------------------------------------------------------- GraphQL

    def _graphql(self, source: str, provided: dict[str, Any], operation_name: Any) -> dict[str, Any]:
        try:
            document = parse_graphql(source)
            operation = self._pick_operation(document, operation_name)
            variables = {**operation.variable_defaults, **provided}
            root_type = "Mutation" if operation.kind == "mutation" else "QueryRoot"
            fields = collect_fields(operation.selections, document.fragments, variables, root_type)
            for item in fields:
                if item.name != "__typename" and (operation.kind, item.name) not in self._roots:
                    raise GraphQLError(
                        f"Field '{item.name}' doesn't exist on type '{root_type}'",
                        line=item.line,
                        column=item.column,
                        path=[operation.kind, item.name],
                        extensions={"code": "undefinedField", "typeName": root_type, "fieldName": item.name},
                    )
            requested = requested_cost(fields, document.fragments, variables)
            if operation.kind == "mutation":
                requested += 10 * sum(1 for item in fields if item.name != "__typename")
        except GraphQLError as error:
            return {"errors": [error.as_dict()]}
        if requested > self.max_query_cost:
            return {
                "errors": [
                    {
                        "message": f"Query cost is {requested}, which exceeds the single query max cost "
                        f"limit ({self.max_query_cost}).\n\nSee {RATE_LIMITS_DOC} for more information on "
                        "how the cost of a query is calculated.\n\nTo query larger amounts of data with "
                        "fewer limits, "
                        "bulk operations should be used instead.",
                        "extensions": {
                            "code": "MAX_COST_EXCEEDED",
                            "cost": requested,
                            "maxCost": self.max_query_cost,
                            "documentation": RATE_LIMITS_DOC,
                        },
                    }
                ]
            }
        with self._lock:
            self._refill()
            if self._forced_throttles:
                return self._throttled(requested, self._forced_throttles.pop(0))
            if self._available < requested:
                return self._throttled(requested, self._available)
            root: dict[str, Any] = {"__typename": root_type}
            root.update({name: resolver for (kind, name), resolver in self._roots.items() if kind == operation.kind})
            context = _Context(document.fragments, variables)
            try:
                data, actual = context.project(root, operation.selections, path=[])
            except GraphQLError as error:
                return {"errors": [error.as_dict()]}
            actual = max(actual - 1, 0)  # the root object itself is free
            if operation.kind == "mutation":
                actual += 10 * sum(1 for item in fields if item.name != "__typename")
            self._available = max(self._available - actual, 0.0)
            result: dict[str, Any] = {
                "data": data,
                "extensions": {
                    "cost": {
                        "requestedQueryCost": requested,
                        "actualQueryCost": actual,
                        "throttleStatus": self._throttle_status(),
                    }
                },
            }
            if context.search_warnings:
                result["extensions"]["search"] = context.search_warnings
            return result

    @staticmethod
    def _pick_operation(document: Document, name: Any) -> Operation:
        if name:
            for operation in document.operations:
                if operation.name == name:
                    return operation
            raise GraphQLError(f'No operation named "{name}"')
        if len(document.operations) > 1:
            raise GraphQLError("An operation name is required")
        return document.operations[0]

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(now - self._bucket_at, 0.0)
        self._available = min(self.maximum_available, self._available + elapsed * self.restore_rate)
        self._bucket_at = now

    def _throttle_status(self) -> dict[str, Any]:
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": int(self._available),
            "restoreRate": self.restore_rate,
        }

    def _throttled(self, requested: int, available: float) -> dict[str, Any]:
        return {
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": RATE_LIMITS_DOC},
                }
            ],
            "extensions": {
                "cost": {
                    "requestedQueryCost": requested,
                    "actualQueryCost": None,
                    "throttleStatus": {
                        "maximumAvailable": self.maximum_available,
                        "currentlyAvailable": int(available),
                        "restoreRate": self.restore_rate,
                    },
                }
            },
        }

    # -------------------------------------------------------------------------------------- resolvers

    def _resolve_orders(self, arguments: dict[str, Any]) -> dict[str, Any]:
        matches, warnings = order_search(arguments.get("query"))
        if warnings:
            _Context.current_warnings().append(
                {"path": ["orders"], "query": arguments.get("query"), "warnings": warnings}
            )
        items = [order for order in self._orders.values() if matches(order)]

        def utc(name: str) -> Callable[[Mapping[str, Any]], tuple[Any, Any]]:
            return lambda o: (graphql_timestamp(o.get(name)) or "", int(o["id"]))

        return connection(
            "OrderConnection",
            items,
            arguments,
            field_name="orders",
            default_sort="ID",
            sort_keys={
                "ID": lambda o: (int(o["id"]), int(o["id"])),
                "UPDATED_AT": utc("updated_at"),
                "CREATED_AT": utc("created_at"),
                "PROCESSED_AT": utc("processed_at"),
                "ORDER_NUMBER": lambda o: (int(o.get("order_number") or 0), int(o["id"])),
            },
            render=self._order_node,
        )

    def _resolve_order(self, arguments: dict[str, Any]) -> dict[str, Any] | None:
        match = re.fullmatch(r"gid://shopify/Order/(\d+)", str(arguments.get("id") or ""))
        if match is None:
            raise GraphQLError(
                f"Invalid global id '{arguments.get('id')}'",
                path=["order"],
                extensions={"code": "argumentLiteralsIncompatible"},
            )
        order = self._orders.get(int(match.group(1)))
        return None if order is None else self._order_node(order)

    def _shop(self) -> dict[str, Any]:
        return {
            "__typename": "Shop",
            "id": "gid://shopify/Shop/1",
            "name": "OMS Emulator",
            "myshopifyDomain": self.shop_domain,
            "currencyCode": self.currency,
            "ianaTimezone": "America/New_York",
        }

    # ------------------------------------------------------------------------------ inventory resolvers
    # All run under self._lock (see _graphql). Fields pointing back at other objects are argument-less
    # Resolvers, so that a node is only rendered when selected.

    def _lazy(self, render: Callable[[], Any]) -> Resolver:
        return Resolver(lambda _args: render(), ())

    def _location_node(self, ident: int) -> dict[str, Any]:
        location = self._locations[ident]

        def levels(arguments: dict[str, Any]) -> dict[str, Any]:
            keys = [key for key in self._levels if key[1] == ident]
            return connection(
                "InventoryLevelConnection",
                keys,
                arguments,
                field_name="inventoryLevels",
                sort_keys={"ID": lambda key: (key[0], key[0])},
                default_sort="ID",
                render=self._level_node,
            )

        def level(arguments: dict[str, Any]) -> dict[str, Any] | None:
            item = gid_number(arguments.get("inventoryItemId"), "InventoryItem")
            return self._level_node((item, ident)) if item is not None and (item, ident) in self._levels else None

        return {
            "__typename": "Location",
            "id": gid("Location", ident),
            "legacyResourceId": str(ident),
            "name": location["name"],
            "isActive": location["active"],
            "inventoryLevels": Resolver(levels, _CONNECTION_ARGS),
            "inventoryLevel": Resolver(level, ("inventoryItemId",), required=("inventoryItemId",)),
        }

    def _level_node(self, key: tuple[int, int]) -> dict[str, Any]:
        item, location = key
        level = self._levels[key]

        def quantities(arguments: dict[str, Any]) -> list[dict[str, Any]]:
            names = arguments.get("names")
            if not isinstance(names, list) or any(name not in QUANTITY_NAMES for name in names):
                raise GraphQLError(
                    f"Invalid quantity names: {names!r}; valid names are {', '.join(sorted(QUANTITY_NAMES))}",
                    path=["quantities"],
                    extensions={"code": "BAD_REQUEST"},
                )
            return [
                {
                    "__typename": "InventoryQuantity",
                    "id": f"gid://shopify/InventoryQuantity/{location}?inventory_item_id={item}&name={name}",
                    "name": name,
                    "quantity": level["quantities"][name],
                    "updatedAt": level["updated_at"],
                }
                for name in names
            ]

        return {
            "__typename": "InventoryLevel",
            "id": f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}",
            "createdAt": level["created_at"],
            "updatedAt": level["updated_at"],
            "canDeactivate": True,
            "quantities": Resolver(quantities, ("names",), required=("names",)),
            "item": self._lazy(lambda: self._item_node(item)),
            "location": self._lazy(lambda: self._location_node(location)),
        }

    def _item_node(self, ident: int) -> dict[str, Any]:
        item = self._items[ident]

        def level(arguments: dict[str, Any]) -> dict[str, Any] | None:
            location = gid_number(arguments.get("locationId"), "Location")
            if location is None or (ident, location) not in self._levels:
                return None
            return self._level_node((ident, location))

        def levels(arguments: dict[str, Any]) -> dict[str, Any]:
            keys = [key for key in self._levels if key[0] == ident]
            return connection(
                "InventoryLevelConnection",
                keys,
                arguments,
                field_name="inventoryLevels",
                sort_keys={"ID": lambda key: (key[1], key[1])},
                default_sort="ID",
                render=self._level_node,
            )

        weight = item["weight"]
        return {
            "__typename": "InventoryItem",
            "id": gid("InventoryItem", ident),
            "legacyResourceId": str(ident),
            "sku": item["sku"],
            "tracked": item["tracked"],
            "requiresShipping": item["requires_shipping"],
            "createdAt": item["created_at"],
            "updatedAt": item["updated_at"],
            "measurement": {
                "__typename": "InventoryItemMeasurement",
                "id": gid("InventoryItemMeasurement", ident),
                "weight": None if weight is None else {"__typename": "Weight", **weight},
            },
            "variant": self._lazy(lambda: self._variant_node(item["variant_id"])),
            "inventoryLevel": Resolver(level, ("locationId",), required=("locationId",)),
            "inventoryLevels": Resolver(levels, _CONNECTION_ARGS),
        }

    def _variant_node(self, ident: int) -> dict[str, Any]:
        variant = self._variants[ident]
        item = self._items[variant["inventory_item_id"]]
        product = self._products[variant["product_id"]]
        stocked = [level for key, level in self._levels.items() if key[0] == item["id"]]
        return {
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", ident),
            "legacyResourceId": str(ident),
            "sku": item["sku"],
            "barcode": variant["barcode"],
            "title": variant["title"],
            "displayName": f"{product['title']} - {variant['title']}",
            "price": variant["price"],
            "compareAtPrice": None,
            "position": variant["position"],
            "inventoryQuantity": sum(level["quantities"]["available"] for level in stocked) if item["tracked"] else 0,
            "createdAt": variant["created_at"],
            "updatedAt": variant["updated_at"],
            "product": self._lazy(lambda: self._product_node(variant["product_id"])),
            "inventoryItem": self._lazy(lambda: self._item_node(variant["inventory_item_id"])),
        }

    def _product_node(self, ident: int) -> dict[str, Any]:
        product = self._products[ident]

        def variants(arguments: dict[str, Any]) -> dict[str, Any]:
            return connection(
                "ProductVariantConnection",
                list(product["variant_ids"]),
                arguments,
                field_name="variants",
                sort_keys={
                    "POSITION": lambda v: (self._variants[v]["position"], v),
                    "ID": lambda v: (v, v),
                },
                default_sort="POSITION",
                render=self._variant_node,
            )

        return {
            "__typename": "Product",
            "id": gid("Product", ident),
            "legacyResourceId": str(ident),
            "title": product["title"],
            "handle": product["handle"],
            "vendor": product["vendor"],
            "status": product["status"],
            "createdAt": product["created_at"],
            "updatedAt": product["updated_at"],
            "variants": Resolver(variants, _CONNECTION_ARGS),
        }

    @staticmethod
    def _required_gid(arguments: Mapping[str, Any], kind: str, field_name: str) -> int:
        number = gid_number(arguments.get("id"), kind)
        if number is None or not str(arguments.get("id", "")).startswith("gid://"):
            raise GraphQLError(
                f"Invalid global id '{arguments.get('id')}'",
                path=[field_name],
                extensions={"code": "argumentLiteralsIncompatible"},
            )
        return number

    def _resolve_location(self, arguments: dict[str, Any]) -> dict[str, Any] | None:
        if "id" not in arguments:  # no id: the shop's primary location
            return self._location_node(self._location_number(None))
        ident = self._required_gid(arguments, "Location", "location")
        return self._location_node(ident) if ident in self._locations else None

    def _resolve_locations(self, arguments: dict[str, Any]) -> dict[str, Any]:
        include_inactive = bool(arguments.get("includeInactive"))
        idents = [i for i, loc in self._locations.items() if loc["active"] or include_inactive]
        return connection(
            "LocationConnection",
            idents,
            arguments,
            field_name="locations",
            sort_keys={"ID": lambda i: (i, i), "NAME": lambda i: (self._locations[i]["name"], i)},
            default_sort="NAME",
            render=self._location_node,
        )

    def _resolve_inventory_item(self, arguments: dict[str, Any]) -> dict[str, Any] | None:
        ident = self._required_gid(arguments, "InventoryItem", "inventoryItem")
        return self._item_node(ident) if ident in self._items else None

    def _resolve_inventory_items(self, arguments: dict[str, Any]) -> dict[str, Any]:
        wanted = _sku_filter(arguments.get("query"))
        idents = [i for i, item in self._items.items() if wanted is None or (item["sku"] or "") == wanted]
        return connection(
            "InventoryItemConnection",
            idents,
            arguments,
            field_name="inventoryItems",
            sort_keys={"ID": lambda i: (i, i)},
            default_sort="ID",
            render=self._item_node,
        )

    def _resolve_variant(self, arguments: dict[str, Any]) -> dict[str, Any] | None:
        ident = self._required_gid(arguments, "ProductVariant", "productVariant")
        return self._variant_node(ident) if ident in self._variants else None

    def _resolve_variants(self, arguments: dict[str, Any]) -> dict[str, Any]:
        wanted = _sku_filter(arguments.get("query"))
        idents = [
            i
            for i, v in self._variants.items()
            if wanted is None or (self._items[v["inventory_item_id"]]["sku"] or "") == wanted
        ]
        return connection(
            "ProductVariantConnection",
            idents,
            arguments,
            field_name="productVariants",
            sort_keys={
                "ID": lambda i: (i, i),
                "SKU": lambda i: (self._items[self._variants[i]["inventory_item_id"]]["sku"] or "", i),
                "POSITION": lambda i: (self._variants[i]["position"], i),
            },
            default_sort="ID",
            render=self._variant_node,
        )

    def _resolve_product(self, arguments: dict[str, Any]) -> dict[str, Any] | None:
        ident = self._required_gid(arguments, "Product", "product")
        return self._product_node(ident) if ident in self._products else None

    def _resolve_products(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return connection(
            "ProductConnection",
            list(self._products),
            arguments,
            field_name="products",
            sort_keys={"ID": lambda i: (i, i), "TITLE": lambda i: (self._products[i]["title"], i)},
            default_sort="ID",
            render=self._product_node,
        )

    def _resolve_nodes(self, arguments: dict[str, Any]) -> list[dict[str, Any] | None]:
        ids = arguments.get("ids")
        if not isinstance(ids, list):
            raise _input_error("ids must be a list of IDs", ["nodes"])
        if len(ids) > MAX_INPUT_SIZE:
            raise _input_size_error(len(ids), ["nodes", "ids"])
        found: list[dict[str, Any] | None] = []
        for value in ids:
            match = re.fullmatch(r"gid://shopify/([A-Za-z]+)/(\d+)", str(value))
            if match is None:
                raise GraphQLError(
                    f"Invalid global id '{value}'", path=["nodes"], extensions={"code": "argumentLiteralsIncompatible"}
                )
            kind, ident = match.group(1), int(match.group(2))
            tables: dict[str, tuple[Mapping[int, Any], Callable[[int], dict[str, Any]]]] = {
                "InventoryItem": (self._items, self._item_node),
                "ProductVariant": (self._variants, self._variant_node),
                "Product": (self._products, self._product_node),
                "Location": (self._locations, self._location_node),
                "Order": (self._orders, lambda i: self._order_node(self._orders[i])),
                "FulfillmentOrder": (self._fulfillment_orders, self._fulfillment_order_node),
                "Fulfillment": (self._fulfillments, self._fulfillment_node),
            }
            table, render = tables.get(kind, ({}, lambda i: {}))
            found.append(render(ident) if ident in table else None)
        return found

    # ------------------------------------------------------------------------- inventorySetQuantities

    def _inventory_set_quantities(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Absolute set with compare-and-swap, all or nothing, under an idempotency key (see module docstring)."""
        directive = _Context.current_directives().get("idempotent")
        key = directive.get("key") if directive else None
        data = self._checked_set_input(arguments.get("input"))
        modern = self.api_version >= "2026-04"
        if modern and not key:
            # Shopify documents that a missing key fails "at runtime" without giving the error's shape.
            raise GraphQLError(
                "The @idempotent directive with a key is required for this mutation.",
                path=["inventorySetQuantities"],
                extensions={"code": "BAD_REQUEST"},
            )
        if key is not None:
            fingerprint = json.dumps(data, sort_keys=True, separators=(",", ":"))
            stored = self._idempotency.get(str(key))
            if stored is not None:
                if stored[0] != fingerprint:
                    return _set_quantities_payload(
                        None,
                        [
                            _user_error(
                                "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                                None,
                                "The same idempotency key cannot be used with different operation parameters.",
                            )
                        ],
                    )
                return stored[1]  # the first answer again, nothing applied twice
        payload = self._apply_set(data)
        if key is not None:
            self._idempotency[str(key)] = (fingerprint, payload)
        return payload

    def _checked_set_input(self, data: Any) -> dict[str, Any]:
        """The input's shape, refused as a whole request (as GraphQL input coercion does) when wrong."""
        where = ["inventorySetQuantities", "input"]
        if not isinstance(data, dict):
            raise _input_error("Expected value for input to be an InventorySetQuantitiesInput object", where)
        modern = self.api_version >= "2026-04"
        allowed = {"name", "reason", "referenceDocumentUri", "quantities"} | (
            set() if modern else {"ignoreCompareQuantity"}
        )
        for name in data:
            if name not in allowed:
                raise _input_error(f"Field is not defined on InventorySetQuantitiesInput: {name}", [*where, name])
        for name in ("name", "reason"):
            if not isinstance(data.get(name), str):
                raise _input_error(f"Expected value to not be null: {name}", [*where, name])
        uri = data.get("referenceDocumentUri")
        if uri is not None and not isinstance(uri, str):
            raise _input_error(
                "Could not coerce value to String: referenceDocumentUri", [*where, "referenceDocumentUri"]
            )
        quantities = data.get("quantities")
        if not isinstance(quantities, list):
            raise _input_error("Expected value to not be null: quantities", [*where, "quantities"])
        if len(quantities) > MAX_INPUT_SIZE:
            raise _input_size_error(len(quantities), [*where, "quantities"])
        fields = {"inventoryItemId", "locationId", "quantity", "changeFromQuantity"} | (
            set() if modern else {"compareQuantity"}
        )
        for index, quantity in enumerate(quantities):
            at = [*where, "quantities", index]
            if not isinstance(quantity, dict):
                raise _input_error("Expected value to be an InventoryQuantityInput object", at)
            for name in quantity:
                if name not in fields:
                    raise _input_error(f"Field is not defined on InventoryQuantityInput: {name}", [*at, name])
            for name in ("inventoryItemId", "locationId"):
                if not isinstance(quantity.get(name), str):
                    raise _input_error(f"Expected value to not be null: {name}", [*at, name])
            for name in ("quantity", "changeFromQuantity"):
                value = quantity.get(name)
                if (value is not None or name == "quantity") and (
                    isinstance(value, bool) or not isinstance(value, int)
                ):
                    raise _input_error(f"Could not coerce value {value!r} to Int: {name}", [*at, name])
            if modern and "changeFromQuantity" not in quantity:
                raise _input_error(
                    "changeFromQuantity is required on every quantity: pass null to skip the compare-and-swap",
                    [*at, "changeFromQuantity"],
                )
        return data

    def _apply_set(self, data: dict[str, Any]) -> dict[str, Any]:
        name, reason, uri = data["name"], data["reason"], data.get("referenceDocumentUri")
        errors: list[dict[str, Any]] = []
        if name not in SETTABLE_QUANTITY_NAMES:
            errors.append(
                _user_error(
                    "INVALID_NAME", ["input", "name"], "The quantity name must be either 'available' or 'on_hand'."
                )
            )
        if reason not in INVENTORY_REASONS:
            errors.append(_user_error("INVALID_REASON", ["input", "reason"], "The specified reason is invalid."))
        if uri is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", uri):
            errors.append(
                _user_error(
                    "INVALID_REFERENCE_DOCUMENT",
                    ["input", "referenceDocumentUri"],
                    "The specified reference document is invalid.",
                )
            )
        targets: list[tuple[tuple[int, int], int]] = []
        seen: set[tuple[int, int]] = set()
        for index, quantity in enumerate(data["quantities"]):
            at = ["input", "quantities", str(index)]
            item = gid_number(quantity["inventoryItemId"], "InventoryItem")
            location = gid_number(quantity["locationId"], "Location")
            if item is None or item not in self._items:
                errors.append(
                    _user_error(
                        "INVALID_INVENTORY_ITEM",
                        [*at, "inventoryItemId"],
                        "The specified inventory item could not be found.",
                    )
                )
                continue
            if location is None or location not in self._locations:
                errors.append(
                    _user_error("INVALID_LOCATION", [*at, "locationId"], "The specified location could not be found.")
                )
                continue
            key = (item, location)
            if key in seen:
                errors.append(
                    _user_error(
                        "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                        at,
                        "The combination of inventoryItemId and locationId must be unique.",
                    )
                )
                continue
            seen.add(key)
            level = self._levels.get(key)
            if level is None:
                errors.append(
                    _user_error(
                        "ITEM_NOT_STOCKED_AT_LOCATION",
                        [*at, "locationId"],
                        "The specified inventory item is not stocked at the location.",
                    )
                )
                continue
            value = quantity["quantity"]
            if value > MAX_QUANTITY:
                errors.append(
                    _user_error(
                        "INVALID_QUANTITY_TOO_HIGH",
                        [*at, "quantity"],
                        "The total quantity can't be higher than 1,000,000,000.",
                    )
                )
                continue
            if value < -MAX_QUANTITY:
                errors.append(
                    _user_error(
                        "INVALID_QUANTITY_TOO_LOW",
                        [*at, "quantity"],
                        "The total quantity can't be lower than -1,000,000,000.",
                    )
                )
                continue
            change_from = quantity.get("changeFromQuantity")
            if name in SETTABLE_QUANTITY_NAMES and change_from is not None and change_from != level["quantities"][name]:
                errors.append(
                    _user_error(
                        "CHANGE_FROM_QUANTITY_STALE",
                        [*at, "changeFromQuantity"],
                        "The changeFromQuantity value does not match persisted value.",
                    )
                )
                continue
            targets.append((key, value))
        if errors:
            return _set_quantities_payload(None, errors)

        now = _graphql_now()
        changes: list[dict[str, Any]] = []
        changed: list[tuple[int, int]] = []
        other = "on_hand" if name == "available" else "available"
        for key, value in targets:
            level = self._levels[key]
            delta = value - level["quantities"][name]
            if delta == 0:
                continue  # nothing moved: no change listed, no webhook
            level["quantities"][name] = value
            level["quantities"][other] += delta  # available and on_hand move together
            level["updated_at"] = now
            changed.append(key)
            changes.extend(
                {"key": key, "name": moved, "delta": delta, "after": level["quantities"][moved]}
                for moved in (name, other)
            )
        group_id = next_id()

        def change_nodes(arguments: dict[str, Any]) -> list[dict[str, Any]]:
            names = arguments.get("quantityNames")
            items = {gid_number(i, "InventoryItem") for i in arguments.get("inventoryItemIds") or []}
            locations = {gid_number(i, "Location") for i in arguments.get("locationIds") or []}
            return [
                {
                    "__typename": "InventoryChange",
                    "name": change["name"],
                    "delta": change["delta"],
                    "quantityAfterChange": change["after"],
                    "ledgerDocumentUri": None,
                    "item": self._lazy(partial(self._item_node, change["key"][0])),
                    "location": self._lazy(partial(self._location_node, change["key"][1])),
                }
                for change in changes
                if (names is None or change["name"] in names)
                and (not items or change["key"][0] in items)
                and (not locations or change["key"][1] in locations)
            ]

        group = {
            "__typename": "InventoryAdjustmentGroup",
            "id": gid("InventoryAdjustmentGroup", group_id),
            "createdAt": now,
            "reason": reason,
            "referenceDocumentUri": uri,
            "changes": Resolver(change_nodes, ("quantityNames", "inventoryItemIds", "locationIds")),
        }
        self._queue_level_webhooks(changed)
        return _set_quantities_payload(group, [])

    # ---------------------------------------------------------------------------------------- fulfillment
    # Runs under self._lock (see _graphql), like the inventory resolvers.

    def _order_node(self, order: Mapping[str, Any]) -> dict[str, Any]:
        """`order_node` plus what only the emulator knows: the order's fulfillment orders and fulfillments."""
        node = order_node(order)
        ident = int(order["id"])

        def fulfillment_orders(arguments: dict[str, Any]) -> dict[str, Any]:
            idents = [i for i, record in self._fulfillment_orders.items() if record["order_id"] == ident]
            return connection(
                "FulfillmentOrderConnection",
                idents,
                arguments,
                field_name="fulfillmentOrders",
                sort_keys={"ID": lambda i: (i, i)},
                default_sort="ID",
                render=self._fulfillment_order_node,
            )

        def fulfillments(arguments: dict[str, Any]) -> list[dict[str, Any]]:
            idents = sorted(i for i, record in self._fulfillments.items() if record["order_id"] == ident)
            first = arguments.get("first")
            if first is not None:
                if not isinstance(first, int) or isinstance(first, bool) or not 0 <= first <= MAX_PAGE_SIZE:
                    raise GraphQLError(
                        f"The first argument must be between 0 and {MAX_PAGE_SIZE}, got {first}",
                        path=["fulfillments"],
                        extensions={"code": "BAD_REQUEST"},
                    )
                idents = idents[:first]
            return [self._fulfillment_node(i) for i in idents]

        node["fulfillmentOrders"] = Resolver(fulfillment_orders, _CONNECTION_ARGS)
        node["fulfillments"] = Resolver(fulfillments, ("first", "query"))
        return node

    def _fulfillment_order_node(self, ident: int) -> dict[str, Any]:
        record = self._fulfillment_orders[ident]
        order = self._orders[record["order_id"]]
        currency = order.get("currency") or "USD"
        order_lines = {int(line["id"]): line for line in order.get("line_items") or []}

        def line_node(line: Mapping[str, Any]) -> dict[str, Any]:
            order_line = order_lines.get(line["line_item_id"])
            return {
                "__typename": "FulfillmentOrderLineItem",
                "id": gid("FulfillmentOrderLineItem", line["id"]),
                "totalQuantity": line["total"],
                "remainingQuantity": line["remaining"],
                "sku": order_line.get("sku") if order_line else None,
                "lineItem": self._lazy(lambda: None if order_line is None else _line_item_node(order_line, currency)),
            }

        def line_items(arguments: dict[str, Any]) -> dict[str, Any]:
            return connection(
                "FulfillmentOrderLineItemConnection",
                list(record["lines"]),
                arguments,
                field_name="lineItems",
                sort_keys={"ID": lambda line: (line["id"], line["id"])},
                default_sort="ID",
                render=line_node,
            )

        location = self._locations.get(record["location_id"], {})
        return {
            "__typename": "FulfillmentOrder",
            "id": gid("FulfillmentOrder", ident),
            "status": record["status"],
            "requestStatus": record["request_status"],
            "createdAt": record["created_at"],
            "updatedAt": record["updated_at"],
            "orderId": gid("Order", record["order_id"]),
            "orderName": order.get("name"),
            "order": self._lazy(lambda: self._order_node(order)),
            "assignedLocation": {
                "__typename": "FulfillmentOrderAssignedLocation",
                "name": location.get("name"),
                "location": self._lazy(lambda: self._location_node(record["location_id"])),
            },
            "lineItems": Resolver(line_items, _CONNECTION_ARGS),
        }

    def _fulfillment_node(self, ident: int) -> dict[str, Any]:
        record = self._fulfillments[ident]

        def tracking_info(arguments: dict[str, Any]) -> list[dict[str, Any]]:
            first = arguments.get("first")
            entries = record["tracking"] if first is None else record["tracking"][: max(int(first), 0)]
            return [{"__typename": "FulfillmentTrackingInfo", **entry} for entry in entries]

        return {
            "__typename": "Fulfillment",
            "id": gid("Fulfillment", ident),
            "legacyResourceId": str(ident),
            "name": record["name"],
            "status": record["status"],
            "displayStatus": "FULFILLED",
            "createdAt": record["created_at"],
            "updatedAt": record["created_at"],
            "trackingInfo": Resolver(tracking_info, ("first",)),
            "order": self._lazy(lambda: self._order_node(self._orders[record["order_id"]])),
            "location": self._lazy(lambda: self._location_node(record["location_id"])),
        }

    def _resolve_fulfillment_order(self, arguments: dict[str, Any]) -> dict[str, Any] | None:
        ident = self._required_gid(arguments, "FulfillmentOrder", "fulfillmentOrder")
        return self._fulfillment_order_node(ident) if ident in self._fulfillment_orders else None

    def _fulfillment_create(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Fulfil fulfillment orders, under an idempotency key when one is given (see the module docstring)."""
        directive = _Context.current_directives().get("idempotent")
        key = directive.get("key") if directive else None
        data = self._checked_fulfillment_input(arguments.get("fulfillment"))
        message = arguments.get("message")
        if message is not None and not isinstance(message, str):
            raise _input_error("Could not coerce value to String: message", ["fulfillmentCreate", "message"])
        fingerprint = json.dumps({"fulfillment": data, "message": message}, sort_keys=True, separators=(",", ":"))
        if key is not None:
            stored = self._fulfillment_keys.get(str(key))
            if stored is not None:
                if stored[0] != fingerprint:
                    return _fulfillment_payload(
                        None,
                        [
                            _plain_user_error(
                                None, "The same idempotency key cannot be used with different operation parameters."
                            )
                        ],
                    )
                return stored[1]  # the first answer again, nothing fulfilled twice
        payload = self._apply_fulfillment(data)
        if key is not None:
            self._fulfillment_keys[str(key)] = (fingerprint, payload)
        return payload

    def _checked_fulfillment_input(self, data: Any) -> dict[str, Any]:
        """FulfillmentInput's shape, refused as a whole request (GraphQL input coercion) when wrong."""
        where: list[Any] = ["fulfillmentCreate", "fulfillment"]
        if not isinstance(data, dict):
            raise _input_error("Expected value for fulfillment to be a FulfillmentInput object", where)
        for name in data:
            if name not in {"lineItemsByFulfillmentOrder", "notifyCustomer", "originAddress", "trackingInfo"}:
                raise _input_error(f"Field is not defined on FulfillmentInput: {name}", [*where, name])
        groups = data.get("lineItemsByFulfillmentOrder")
        if not isinstance(groups, list):
            raise _input_error(
                "Expected value to not be null: lineItemsByFulfillmentOrder", [*where, "lineItemsByFulfillmentOrder"]
            )
        if len(groups) > MAX_INPUT_SIZE:
            raise _input_size_error(len(groups), [*where, "lineItemsByFulfillmentOrder"])
        for index, group in enumerate(groups):
            at = [*where, "lineItemsByFulfillmentOrder", index]
            if not isinstance(group, dict):
                raise _input_error("Expected value to be a FulfillmentOrderLineItemsInput object", at)
            for name in group:
                if name not in {"fulfillmentOrderId", "fulfillmentOrderLineItems"}:
                    raise _input_error(f"Field is not defined on FulfillmentOrderLineItemsInput: {name}", [*at, name])
            if not isinstance(group.get("fulfillmentOrderId"), str):
                raise _input_error("Expected value to not be null: fulfillmentOrderId", [*at, "fulfillmentOrderId"])
            lines = group.get("fulfillmentOrderLineItems")
            if lines is None:
                continue
            if not isinstance(lines, list):
                raise _input_error(
                    "Expected value to be a list: fulfillmentOrderLineItems", [*at, "fulfillmentOrderLineItems"]
                )
            for position, line in enumerate(lines):
                line_at = [*at, "fulfillmentOrderLineItems", position]
                if not isinstance(line, dict) or set(line) - {"id", "quantity"}:
                    raise _input_error("Expected value to be a FulfillmentOrderLineItemInput object", line_at)
                if not isinstance(line.get("id"), str):
                    raise _input_error("Expected value to not be null: id", [*line_at, "id"])
                quantity = line.get("quantity")
                if isinstance(quantity, bool) or not isinstance(quantity, int):
                    raise _input_error(f"Could not coerce value {quantity!r} to Int: quantity", [*line_at, "quantity"])
        notify = data.get("notifyCustomer")
        if notify is not None and not isinstance(notify, bool):
            raise _input_error(
                f"Could not coerce value {notify!r} to Boolean: notifyCustomer", [*where, "notifyCustomer"]
            )
        origin = data.get("originAddress")
        if origin is not None and not isinstance(origin, dict):
            raise _input_error("Expected value to be a FulfillmentOriginAddressInput object", [*where, "originAddress"])
        tracking = data.get("trackingInfo")
        if tracking is None:
            return data
        at = [*where, "trackingInfo"]
        if not isinstance(tracking, dict):
            raise _input_error("Expected value to be a FulfillmentTrackingInput object", at)
        for name, value in tracking.items():
            if name not in {"company", "number", "numbers", "url", "urls"}:
                raise _input_error(f"Field is not defined on FulfillmentTrackingInput: {name}", [*at, name])
            if value is None:
                continue
            values = value if name in ("numbers", "urls") else [value]
            if name in ("numbers", "urls") and not isinstance(value, list):
                raise _input_error(f"Expected value to be a list: {name}", [*at, name])
            for item in values:
                if not isinstance(item, str):
                    raise _input_error(f"Could not coerce value {item!r} to String: {name}", [*at, name])
                if name in ("url", "urls") and not re.fullmatch(r"https?://[^\s/]+\S*", item):
                    # Shopify's URL scalar: an absolute address.
                    raise _input_error(f"Invalid URL: {item!r}", [*at, name])
        return data

    def _apply_fulfillment(self, data: dict[str, Any]) -> dict[str, Any]:
        groups = data["lineItemsByFulfillmentOrder"]
        if not groups:
            return _fulfillment_payload(
                None,
                [
                    _plain_user_error(
                        ["fulfillment", "lineItemsByFulfillmentOrder"],
                        "Line items by fulfillment order can't be blank.",
                    )
                ],
            )
        plan: list[tuple[dict[str, Any], list[tuple[dict[str, Any], int]]]] = []
        for group in groups:
            number = gid_number(group["fulfillmentOrderId"], "FulfillmentOrder")
            record = self._fulfillment_orders.get(number or -1)
            if record is None:
                return _fulfillment_payload(
                    None, [_plain_user_error(["fulfillment"], "Fulfillment order does not exist.")]
                )
            if record["status"] not in FULFILLABLE_STATUSES:
                return _fulfillment_payload(
                    None,
                    [
                        _plain_user_error(
                            ["fulfillment"],
                            f"Fulfillment order {record['id']} has an unfulfillable status= "
                            f"{record['status'].lower()}.",
                        )
                    ],
                )
            if plan and record["order_id"] != plan[0][0]["order_id"]:
                return _fulfillment_payload(
                    None, [_plain_user_error(["fulfillment"], "All fulfillment orders must belong to the same order.")]
                )
            if plan and record["location_id"] != plan[0][0]["location_id"]:
                return _fulfillment_payload(
                    None,
                    [
                        _plain_user_error(
                            ["fulfillment"], "All fulfillment orders must be assigned to the same location."
                        )
                    ],
                )
            wanted = group.get("fulfillmentOrderLineItems")
            moves: list[tuple[dict[str, Any], int]] = []
            if wanted:
                lines = {gid("FulfillmentOrderLineItem", line["id"]): line for line in record["lines"]}
                for item in wanted:
                    line = lines.get(item["id"])
                    if line is None or not 0 < item["quantity"] <= line["remaining"]:
                        return _fulfillment_payload(
                            None,
                            [
                                _plain_user_error(
                                    ["fulfillment"], "Invalid fulfillment order line item quantity requested."
                                )
                            ],
                        )
                    moves.append((line, item["quantity"]))
            else:
                moves = [(line, line["remaining"]) for line in record["lines"] if line["remaining"] > 0]
            if not moves:
                return _fulfillment_payload(
                    None,
                    [_plain_user_error(["fulfillment"], "Invalid fulfillment order line item quantity requested.")],
                )
            plan.append((record, moves))
        tracking = data.get("trackingInfo") or {}
        for single, many in (("number", "numbers"), ("url", "urls")):
            if tracking.get(single) is not None and tracking.get(many) is not None:
                # Shopify's reference says not to send both; the emulator refuses it to catch the mistake.
                return _fulfillment_payload(
                    None,
                    [
                        _plain_user_error(
                            ["fulfillment", "trackingInfo"], f"Provide either {single} or {many}, not both."
                        )
                    ],
                )
        numbers = tracking.get("numbers") or ([tracking["number"]] if tracking.get("number") else [])
        urls = tracking.get("urls") or ([tracking["url"]] if tracking.get("url") else [])
        company = tracking.get("company")
        entries = [
            {"company": company, "number": number, "url": urls[index] if index < len(urls) else None}
            for index, number in enumerate(numbers)
        ]
        if not entries and (company or urls):
            entries = [{"company": company, "number": None, "url": urls[0] if urls else None}]

        now = _graphql_now()
        order = self._orders[plan[0][0]["order_id"]]
        fulfilled: dict[int, int] = {}  # order line id -> quantity
        for record, moves in plan:
            for line, quantity in moves:
                line["remaining"] -= quantity
                fulfilled[line["line_item_id"]] = fulfilled.get(line["line_item_id"], 0) + quantity
            record["status"] = "CLOSED" if not any(line["remaining"] for line in record["lines"]) else "IN_PROGRESS"
            _touch(record)
        ident = next_id()
        sequence = 1 + sum(1 for other in self._fulfillments.values() if other["order_id"] == order["id"])
        self._fulfillments[ident] = {
            "id": ident,
            "order_id": int(order["id"]),
            "name": f"{order.get('name') or order['id']}.{sequence}",
            "status": "SUCCESS",
            "location_id": plan[0][0]["location_id"],
            "tracking_company": company,
            "tracking": entries,
            "notify_customer": bool(data.get("notifyCustomer")),
            "fulfillment_order_ids": [record["id"] for record, _ in plan],
            "lines": [{"id": line_id, "quantity": quantity} for line_id, quantity in fulfilled.items()],
            "created_at": now,
        }
        self._record_rest_fulfillment(order, self._fulfillments[ident])
        return _fulfillment_payload(self._fulfillment_node(ident), [])

    def _record_rest_fulfillment(self, order: dict[str, Any], record: Mapping[str, Any]) -> None:
        """The REST side of a fulfillment: line and order fulfillment_status, fulfillable_quantity, the
        order's `fulfillments`, and a later updated_at (an orders/updated would follow on Shopify)."""
        quantities = {line["id"]: line["quantity"] for line in record["lines"]}
        shipped = []
        for line in order.get("line_items") or []:
            quantity = quantities.get(int(line["id"]))
            if not quantity:
                continue
            left = max(int(line.get("fulfillable_quantity", line.get("quantity")) or 0) - quantity, 0)
            line["fulfillable_quantity"] = left
            line["fulfillment_status"] = "fulfilled" if left == 0 else "partial"
            shipped.append({**copy.deepcopy(line), "quantity": quantity})
        open_left = any(
            line["remaining"]
            for other in self._fulfillment_orders.values()
            if other["order_id"] == int(order["id"]) and other["status"] != "CANCELLED"
            for line in other["lines"]
        )
        order["fulfillment_status"] = "partial" if open_left else "fulfilled"
        numbers = [entry["number"] for entry in record["tracking"] if entry["number"]]
        urls = [entry["url"] for entry in record["tracking"] if entry["url"]]
        stamp = rest_timestamp(parse_time(record["created_at"]))
        order.setdefault("fulfillments", []).append(
            {
                "id": record["id"],
                "admin_graphql_api_id": gid("Fulfillment", record["id"]),
                "created_at": stamp,
                "location_id": record["location_id"],
                "name": record["name"],
                "order_id": int(order["id"]),
                "service": "manual",
                "shipment_status": None,
                "status": "success",
                "tracking_company": record["tracking_company"],
                "tracking_number": numbers[0] if numbers else None,
                "tracking_numbers": numbers,
                "tracking_url": urls[0] if urls else None,
                "tracking_urls": urls,
                "updated_at": stamp,
                "line_items": shipped,
            }
        )
        previous = parse_time(order["updated_at"])
        order["updated_at"] = rest_timestamp(
            max(datetime.now(UTC).replace(microsecond=0), previous + timedelta(seconds=1))
        )


def _user_error(code: str, path: list[str] | None, message: str) -> dict[str, Any]:
    return {"__typename": "InventorySetQuantitiesUserError", "code": code, "field": path, "message": message}


def _set_quantities_payload(group: dict[str, Any] | None, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"__typename": "InventorySetQuantitiesPayload", "inventoryAdjustmentGroup": group, "userErrors": errors}


def _touch(record: dict[str, Any]) -> None:
    """A record changed: its updatedAt moves on, by at least a second (GraphQL DateTimes have whole seconds),
    so that two states of one record never share a timestamp."""
    previous = parse_time(record["updated_at"])
    moment = max(datetime.now(UTC).replace(microsecond=0), previous + timedelta(seconds=1))
    record["updated_at"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain_user_error(path: list[str] | None, message: str) -> dict[str, Any]:
    """A `UserError` (field and message, no code), as fulfillmentCreate's payload carries them."""
    return {"__typename": "UserError", "field": path, "message": message}


def _fulfillment_payload(fulfillment: dict[str, Any] | None, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"__typename": "FulfillmentCreatePayload", "fulfillment": fulfillment, "userErrors": errors}


def _input_size_error(size: int, path: list[Any]) -> GraphQLError:
    # Shopify: "Input arguments that accept an array have a maximum size of 250 ... Requests return an error"
    # (shopify.dev/docs/api/usage/limits): the whole request is refused, not a userError.
    return GraphQLError(
        f"The input array size of {size} is greater than the maximum allowed of {MAX_INPUT_SIZE}.",
        path=path,
        extensions={"code": "MAX_INPUT_SIZE_EXCEEDED"},
    )


def _sku_filter(query: Any) -> str | None:
    """The `sku:<value>` term of a search query (the only one the emulator filters inventory on)."""
    if not isinstance(query, str):
        return None
    match = re.search(r"""\bsku:(?:'([^']*)'|"([^"]*)"|(\S+))""", query)
    if match is None:
        return None
    return next(group for group in match.groups() if group is not None)


class _Context:
    """One execution: walks data along the selection, checking field names and counting the actual cost."""

    _local = threading.local()

    def __init__(self, fragments: Mapping[str, tuple[str, list[Any]]], variables: Mapping[str, Any]) -> None:
        self.fragments = fragments
        self.variables = variables
        self.search_warnings: list[dict[str, Any]] = []
        _Context._local.warnings = self.search_warnings

    @classmethod
    def current_warnings(cls) -> list[dict[str, Any]]:
        warnings: list[dict[str, Any]] = getattr(cls._local, "warnings", [])
        return warnings

    @classmethod
    def current_directives(cls) -> dict[str, dict[str, Any]]:
        """The directives (name -> resolved arguments) on the field whose resolver is running."""
        directives: dict[str, dict[str, Any]] = getattr(cls._local, "directives", {})
        return directives

    def project(
        self, value: Any, selections: list[Any], *, path: list[Any], in_connection: bool = False
    ) -> tuple[Any, int]:
        if value is None:
            return None, 0
        if isinstance(value, list):
            results = [self.project(item, selections, path=[*path, i]) for i, item in enumerate(value)]
            costs = [cost for _, cost in results]
            return [out for out, _ in results], (sum(costs) if in_connection else max(costs, default=0))
        if not isinstance(value, Mapping):
            raise GraphQLError(
                f"Selections can't be made on scalars (field '{path[-1]}' returns a scalar)",
                path=path,
                extensions={"code": "selectionMismatch"},
            )
        typename = value.get("__typename")
        is_connection = bool(typename and typename.endswith("Connection"))
        cost = 2 if is_connection else 0 if (typename or "").endswith("Edge") else 1
        out: dict[str, Any] = {}
        for item in collect_fields(selections, self.fragments, self.variables, typename):
            if item.name == "__typename":
                out[item.key] = typename
                continue
            if item.name not in value:
                raise GraphQLError(
                    f"Field '{item.name}' doesn't exist on type '{typename}'",
                    line=item.line,
                    column=item.column,
                    path=[*path, item.key],
                    extensions={"code": "undefinedField", "typeName": typename, "fieldName": item.name},
                )
            raw = value[item.name]
            arguments = {name: resolve_value(arg, self.variables) for name, arg in item.arguments.items()}
            if isinstance(raw, Resolver):
                unknown = sorted(set(arguments) - raw.arguments)
                if unknown:
                    raise GraphQLError(
                        f"Field '{item.name}' doesn't accept argument '{unknown[0]}'",
                        line=item.line,
                        column=item.column,
                        path=[*path, item.key],
                        extensions={
                            "code": "argumentNotAccepted",
                            "name": item.name,
                            "typeName": "Field",
                            "argumentName": unknown[0],
                        },
                    )
                missing = sorted(name for name in raw.required if arguments.get(name) is None)
                if missing:
                    raise GraphQLError(
                        f"Field '{item.name}' is missing required arguments: {', '.join(missing)}",
                        line=item.line,
                        column=item.column,
                        path=[*path, item.key],
                        extensions={
                            "code": "missingRequiredArguments",
                            "className": "Field",
                            "name": item.name,
                            "arguments": ", ".join(missing),
                        },
                    )
                _Context._local.directives = {
                    name: {key: resolve_value(arg, self.variables) for key, arg in args.items()}
                    for name, args in item.directives
                }
                raw = raw({k: v for k, v in arguments.items() if v is not None})
            elif arguments:
                raise GraphQLError(
                    f"Field '{item.name}' doesn't accept argument '{next(iter(arguments))}'",
                    line=item.line,
                    column=item.column,
                    path=[*path, item.key],
                    extensions={"code": "argumentNotAccepted"},
                )
            if item.selections:
                child, child_cost = self.project(
                    raw,
                    item.selections,
                    path=[*path, item.key],
                    in_connection=is_connection and item.name in ("nodes", "edges"),
                )
                out[item.key] = child
                cost += child_cost
            else:
                if isinstance(raw, Mapping) or (isinstance(raw, list) and raw and isinstance(raw[0], Mapping)):
                    kind = raw.get("__typename") if isinstance(raw, Mapping) else raw[0].get("__typename")
                    raise GraphQLError(
                        f"Field must have selections (field '{item.name}' returns {kind} but has no "
                        "selections. "
                        f"Did you mean '{item.name} {{ ... }}'?)",
                        line=item.line,
                        column=item.column,
                        path=[*path, item.key],
                        extensions={
                            "code": "selectionMismatch",
                            "nodeName": f"field '{item.name}'",
                            "typeName": kind,
                        },
                    )
                out[item.key] = raw
        return out, cost
