"""Pure functions turning Shopify's shapes into the contract's dataclasses: orders (REST webhook payload and
GraphQL node, which must agree), inventory levels, product variants, the inventory_levels/update payload, and
the pieces of a fulfillment: tracking companies, the tracking input, fulfillment orders.

No I/O here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from channels_adapters.base import (
    ChannelAddress,
    ChannelCustomer,
    ChannelLine,
    ChannelOrder,
    ChannelProduct,
    ChannelStock,
    InvalidPayload,
    PaymentStatus,
)

# REST `financial_status` (lower case) and GraphQL `displayFinancialStatus` (upper case), by lower-case name.
_FINANCIAL_STATUS: dict[str, PaymentStatus] = {
    "pending": PaymentStatus.PENDING,
    "authorized": PaymentStatus.AUTHORIZED,
    "paid": PaymentStatus.PAID,
    "partially_paid": PaymentStatus.PARTIALLY_PAID,
    "partially_refunded": PaymentStatus.PARTIALLY_REFUNDED,
    "refunded": PaymentStatus.REFUNDED,
    "voided": PaymentStatus.VOIDED,
    # An authorisation that lapsed uncaptured: no money will come, as with a voided one.
    "expired": PaymentStatus.VOIDED,
}
# Statuses under which a cash-on-delivery order is still waiting for its cash.
_UNPAID = frozenset({PaymentStatus.PENDING, PaymentStatus.AUTHORIZED, PaymentStatus.PARTIALLY_PAID})
_COD_NAME = re.compile(r"cash[\s_-]*on[\s_-]*delivery|\bcod\b", re.IGNORECASE)
_GID = re.compile(r"^gid://shopify/[A-Za-z]+/(\d+)(?:\?.*)?$")
_ZERO = Decimal("0")


# --------------------------------------------------------------------------------------------------------
# small typed readers: every failure names the field, so a bad payload is diagnosable from the error alone


def _field(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidPayload(f"Shopify order: '{where}' must be an object, got {type(value).__name__}")
    return value


def _optional_mapping(value: Any, where: str) -> Mapping[str, Any] | None:
    return None if value is None else _mapping(value, where)


def _sequence(value: Any, where: str, *, required: bool = True) -> Sequence[Any]:
    if value is None and not required:
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidPayload(f"Shopify order: '{where}' must be a list, got {type(value).__name__}")
    return value


def _text(value: Any) -> str:
    """A string field that may be null or absent: "" then. Numbers (ids, phones) become their text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return ""
    if isinstance(value, str | int):
        return str(value).strip()
    return ""


def _required_text(data: Mapping[str, Any], name: str, path: str = "") -> str:
    value = data.get(name)
    text = _text(value)
    if not text:
        raise InvalidPayload(f"Shopify order: missing '{_field(path, name)}'")
    return text


def _numeric_id(value: Any, where: str) -> str:
    """Shopify's numeric ids arrive as JSON numbers (REST) or digit strings (GraphQL legacyResourceId)."""
    if isinstance(value, bool) or value is None:
        raise InvalidPayload(f"Shopify order: missing or invalid '{where}'")
    if isinstance(value, int) and value > 0:
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return str(int(text))
        match = _GID.match(text)
        if match:
            return match.group(1)
    raise InvalidPayload(f"Shopify order: '{where}' is not a Shopify id: {value!r}")


def _optional_id(value: Any, where: str) -> str:
    return "" if value in (None, "") else _numeric_id(value, where)


def legacy_id(gid: str) -> str:
    """The numeric id inside a GraphQL global id (`gid://shopify/Order/450789469` -> "450789469")."""
    return _numeric_id(gid, "id")


