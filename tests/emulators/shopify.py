"""A Shopify Admin API emulator on 127.0.0.1 (GraphQL endpoint, cost-based throttling) and webhook helpers.

Speaks Shopify's wire format as documented: `POST /admin/api/{version}/graphql.json` with
`X-Shopify-Access-Token`, answers `{"data", "extensions": {"cost": ...}}`, refuses with Shopify's error
bodies, and records every request so that tests assert on what an adapter really sent. It stores orders in
their REST (webhook) shape and renders them as GraphQL `Order` nodes, so one order can be seen both ways.

GraphQL is read by a small parser (operations, variables, fragments, aliases, @include/@skip); only the
fields that a query selects are returned, and a field the emulator does not know is an error, exactly as a
typo would be on Shopify. Root fields: `orders`, `order`, `shop`; more can be added with
`register_root_field`.

Query cost follows Shopify's published rules: scalars and enums cost 0, an object 1, a connection
2 + first x (1 + the cost of one node) plus 1 for its pageInfo, a mutation's root field 10. A list of
objects that is not a connection costs as one object. The requested cost is computed before running; the
actual cost counts the objects really returned and is what the bucket is charged. Example: the OMS adapter's
orders page, `orders(first: 10)` with `lineItems(first: 8)`, requests 3 + 10 x (18 + 8 x 10) = 983 points.
A query over `max_query_cost` (1,000) is refused with MAX_COST_EXCEEDED; a query the bucket (leaky, default
2,000 points restoring 100/s: the Standard plan) cannot pay for is answered THROTTLED.

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
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from requests.structures import CaseInsensitiveDict

DEFAULT_API_VERSION = "2026-07"
DEFAULT_SHOP_DOMAIN = "oms-emulator.myshopify.com"
SHOP_TZ = timezone(timedelta(hours=-5))  # the shop's zone for REST timestamps (EST, like Shopify's samples)
RATE_LIMITS_DOC = "https://shopify.dev/api/usage/rate-limits"
MAX_PAGE_SIZE = 250

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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
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
        latency: float = 0.0,
        currency: str = "USD",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shop_domain = shop_domain
        self.access_token = access_token or f"shpat_{secrets.token_hex(16)}"
        self.api_version = api_version
        self.maximum_available = float(maximum_available)
        self.restore_rate = float(restore_rate)
        self.max_query_cost = max_query_cost
        self.latency = latency
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
            return copy.deepcopy(order)

    def put_order(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Store a complete REST payload as it is (a fixture, say), replacing any order with its id."""
        order = copy.deepcopy(dict(payload))
        with self._lock:
            self._orders[int(order["id"])] = order
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

    # ----------------------------------------------------------------------------------- fault injection

    def force_throttled(self, count: int = 1, *, currently_available: float = 0.0) -> None:
        """Answer the next `count` GraphQL calls THROTTLED, reporting the bucket at `currently_available`
        (as if other clients of the same app had drained it); the real bucket is left as it is."""
        with self._lock:
            self._forced_throttles.extend([currently_available] * count)

    def fail_next(self, count: int = 1, *, status: int = 503, retry_after: float | None = None) -> None:
        """Answer the next `count` API calls with HTTP `status` (5xx, or 429 with Retry-After)."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after) for _ in range(count))

    def set_available(self, points: float) -> None:
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
        if self.latency > 0:
            time.sleep(self.latency)
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
            render=order_node,
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
        return None if order is None else order_node(order)

    def _shop(self) -> dict[str, Any]:
        return {
            "__typename": "Shop",
            "id": "gid://shopify/Shop/1",
            "name": "OMS Emulator",
            "myshopifyDomain": self.shop_domain,
            "currencyCode": self.currency,
            "ianaTimezone": "America/New_York",
        }


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