def _money(value: Any, where: str) -> Decimal:
    """A decimal string (or an integer) as Decimal; floats go through their shortest repr, never binary."""
    if value is None or isinstance(value, bool):
        raise InvalidPayload(f"Shopify order: missing amount '{where}'")
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str | int):
        raise InvalidPayload(f"Shopify order: amount '{where}' is not a number: {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidPayload(f"Shopify order: amount '{where}' is not a number: {value!r}") from None
    if not amount.is_finite():
        raise InvalidPayload(f"Shopify order: amount '{where}' is not a finite number: {value!r}")
    return amount


def _optional_money(value: Any, where: str) -> Decimal:
    return _ZERO if value in (None, "") else _money(value, where)


def _quantity(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise InvalidPayload(f"Shopify order: '{where}' is not a whole number: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise InvalidPayload(f"Shopify order: '{where}' is not a whole number: {value!r}")


def parse_timestamp(value: Any, where: str) -> datetime:
    """An ISO 8601 timestamp with an offset (Shopify sends `-05:00` or `Z`); naive ones are refused."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidPayload(f"Shopify order: missing timestamp '{where}'")
    text = value.strip()
    # Python 3.11 reads at most microseconds: trim nanosecond fractions such as X-Shopify-Triggered-At's.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidPayload(f"Shopify order: '{where}' is not an ISO 8601 timestamp: {value!r}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidPayload(f"Shopify order: '{where}' has no UTC offset: {value!r}")
    return moment


def _optional_timestamp(value: Any, where: str) -> datetime | None:
    return None if value in (None, "") else parse_timestamp(value, where)


def _currency(value: Any, where: str) -> str:
    text = _text(value).upper()
    if not re.fullmatch(r"[A-Z]{3}", text):
        raise InvalidPayload(f"Shopify order: missing or invalid currency '{where}': {value!r}")
    return text


def payment_status(financial_status: Any, gateways: Iterable[Any]) -> PaymentStatus:
    """Map Shopify's financial status; an unpaid cash-on-delivery order is COD (ready to ship unpaid).

    An absent or unknown status counts as pending: such an order waits for payment rather than shipping.
    """
    status = _FINANCIAL_STATUS.get(_text(financial_status).lower(), PaymentStatus.PENDING)
    if status in _UNPAID and any(_COD_NAME.search(_text(name)) for name in gateways):
        return PaymentStatus.COD
    return status


def _tags(value: Any) -> tuple[str, ...]:
    parts: Iterable[Any]
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, list | tuple):
        parts = value
    else:
        return ()
    return tuple(text for text in (_text(part) for part in parts) if text)


def _person_name(first: Any, last: Any, full: Any) -> str:
    joined = " ".join(part for part in (_text(first), _text(last)) if part)
    return joined or _text(full)


def _total_money(lines: Iterable[Decimal]) -> Decimal:
    return sum(lines, _ZERO)


# --------------------------------------------------------------------------------------------------------
# REST (webhook) shape


def _rest_shop_amount(money_set: Any, where: str) -> Decimal | None:
    if money_set is None:
        return None
    shop_money = _mapping(_mapping(money_set, where).get("shop_money"), f"{where}.shop_money")
    return _money(shop_money.get("amount"), f"{where}.shop_money.amount")


def _rest_address(value: Any, where: str) -> ChannelAddress | None:
    data = _optional_mapping(value, where)
    if data is None:
        return None
    return ChannelAddress(
        name=_person_name(data.get("first_name"), data.get("last_name"), data.get("name")),
        company=_text(data.get("company")),
        line1=_text(data.get("address1")),
        line2=_text(data.get("address2")),
        city=_text(data.get("city")),
        region=_text(data.get("province_code")),
        postal_code=_text(data.get("zip")),
        country_code=_text(data.get("country_code")).upper(),
        phone=_text(data.get("phone")),
    )


def _rest_customer(value: Any) -> ChannelCustomer | None:
    data = _optional_mapping(value, "customer")
    if data is None:
        return None
    return ChannelCustomer(
        external_id=_optional_id(data.get("id"), "customer.id"),
        email=_text(data.get("email")),
        phone=_text(data.get("phone")),
        first_name=_text(data.get("first_name")),
        last_name=_text(data.get("last_name")),
    )


def _rest_line(value: Any, index: int) -> ChannelLine:
    where = f"line_items[{index}]"
    data = _mapping(value, where)
    tax_lines = _sequence(data.get("tax_lines"), f"{where}.tax_lines", required=False)
    discounts = _sequence(data.get("discount_allocations"), f"{where}.discount_allocations", required=False)
    title = _text(data.get("title")) or _text(data.get("name"))
    return ChannelLine(
        external_id=_numeric_id(data.get("id"), f"{where}.id"),
        sku=_text(data.get("sku")),
        title=title,
        quantity=_quantity(data.get("quantity"), f"{where}.quantity"),
        unit_price=_money(data.get("price"), f"{where}.price"),
        tax=_total_money(
            _money(_mapping(tax, f"{where}.tax_lines[{i}]").get("price"), f"{where}.tax_lines[{i}].price")
            for i, tax in enumerate(tax_lines)
        ),
        discount=_total_money(
            _money(
                _mapping(d, f"{where}.discount_allocations[{i}]").get("amount"),
                f"{where}.discount_allocations[{i}].amount",
            )
            for i, d in enumerate(discounts)
        ),
        variant_title=_text(data.get("variant_title")),
        requires_shipping=bool(data.get("requires_shipping", True)),
        external_variant_id=_optional_id(data.get("variant_id"), f"{where}.variant_id"),
    )


def order_from_rest(payload: Mapping[str, Any]) -> ChannelOrder:
    """An order as Shopify's REST webhooks deliver it (orders/create, /updated, /paid, /cancelled)."""
    data = _mapping(payload, "order")
    if "id" not in data:
        raise InvalidPayload("Shopify order: missing 'id'")
    external_id = _numeric_id(data.get("id"), "id")
    lines = _sequence(data.get("line_items"), "line_items")
    shipping_lines = _sequence(data.get("shipping_lines"), "shipping_lines", required=False)
    shipping_total = _rest_shop_amount(data.get("total_shipping_price_set"), "total_shipping_price_set")
    if shipping_total is None:
        shipping_total = _total_money(
            _money(_mapping(s, f"shipping_lines[{i}]").get("price"), f"shipping_lines[{i}].price")
            for i, s in enumerate(shipping_lines)
        )
    first_shipping = _mapping(shipping_lines[0], "shipping_lines[0]") if shipping_lines else None
    placed = data.get("created_at") or data.get("processed_at")
    gateways = _sequence(data.get("payment_gateway_names"), "payment_gateway_names", required=False)
    return ChannelOrder(
        external_id=external_id,
        number=_text(data.get("name")) or f"#{_text(data.get('order_number')) or external_id}",
        currency=_currency(data.get("currency"), "currency"),
        placed_at=parse_timestamp(placed, "created_at"),
        updated_at=parse_timestamp(data.get("updated_at"), "updated_at"),
        payment_status=payment_status(data.get("financial_status"), gateways),
        subtotal=_optional_money(data.get("subtotal_price"), "subtotal_price"),
        total_tax=_optional_money(data.get("total_tax"), "total_tax"),
        shipping_total=shipping_total,
        discount_total=_optional_money(data.get("total_discounts"), "total_discounts"),
        total=_money(data.get("total_price"), "total_price"),
        # An empty list is kept, not refused: the OMS holds such an order rather than losing it.
        lines=tuple(_rest_line(line, i) for i, line in enumerate(lines)),
        email=_text(data.get("email")) or _text(data.get("contact_email")),
        phone=_text(data.get("phone")),
        customer=_rest_customer(data.get("customer")),
        shipping_address=_rest_address(data.get("shipping_address"), "shipping_address"),
        billing_address=_rest_address(data.get("billing_address"), "billing_address"),
        shipping_method=_text(first_shipping.get("title")) if first_shipping else "",
        cancelled_at=_optional_timestamp(data.get("cancelled_at"), "cancelled_at"),
        cancel_reason=_text(data.get("cancel_reason")).lower(),
        note=_text(data.get("note")),
        tags=_tags(data.get("tags")),
        test=bool(data.get("test", False)),
    )


# --------------------------------------------------------------------------------------------------------
# GraphQL Admin API shape (the node selected by adapter.ORDER_FIELDS)


def _gql_shop_amount(money_set: Any, where: str, *, required: bool = False) -> Decimal:
    if money_set is None:
        if required:
            raise InvalidPayload(f"Shopify order: missing amount '{where}'")
        return _ZERO
    shop_money = _mapping(_mapping(money_set, where).get("shopMoney"), f"{where}.shopMoney")
    return _money(shop_money.get("amount"), f"{where}.shopMoney.amount")


def _gql_address(value: Any, where: str) -> ChannelAddress | None:
    data = _optional_mapping(value, where)
    if data is None:
        return None
    return ChannelAddress(
        name=_person_name(data.get("firstName"), data.get("lastName"), data.get("name")),
        company=_text(data.get("company")),
        line1=_text(data.get("address1")),
        line2=_text(data.get("address2")),
        city=_text(data.get("city")),
        region=_text(data.get("provinceCode")),
        postal_code=_text(data.get("zip")),
        country_code=_text(data.get("countryCodeV2")).upper(),
        phone=_text(data.get("phone")),
    )


def _gql_customer(value: Any) -> ChannelCustomer | None:
    data = _optional_mapping(value, "customer")
    if data is None:
        return None
    ident = data.get("legacyResourceId") or data.get("id")
    return ChannelCustomer(
        external_id=_optional_id(ident, "customer.legacyResourceId"),
        email=_text(data.get("email")),
        phone=_text(data.get("phone")),
        first_name=_text(data.get("firstName")),
        last_name=_text(data.get("lastName")),
    )


def _connection_nodes(value: Any, where: str) -> Sequence[Any]:
    """The items of a connection, selected either as `nodes` or as `edges { node }`."""
    data = _mapping(value, where)
    if "nodes" in data:
        return _sequence(data.get("nodes"), f"{where}.nodes")
    edges = _sequence(data.get("edges"), f"{where}.edges")
    return [_mapping(edge, f"{where}.edges[{i}]").get("node") for i, edge in enumerate(edges)]


def _gql_line(value: Any, index: int) -> ChannelLine:
    where = f"lineItems[{index}]"
    data = _mapping(value, where)
    tax_lines = _sequence(data.get("taxLines"), f"{where}.taxLines", required=False)
    discounts = _sequence(data.get("discountAllocations"), f"{where}.discountAllocations", required=False)
    variant = _optional_mapping(data.get("variant"), f"{where}.variant")
    return ChannelLine(
        external_id=_numeric_id(data.get("id"), f"{where}.id"),
        sku=_text(data.get("sku")),
        title=_text(data.get("title")) or _text(data.get("name")),
        quantity=_quantity(data.get("quantity"), f"{where}.quantity"),
        unit_price=_gql_shop_amount(data.get("originalUnitPriceSet"), f"{where}.originalUnitPriceSet", required=True),
        tax=_total_money(
            _gql_shop_amount(_mapping(t, f"{where}.taxLines[{i}]").get("priceSet"), f"{where}.taxLines[{i}].priceSet")
            for i, t in enumerate(tax_lines)
        ),
        discount=_total_money(
            _gql_shop_amount(
                _mapping(d, f"{where}.discountAllocations[{i}]").get("allocatedAmountSet"),
                f"{where}.discountAllocations[{i}].allocatedAmountSet",
            )
            for i, d in enumerate(discounts)
        ),
        variant_title=_text(data.get("variantTitle")),
        requires_shipping=bool(data.get("requiresShipping", True)),
        external_variant_id=(
            _optional_id(variant.get("legacyResourceId") or variant.get("id"), f"{where}.variant.legacyResourceId")
            if variant
            else ""
        ),
    )


def order_from_graphql(node: Mapping[str, Any]) -> ChannelOrder:
    """An `Order` node from the GraphQL Admin API, with its line items complete (see adapter.fetch_orders)."""
    data = _mapping(node, "order")
    ident = data.get("legacyResourceId") or data.get("id")
    if ident in (None, ""):
        raise InvalidPayload("Shopify order: missing 'legacyResourceId'")
    external_id = _numeric_id(ident, "legacyResourceId")
    line_items = data.get("lineItems")
    if line_items is None:
        raise InvalidPayload("Shopify order: missing 'lineItems'")
    lines = _connection_nodes(line_items, "lineItems")
    shipping_line = _optional_mapping(data.get("shippingLine"), "shippingLine")
    gateways = _sequence(data.get("paymentGatewayNames"), "paymentGatewayNames", required=False)
    placed = data.get("createdAt") or data.get("processedAt")
    return ChannelOrder(
        external_id=external_id,
        number=_text(data.get("name")) or f"#{external_id}",
        currency=_currency(data.get("currencyCode"), "currencyCode"),
        placed_at=parse_timestamp(placed, "createdAt"),
        updated_at=parse_timestamp(data.get("updatedAt"), "updatedAt"),
        payment_status=payment_status(data.get("displayFinancialStatus"), gateways),
        subtotal=_gql_shop_amount(data.get("subtotalPriceSet"), "subtotalPriceSet"),
        total_tax=_gql_shop_amount(data.get("totalTaxSet"), "totalTaxSet"),
        shipping_total=_gql_shop_amount(data.get("totalShippingPriceSet"), "totalShippingPriceSet"),
        discount_total=_gql_shop_amount(data.get("totalDiscountsSet"), "totalDiscountsSet"),
        total=_gql_shop_amount(data.get("totalPriceSet"), "totalPriceSet", required=True),
        lines=tuple(_gql_line(line, i) for i, line in enumerate(lines)),
        email=_text(data.get("email")),
        phone=_text(data.get("phone")),
        customer=_gql_customer(data.get("customer")),
        shipping_address=_gql_address(data.get("shippingAddress"), "shippingAddress"),
        billing_address=_gql_address(data.get("billingAddress"), "billingAddress"),
        shipping_method=_text(shipping_line.get("title")) if shipping_line else "",
        cancelled_at=_optional_timestamp(data.get("cancelledAt"), "cancelledAt"),
        cancel_reason=_text(data.get("cancelReason")).lower(),
        note=_text(data.get("note")),
        tags=_tags(data.get("tags")),
        test=bool(data.get("test", False)),
    )


# --------------------------------------------------------------------------------------------------------
# inventory: ids, levels, product variants, the inventory_levels/update webhook

_GID_OF = re.compile(r"^gid://shopify/(?P<type>[A-Za-z]+)/(?P<id>\d+)$")
_GRAMS_PER_UNIT = {
    "GRAMS": Decimal("1"),
    "KILOGRAMS": Decimal("1000"),
    "OUNCES": Decimal("28.349523125"),
    "POUNDS": Decimal("453.59237"),
}
DEFAULT_VARIANT_TITLE = "Default Title"  # what Shopify calls the only variant of a product without options


def shopify_gid(kind: str, value: Any) -> str | None:
    """`gid://shopify/<kind>/<n>` from a gid of that kind, a numeric id or its digits; None if it is neither."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return f"gid://shopify/{kind}/{value}" if value > 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit() and int(text) > 0:
        return f"gid://shopify/{kind}/{int(text)}"
    match = _GID_OF.match(text)
    if match and match.group("type") == kind:
        return text
    return None


def _inventory_fail(what: str, message: str) -> InvalidPayload:
    return InvalidPayload(f"Shopify {what}: {message}")


def _inventory_mapping(value: Any, what: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _inventory_fail(what, f"'{where}' must be an object, got {type(value).__name__}")
    return value


def _inventory_optional(value: Any, what: str, where: str) -> Mapping[str, Any] | None:
    return None if value is None else _inventory_mapping(value, what, where)


def _gid_field(data: Mapping[str, Any], name: str, kind: str, what: str, where: str = "") -> str:
    gid = shopify_gid(kind, data.get(name))
    if gid is None:
        raise _inventory_fail(what, f"missing or invalid '{_field(where, name)}': {data.get(name)!r}")
    return gid


def _named_quantity(quantities: Any, name: str, what: str, where: str) -> int | None:
    """The `quantity` of the entry called `name` in InventoryLevel.quantities; None when Shopify lists none."""
    if quantities is None:
        return None
    if not isinstance(quantities, list | tuple):
        raise _inventory_fail(what, f"'{where}' must be a list, got {type(quantities).__name__}")
    for index, entry in enumerate(quantities):
        data = _inventory_mapping(entry, what, f"{where}[{index}]")
        if data.get("name") == name:
            value = data.get("quantity")
            if isinstance(value, bool) or not isinstance(value, int):
                raise _inventory_fail(what, f"'{where}[{index}].quantity' is not a whole number: {value!r}")
            return value
    return None


def available_from_level(level: Any, what: str, where: str) -> int | None:
    """`available` from an InventoryLevel node selected with `quantities(names: ["available"])`."""
    if level is None:
        return None
    data = _inventory_mapping(level, what, where)
    return _named_quantity(data.get("quantities"), "available", what, f"{where}.quantities")


def stock_from_level(node: Mapping[str, Any], *, location_id: str) -> ChannelStock:
    """An InventoryLevel node of `location(id) { inventoryLevels }` (see adapter.STOCK_LEVELS_QUERY)."""
    what = "inventory level"
    data = _inventory_mapping(node, what, "inventoryLevel")
    item = _inventory_mapping(data.get("item"), what, "item")
    available = available_from_level(data, what, "inventoryLevel")
    if available is None:
        raise _inventory_fail(what, f"no 'available' quantity for {item.get('id')!r}")
    ids = {"inventory_item_id": _gid_field(item, "id", "InventoryItem", what, "item"), "location_id": location_id}
    variant = _inventory_optional(item.get("variant"), what, "item.variant")
    if variant is not None:
        ids["variant_id"] = _gid_field(variant, "id", "ProductVariant", what, "item.variant")
        product = _inventory_optional(variant.get("product"), what, "item.variant.product")
        if product is not None:
            ids["product_id"] = _gid_field(product, "id", "Product", what, "item.variant.product")
    return ChannelStock(
        external_ids=ids,
        sku=_text(item.get("sku")),
        quantity=available,
        updated_at=_optional_timestamp(data.get("updatedAt"), "updatedAt"),
    )


def weight_in_grams(weight: Any) -> int | None:
    """A `Weight {unit value}` in whole grams (rounded half up); None when Shopify has no weight."""
    if not isinstance(weight, Mapping):
        return None
    value, unit = weight.get("value"), weight.get("unit")
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    factor = _GRAMS_PER_UNIT.get(str(unit).upper())
    if factor is None:
        raise _inventory_fail("product variant", f"unknown weight unit {unit!r}")
    grams = _money(value, "inventoryItem.measurement.weight.value") * factor
    return int(grams.quantize(Decimal("1"), rounding="ROUND_HALF_UP"))


def product_from_variant(node: Mapping[str, Any], *, location_id: str | None) -> ChannelProduct:
    """A ProductVariant node of `productVariants` (see adapter.PRODUCTS_QUERY)."""
    what = "product variant"
    data = _inventory_mapping(node, what, "productVariant")
    product = _inventory_mapping(data.get("product"), what, "product")
    ids = {
        "variant_id": _gid_field(data, "id", "ProductVariant", what),
        "product_id": _gid_field(product, "id", "Product", what, "product"),
    }
    quantity: int | None = None
    weight: int | None = None
    item = _inventory_optional(data.get("inventoryItem"), what, "inventoryItem")
    if item is not None:
        ids["inventory_item_id"] = _gid_field(item, "id", "InventoryItem", what, "inventoryItem")
        measurement = _inventory_optional(item.get("measurement"), what, "inventoryItem.measurement")
        weight = weight_in_grams(measurement.get("weight")) if measurement else None
        if location_id is not None:
            ids["location_id"] = location_id
            quantity = available_from_level(item.get("inventoryLevel"), what, "inventoryItem.inventoryLevel")
    variant_title = _text(data.get("title"))
    price = data.get("price")
    return ChannelProduct(
        external_ids=ids,
        sku=_text(data.get("sku")),
        title=_text(product.get("title")),
        variant_title="" if variant_title == DEFAULT_VARIANT_TITLE else variant_title,
        barcode=_text(data.get("barcode")),
        price=None if price in (None, "") else _money(price, "price"),
        weight_grams=weight,
        quantity=quantity,
    )


def stock_from_level_webhook(payload: Mapping[str, Any]) -> ChannelStock:
    """The REST body of an `inventory_levels/update` webhook: item, location, `available` and `updated_at`."""
    what = "inventory_levels/update"
    data = _inventory_mapping(payload, what, "payload")
    available = data.get("available")
    if available is None:
        raise _inventory_fail(what, "'available' is null: the item is not tracked at this location")
    if isinstance(available, bool) or not isinstance(available, int):
        raise _inventory_fail(what, f"'available' is not a whole number: {available!r}")
    updated = data.get("updated_at")
    return ChannelStock(
        external_ids={
            "inventory_item_id": _gid_field(data, "inventory_item_id", "InventoryItem", what),
            "location_id": _gid_field(data, "location_id", "Location", what),
        },
        sku="",  # Shopify's body carries no SKU: the OMS maps the item id
        quantity=available,
        updated_at=None if updated in (None, "") else parse_timestamp(updated, "updated_at"),
    )


# --------------------------------------------------------------------------------------------------------
# fulfillment write-back: tracking companies, the FulfillmentTrackingInput, fulfillment orders

# Names Shopify recognises in `FulfillmentTrackingInput.company` (it builds tracking links for them and, for
# integrated carriers, follows the shipment). They must be sent exactly as Shopify spells them; the list is
# `FulfillmentTrackingInfo.company` in the GraphQL Admin reference (shopify.dev/docs/api/admin-graphql/latest/
# objects/FulfillmentTrackingInfo#supported-tracking-companies). Only the carriers this OMS is likely to meet
# are listed; anything else is sent as the OMS named it, which Shopify accepts as a custom company.
_TRACKING_COMPANIES = (
    "4PX",
    "An Post",
    "Australia Post",
    "BPost",
    "Canada Post",
    "Chronopost",
    "Colissimo",
    "Correos",
    "CTT",
    "Deutsche Post",
    "DHL eCommerce",
    "DHL Express",
    "DPD",
    "DPD Local",
    "DPD UK",
    "Evri",
    "FedEx",
    "GLS",
    "Inpost",
    "Israel Post",
    "Lasership",
    "Mondial Relay",
    "New Zealand Post",
    "OnTrac",
    "Packeta",
    "Poste Italiane",
    "PostNL",
    "Purolator",
    "Royal Mail",
    "Sendle",
    "SF Express",
    "Swiss Post",
    "TNT",
    "UPS",
    "USPS",
    "YunExpress",
)
# Other spellings of the same carriers (compared without case, accents, spaces or punctuation).
_TRACKING_COMPANY_ALIASES = {
    "unitedstatespostalservice": "USPS",
    "uspostalservice": "USPS",
    "federalexpress": "FedEx",
    "unitedparcelservice": "UPS",
    "zasilkovna": "Packeta",  # Packeta's Czech brand
    "hermesuk": "Evri",  # Hermes UK became Evri
}
TRACKING_NUMBER_PLACEHOLDER = "{number}"  # in a tracking URL: one URL per number (a carrier's URL template)


def _company_key(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]", "", folded.lower())


_COMPANY_BY_KEY = {_company_key(name): name for name in _TRACKING_COMPANIES} | _TRACKING_COMPANY_ALIASES


def tracking_company(carrier: str) -> str:
    """Shopify's spelling of a carrier it knows ("fedex" -> "FedEx"), else the carrier's name as given."""
    name = carrier.strip()
    return _COMPANY_BY_KEY.get(_company_key(name), name) if name else ""


def tracking_numbers(numbers: Iterable[str]) -> tuple[str, ...]:
    """The parcels' numbers, trimmed, without blanks and repeats, in the order given."""
    found: dict[str, None] = {}
    for number in numbers:
        text = number.strip()
        if text:
            found.setdefault(text, None)
    return tuple(found)


def tracking_urls(url: str, numbers: Sequence[str]) -> list[str]:
    """One URL per number from a template holding `{number}`; a plain URL as the only one; none for ""."""
    text = url.strip()
    if not text:
        return []
    if TRACKING_NUMBER_PLACEHOLDER in text and numbers:
        return [text.replace(TRACKING_NUMBER_PLACEHOLDER, quote(number, safe="")) for number in numbers]
    return [text]


def tracking_input(*, numbers: Sequence[str], carrier: str, url: str) -> dict[str, Any] | None:
    """`FulfillmentTrackingInput`: always the list forms (`numbers`, `urls`), never the single ones beside
    them, as Shopify asks; None when there is nothing to say."""
    data: dict[str, Any] = {}
    company = tracking_company(carrier)
    if company:
        data["company"] = company
    if numbers:
        data["numbers"] = list(numbers)
        urls = tracking_urls(url, numbers)
        if urls:
            data["urls"] = urls
    return data or None


FULFILLABLE_STATUSES = frozenset({"OPEN", "IN_PROGRESS"})
WAITING_STATUSES = frozenset({"ON_HOLD", "SCHEDULED"})  # not fulfillable now, but will be


@dataclass(frozen=True, slots=True)
class FulfillmentOrderState:
    """What mark_fulfilled needs of one FulfillmentOrder node."""

    id: str
    status: str
    request_status: str
    location_id: str  # "" when Shopify did not say
    has_remaining: bool
    updated_at: str = ""  # as Shopify wrote it: part of the idempotency key (a changed order is a new request)

    @property
    def fulfillable(self) -> bool:
        return self.status in FULFILLABLE_STATUSES and self.has_remaining


def _fulfillment_fail(message: str) -> InvalidPayload:
    return InvalidPayload(f"Shopify fulfillment orders: {message}")


def fulfillment_order_state(node: Any) -> FulfillmentOrderState:
    """A FulfillmentOrder node as selected by adapter.FULFILLMENT_ORDERS_QUERY."""
    if not isinstance(node, Mapping):
        raise _fulfillment_fail(f"a node is {type(node).__name__}, not an object")
    ident = shopify_gid("FulfillmentOrder", node.get("id"))
    if ident is None:
        raise _fulfillment_fail(f"missing or invalid 'id': {node.get('id')!r}")
    status = _text(node.get("status")).upper()
    if not status:
        raise _fulfillment_fail(f"{ident} has no 'status'")
    lines = node.get("lineItems")
    has_remaining = False
    if isinstance(lines, Mapping):
        for line in _sequence(lines.get("nodes"), f"{ident}.lineItems.nodes"):
            remaining = line.get("remainingQuantity") if isinstance(line, Mapping) else None
            if isinstance(remaining, int) and not isinstance(remaining, bool) and remaining > 0:
                has_remaining = True
        page_info = lines.get("pageInfo")
        if isinstance(page_info, Mapping) and page_info.get("hasNextPage"):
            has_remaining = has_remaining or status in FULFILLABLE_STATUSES  # more lines than were read
    else:
        has_remaining = status in FULFILLABLE_STATUSES  # lines not selected: trust the status
    assigned = node.get("assignedLocation")
    location = assigned.get("location") if isinstance(assigned, Mapping) else None
    return FulfillmentOrderState(
        id=ident,
        status=status,
        request_status=_text(node.get("requestStatus")).upper(),
        location_id=_text(location.get("id")) if isinstance(location, Mapping) else "",
        has_remaining=has_remaining,
        updated_at=_text(node.get("updatedAt")),
    )


def recorded_tracking_numbers(fulfillments: Any) -> tuple[int, frozenset[str]]:
    """How many successful fulfillments an order has and every tracking number they carry."""
    count = 0
    numbers: set[str] = set()
    for fulfillment in _sequence(fulfillments, "fulfillments", required=False):
        if not isinstance(fulfillment, Mapping) or _text(fulfillment.get("status")).upper() != "SUCCESS":
            continue
        count += 1
        for info in _sequence(fulfillment.get("trackingInfo"), "fulfillments.trackingInfo", required=False):
            number = _text(info.get("number")) if isinstance(info, Mapping) else ""
            if number:
                numbers.add(number)
    return count, frozenset(numbers)
