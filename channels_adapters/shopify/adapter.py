"""The Shopify channel: webhook verification, the REST webhook order shape, order backfill over GraphQL,
stock (absolute pushes with compare-and-swap, level and product listings, the inventory_levels/update webhook)
and tracking write-back (fulfillmentCreate on the order's open fulfillment orders).

Only this package knows Shopify's JSON; it returns the dataclasses of channels_adapters.base.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from channels_adapters.base import (
    AuthenticationFailed,
    ChannelAdapter,
    ChannelConfig,
    ChannelError,
    ChannelOrder,
    ChannelStock,
    InvalidPayload,
    InvalidSignature,
    LocalBucket,
    OrderPage,
    ProductPage,
    RateLimiter,
    RejectedRecord,
    StockPage,
    StockPushResult,
    StockQuantity,
    Tracking,
    WebhookEnvelope,
)
from channels_adapters.shopify.client import QueryCostExceeded, ShopifyGraphQLClient
from channels_adapters.shopify.mappers import (
    WAITING_STATUSES,
    FulfillmentOrderState,
    available_from_level,
    fulfillment_order_state,
    order_from_graphql,
    order_from_rest,
    parse_timestamp,
    product_from_variant,
    recorded_tracking_numbers,
    shopify_gid,
    stock_from_level,
    stock_from_level_webhook,
    tracking_input,
    tracking_numbers,
)

API_VERSION = "2026-07"

# Shopify prices a query before running it (scalars 0, objects 1, connections 2 + first x node) and
# refuses any query over 1,000 points (MAX_COST_EXCEEDED). One order node below costs 18 + 10 per line item
# asked for, so a page of 10 orders with 8 line items each costs 3 + 10 x 98 = 983. Orders with more lines
# get the rest through ORDER_LINE_ITEMS_QUERY; should Shopify price higher, fetch_orders halves the page.
ORDERS_PAGE_SIZE = 10
LINE_ITEMS_PAGE_SIZE = 8
MORE_LINE_ITEMS_PAGE_SIZE = 90  # 1 + 3 + 90 x 10 = 904 points

LINE_ITEM_FRAGMENT = """
fragment OmsLineItem on LineItem {
  id sku name title variantTitle quantity requiresShipping
  originalUnitPriceSet { shopMoney { amount } }
  taxLines { priceSet { shopMoney { amount } } }
  discountAllocations { allocatedAmountSet { shopMoney { amount } } }
  variant { legacyResourceId }
}
"""

ORDERS_QUERY = (
    """
query OmsOrders($first: Int!, $after: String, $query: String, $lineItems: Int!) {
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyResourceId name email phone
      createdAt processedAt updatedAt cancelledAt cancelReason
      currencyCode displayFinancialStatus paymentGatewayNames note tags test
      subtotalPriceSet { shopMoney { amount currencyCode } }
      totalTaxSet { shopMoney { amount currencyCode } }
      totalDiscountsSet { shopMoney { amount currencyCode } }
      totalShippingPriceSet { shopMoney { amount currencyCode } }
      totalPriceSet { shopMoney { amount currencyCode } }
      customer { id legacyResourceId email phone firstName lastName }
      shippingAddress { ...OmsAddress }
      billingAddress { ...OmsAddress }
      shippingLine { title code }
      lineItems(first: $lineItems) {
        pageInfo { hasNextPage endCursor }
        nodes { ...OmsLineItem }
      }
    }
  }
}
"""
    + LINE_ITEM_FRAGMENT
    + """
fragment OmsAddress on MailingAddress {
  firstName lastName company address1 address2 city provinceCode countryCodeV2 zip phone
}
"""
)

ORDER_LINE_ITEMS_QUERY = (
    """
query OmsOrderLineItems($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    lineItems(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...OmsLineItem }
    }
  }
}
"""
    + LINE_ITEM_FRAGMENT
)


# ------------------------------------------------------------------------------------------------- stock
#
# inventorySetQuantities sets absolute quantities, all or nothing per call, at most 250 per call (Shopify refuses
# any input array over 250 items: shopify.dev/docs/api/usage/limits). Since 2026-04 every quantity must carry
# changeFromQuantity (null opts out); a mismatch fails the whole call with CHANGE_FROM_QUANTITY_STALE naming the
# quantity (shopify.dev/changelog/finalizing-compare-and-swap-redesign-for-inventory-set-quantities).
#
# Idempotency. Shopify's changelog "Adding idempotency for inventory adjustments and refund mutations"
# (2026-01; shopify.dev/changelog/adding-idempotency-for-inventory-adjustments-and-refund-mutations) lists
# inventorySetQuantities among the mutations taking an optional `@idempotent(key:)` directive, and "Making
# idempotency mandatory for inventory adjustments and refund mutations" (shopify.dev/changelog/
# making-idempotency-mandatory-for-inventory-adjustments-and-refund-mutations) makes it mandatory for that same list
# from 2026-04: "Even though the idempotency directive doesn't show up as mandatory at the schema level, calling
# these mutations without an idempotency directive will result in an error at runtime." (The mutation's own
# reference page does not say so, which is why ../shared/apis.md was unsure.) A repeat with the same key and the
# same variables returns the first result without applying it again; the same key with other variables is
# refused (IDEMPOTENCY_KEY_PARAMETER_MISMATCH), and IDEMPOTENCY_CONCURRENT_REQUEST means the first is still
# running (InventorySetQuantitiesUserErrorCode, shopify.dev/docs/api/admin-graphql/2026-01/enums/
# InventorySetQuantitiesUserErrorCode; 2026-10 adds IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED: use a new key).
# So each call's key is a UUIDv5 of the push's reference and the call's exact input: the client's own retries
# and a job's retry of the same push reuse it, while a rebuilt batch (newer quantity or changeFromQuantity) is new.

STOCK_BATCH_SIZE = 250
STALE_RETRIES = 3  # re-reads of one item found stale before its result says so and gives up
MAX_PUSH_ROUNDS = 8  # calls for one batch at most (stale re-reads, refused items taken out, concurrent retries)
CONCURRENT_RETRY_WAIT = 1.0  # seconds before repeating a call Shopify says is still running under its key
IDEMPOTENCY_NAMESPACE = uuid.UUID("c89a6536-af0f-4729-b28f-27af68effcf7")  # this app's keys, never change it
REFERENCE_URI_PREFIX = "gid://oms/StockPush/"  # Shopify's preferred gid://<app>/<Entity>/<id> for the admin history

SET_AVAILABLE_MUTATION = """
mutation OmsSetAvailable($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup {
      id
      changes(quantityNames: ["available"]) { name delta quantityAfterChange item { id } location { id } }
    }
    userErrors { code field message }
  }
}
"""
# 10 for the mutation, 1 for its payload, 1 for userErrors, 1 for the group and 3 for its changes (a list of
# objects prices as one: the change, its item, its location).
SET_AVAILABLE_COST = 16

AVAILABLE_QUERY = """
query OmsAvailable($ids: [ID!]!, $locationId: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem {
      id
      inventoryLevel(locationId: $locationId) { quantities(names: ["available"]) { name quantity } }
    }
  }
}
"""
AVAILABLE_COST_PER_ITEM = 3  # nodes are priced per id: the item, its level, the level's quantities

STOCK_LEVELS_QUERY = """
query OmsStockLevels($locationId: ID!, $first: Int!, $after: String) {
  location(id: $locationId) {
    id
    inventoryLevels(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        updatedAt
        quantities(names: ["available"]) { name quantity }
        item { id sku variant { id product { id } } }
      }
    }
  }
}
"""
# location 1 + connection 2 + pageInfo 1 + per level 5 (level, quantities, item, variant, product):
# 180 levels cost 904 points, under Shopify's 1,000-point single-query limit.
STOCK_PAGE_SIZE = 180

PRODUCTS_QUERY = """
query OmsProductVariants($first: Int!, $after: String, $locationId: ID!) {
  productVariants(first: $first, after: $after, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id sku barcode title price
      product { id title }
      inventoryItem {
        id
        measurement { weight { unit value } }
        inventoryLevel(locationId: $locationId) { quantities(names: ["available"]) { name quantity } }
      }
    }
  }
}
"""
PRODUCTS_QUERY_WITHOUT_LEVEL = PRODUCTS_QUERY.replace(", $locationId: ID!", "").replace(
    """        inventoryLevel(locationId: $locationId) { quantities(names: ["available"]) { name quantity } }\n""", ""
)
# connection 2 + pageInfo 1 + per variant 7 (variant, product, item, measurement, weight, level, quantities):
# 120 variants cost 843 points; without a location 5 per variant.
PRODUCTS_PAGE_SIZE = 120


# ------------------------------------------------------------------------------------------- fulfillment
#
# Since 2023-07 a fulfillment is made from fulfillment orders: `fulfillmentCreate(fulfillment: FulfillmentInput!)`
# (fulfillmentCreateV2 is its deprecated former name; shopify.dev/docs/api/admin-graphql/2026-07/mutations/
# fulfillmentCreate). One call fulfils every remaining line of the fulfillment orders it names (an empty
# fulfillmentOrderLineItems means all of them); the orders must be assigned to one location, so an order split
# over locations takes one call per location. Its payload's userErrors are plain `UserError`s (field, message:
# no code), e.g. "Fulfillment order 123 has an unfulfillable status= closed." for one already fulfilled.
#
# Retries. The same order and tracking numbers must never make a second fulfillment: (1) before creating,
# mark_fulfilled reads the order, and when nothing is left to fulfil and Shopify already holds those numbers it
# is done; (2) the mutation carries `@idempotent(key:)` with a UUIDv5 of the shop, the order, the numbers and
# the fulfillment orders as read (id and updatedAt), so the client's own retry of a call whose answer was lost,
# or a second worker that read the same state, is answered, not applied again. A write refused and retried after
# the fulfillment order changed (a hold released) is a new request with a new key, since Shopify remembers a
# failed attempt under its key (IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED for the inventory mutations). Shopify's
# changelogs list @idempotent for the inventory and refund mutations; they do not say whether fulfillmentCreate
# honours it, which is why (1) is the guard that counts.

FULFILLMENT_ORDERS_PAGE_SIZE = 10
FULFILLMENT_ORDER_LINES_PAGE_SIZE = 20  # only "is anything left" matters: more lines count as remaining
ORDER_FULFILLMENTS_LIMIT = 20
FULFILLMENT_NAMESPACE = uuid.UUID("5b0d8a4e-2f0c-4d8e-9f61-3c7d2a9e8b14")  # this app's fulfillment keys, never change

FULFILLMENT_ORDERS_QUERY = """
query OmsFulfillmentOrders($id: ID!, $first: Int!, $after: String, $lineItems: Int!, $fulfillments: Int!) {
  order(id: $id) {
    id
    fulfillmentOrders(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id status requestStatus updatedAt
        assignedLocation { location { id } }
        lineItems(first: $lineItems) {
          pageInfo { hasNextPage }
          nodes { id remainingQuantity }
        }
      }
    }
    fulfillments(first: $fulfillments) {
      id status
      trackingInfo { company number url }
    }
  }
}
"""

FULFILLMENT_CREATE_MUTATION = """
mutation OmsFulfillmentCreate($fulfillment: FulfillmentInput!, $idempotencyKey: String!) {
  fulfillmentCreate(fulfillment: $fulfillment) @idempotent(key: $idempotencyKey) {
    fulfillment { id status trackingInfo { company number url } }
    userErrors { field message }
  }
}
"""
# 10 for the mutation, 1 for its payload, 1 for the fulfillment, 1 for its tracking info, 1 for userErrors.
FULFILLMENT_CREATE_COST = 14


def fulfillment_orders_cost(first: int, lines: int, fulfillments: int) -> int:
    """order 1 + connection 2 + pageInfo 1 + per fulfillment order (itself, assignedLocation, location, lineItems
    2 + pageInfo 1 + a line each) + per fulfillment 2 (itself and its tracking info)."""
    return 4 + first * (6 + lines) + 2 * fulfillments


def stock_levels_cost(first: int) -> int:
    return 4 + 5 * first


def products_cost(first: int, *, with_level: bool) -> int:
    return 3 + (7 if with_level else 5) * first


def reference_document_uri(reference: str) -> str | None:
    """The push's reference as Shopify's referenceDocumentUri (kept as is when it already is a URI)."""
    if not reference:
        return None
    if "://" in reference:
        return reference
    return REFERENCE_URI_PREFIX + quote(reference, safe="")


def idempotency_key(namespace: uuid.UUID, content: Mapping[str, Any], attempt: int = 0) -> str:
    """The same namespace and the same input give the same key; `attempt` > 0 forces a new one."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return str(uuid.uuid5(namespace, f"{attempt}:{canonical}" if attempt else canonical))


@dataclass(slots=True)
class _Pending:
    """One quantity still to set in a batch, with what the retries learnt about it."""

    index: int  # position in push_stock's input
    sku: str
    item: str
    location: str
    quantity: int
    change_from: int | None
    stale_rounds: int = 0
    stale: bool = False
    previous: int | None = None

    def as_input(self) -> dict[str, Any]:
        return {
            "inventoryItemId": self.item,
            "locationId": self.location,
            "quantity": self.quantity,
            "changeFromQuantity": self.change_from,
        }

    def failed(self, error: str) -> StockPushResult:
        return StockPushResult(sku=self.sku, ok=False, error=error, stale=self.stale, previous=self.previous)


@dataclass(slots=True)
class _Refusal:
    """A batch's userErrors sorted by what to do about them."""

    stale: set[int]  # positions whose changeFromQuantity was stale
    stale_unplaced: bool  # a stale error that named no position
    refused: dict[int, str]  # positions Shopify refused, with why
    general: list[str]  # errors about the whole call
    concurrent: bool  # the same key is still being processed
    new_key: bool  # the key is spent: retry under a new one


def _quantity_position(path: Any, size: int) -> int | None:
    """The index in `quantities` a userError's field path names (["input", "quantities", "3", ...])."""
    if not isinstance(path, list) or len(path) < 3 or path[:2] != ["input", "quantities"]:
        return None
    text = str(path[2])
    if not text.isdigit() or int(text) >= size:
        return None
    return int(text)


def _read_refusal(errors: Sequence[Any], size: int) -> _Refusal:
    refusal = _Refusal(set(), False, {}, [], False, False)
    for error in errors:
        data = error if isinstance(error, Mapping) else {"message": str(error)}
        code = str(data.get("code") or "")
        message = str(data.get("message") or code or "refused")
        position = _quantity_position(data.get("field"), size)
        if code in ("CHANGE_FROM_QUANTITY_STALE", "COMPARE_QUANTITY_STALE"):
            if position is None:
                refusal.stale_unplaced = True
            else:
                refusal.stale.add(position)
        elif code == "IDEMPOTENCY_CONCURRENT_REQUEST":
            refusal.concurrent = True
        elif code == "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED":
            refusal.new_key = True
        elif position is not None:
            refusal.refused[position] = f"{message} ({code})" if code else message
        else:
            refusal.general.append(f"{message} ({code})" if code else message)
    return refusal


def _previous_by_level(group: Any) -> dict[tuple[str, str], int]:
    """What each level held before the set, from the adjustment group's `available` changes."""
    found: dict[tuple[str, str], int] = {}
    if not isinstance(group, Mapping) or not isinstance(group.get("changes"), list):
        return found
    for change in group["changes"]:
        if not isinstance(change, Mapping) or change.get("name") != "available":
            continue
        item, location = change.get("item"), change.get("location")
        delta, after = change.get("delta"), change.get("quantityAfterChange")
        if (
            isinstance(item, Mapping)
            and isinstance(location, Mapping)
            and isinstance(delta, int)
            and isinstance(after, int)
        ):
            found[(str(item.get("id")), str(location.get("id")))] = after - delta
    return found


@dataclass(frozen=True, slots=True)
class _OrderFulfillment:
    """An order's fulfillment orders and what Shopify has already fulfilled of it."""

    order_id: str
    fulfillment_orders: tuple[FulfillmentOrderState, ...]
    fulfillment_count: int
    numbers: frozenset[str]  # tracking numbers of the successful fulfillments

    def open_by_location(self) -> list[list[FulfillmentOrderState]]:
        """The fulfillable fulfillment orders, one group per assigned location (one fulfillmentCreate each)."""
        groups: dict[str, list[FulfillmentOrderState]] = {}
        for order in self.fulfillment_orders:
            if order.fulfillable:
                groups.setdefault(order.location_id, []).append(order)
        return list(groups.values())

    def holds(self, numbers: Sequence[str]) -> bool:
        """Shopify already recorded a fulfillment carrying every one of these numbers (any, when none)."""
        return self.fulfillment_count > 0 and self.numbers.issuperset(numbers)

    def waiting(self, among: Sequence[str] | None = None) -> bool:
        """Some fulfillment order (of `among`, default all) is on hold or scheduled: fulfillable later."""
        return any(o.status in WAITING_STATUSES and (among is None or o.id in among) for o in self.fulfillment_orders)

    def closed(self, ids: Sequence[str]) -> bool:
        """Each of these fulfillment orders is CLOSED (or no longer listed, as Shopify may leave closed ones out)."""
        return all(o.status == "CLOSED" for o in self.fulfillment_orders if o.id in ids)

    def refusal(self, numbers: Sequence[str]) -> ChannelError:
        """Why nothing can be fulfilled now, as the error mark_fulfilled raises."""
        statuses = ", ".join(
            f"{o.id.rsplit('/', 1)[-1]} {o.status}" + (f"/{o.request_status}" if o.request_status else "")
            for o in self.fulfillment_orders
        )
        where = f"Shopify order {self.order_id}"
        if self.waiting():
            return ChannelError(f"{where} is on hold or scheduled, not fulfillable yet ({statuses})", retryable=True)
        if self.fulfillment_count and numbers:
            shown = ", ".join(sorted(self.numbers)) or "no tracking"
            return ChannelError(
                f"{where} is already fulfilled on Shopify with other tracking ({shown}); nothing left for "
                f"{', '.join(numbers)} ({statuses})",
                retryable=False,
            )
        return ChannelError(
            f"{where} has nothing left to fulfil ({statuses or 'no fulfillment orders'})", retryable=False
        )


def normalise_shop_domain(value: str) -> str:
    """`Shop.myshopify.com`, `https://shop.myshopify.com/` and `shop` all mean `shop.myshopify.com`."""
    domain = value.strip().lower()
    for prefix in ("https://", "http://"):
        domain = domain.removeprefix(prefix)
    domain = domain.split("/", 1)[0]
    if domain and "." not in domain:
        domain = f"{domain}.myshopify.com"
    return domain


def _sign(secret: str, body: bytes) -> bytes:
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest())


class _Headers:
    """Case-insensitive view over any header mapping (Django's, or a plain dict in whatever case)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._values = {str(key).lower(): str(value) for key, value in headers.items()}

    def get(self, name: str) -> str:
        return self._values.get(name.lower(), "").strip()


class ShopifyAdapter(ChannelAdapter):
    kind: ClassVar[str] = "shopify"
    label: ClassVar[str] = "Shopify"
    order_topics: ClassVar[frozenset[str]] = frozenset(
        {"orders/create", "orders/updated", "orders/paid", "orders/cancelled"}
    )
    stock_topics: ClassVar[frozenset[str]] = frozenset({"inventory_levels/update"})
    deferred_topics: ClassVar[frozenset[str]] = frozenset({"refunds/create"})
    # location_id: the Shopify location (gid or number) whose stock the OMS manages.
    options: ClassVar[frozenset[str]] = frozenset(
        {"shop_domain", "access_token", "webhook_secret", "api_base_url", "location_id"}
    )
    secret_options: ClassVar[frozenset[str]] = frozenset({"access_token", "webhook_secret"})
    address_options: ClassVar[frozenset[str]] = frozenset({"shop_domain"})

    def __init__(
        self,
        config: ChannelConfig,
        *,
        limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config, limiter=limiter if limiter is not None else LocalBucket(clock=clock))
        self._session = session
        self._sleep = sleep
        self._clock = clock
        self._client: ShopifyGraphQLClient | None = None
        self.orders_page_size = ORDERS_PAGE_SIZE
        self.line_items_page_size = LINE_ITEMS_PAGE_SIZE
        self.stock_page_size = STOCK_PAGE_SIZE
        self.products_page_size = PRODUCTS_PAGE_SIZE

    @classmethod
    def api_base_url_for(cls, options: Mapping[str, str]) -> str:
        if options.get("api_base_url"):
            return options["api_base_url"].rstrip("/")
        return f"https://{normalise_shop_domain(options['shop_domain'])}"

    # --------------------------------------------------------------------------------------------- config

    @property
    def shop_domain(self) -> str:
        return normalise_shop_domain(self.config.options.get("shop_domain", ""))

    @property
    def graphql_endpoint(self) -> str:
        base = self.config.api_base_url.rstrip("/") or (f"https://{self.shop_domain}" if self.shop_domain else "")
        if not base:
            raise AuthenticationFailed(f"channel {self.config.slug}: no shop_domain or api_base_url configured")
        return f"{base}/admin/api/{API_VERSION}/graphql.json"

    @property
    def client(self) -> ShopifyGraphQLClient:
        if self._client is None:
            token = self.config.credentials.get("access_token", "")
            if not token:
                raise AuthenticationFailed(f"channel {self.config.slug}: no Shopify access_token configured")
            self._client = ShopifyGraphQLClient(
                endpoint=self.graphql_endpoint,
                access_token=token,
                timeout=self.config.timeout,
                session=self._session,
                sleep=self._sleep,
                clock=self._clock,
                limiter=self.limiter,
            )
        return self._client

    @property
    def location_id(self) -> str | None:
        """The managed location as a gid, from the `location_id` option; None when not configured."""
        value = self.config.options.get("location_id", "")
        if not value:
            return None
        gid = shopify_gid("Location", value)
        if gid is None:
            raise ChannelError(
                f"channel {self.config.slug}: location_id {value!r} is not a Shopify location id", retryable=False
            )
        return gid

    def _managed_location(self) -> str:
        location = self.location_id
        if location is None:
            raise ChannelError(
                f"channel {self.config.slug}: set the location_id option to the Shopify location the OMS manages",
                retryable=False,
            )
        return location

    # ------------------------------------------------------------------------------------------- webhooks

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEnvelope:
        view = _Headers(headers)
        given = view.get("X-Shopify-Hmac-Sha256")
        if not given:
            raise InvalidSignature("no X-Shopify-Hmac-Sha256 header")
        secrets = [secret for secret in self.config.webhook_secrets if secret]
        if not secrets:
            raise InvalidSignature(f"channel {self.config.slug} has no webhook secret configured")
        given_bytes = given.encode("utf-8", "replace")
        # Check every secret (current, then the previous one during rotation) so timing says nothing.
        matches = [hmac.compare_digest(_sign(secret, body), given_bytes) for secret in secrets]
        if not any(matches):
            raise InvalidSignature("X-Shopify-Hmac-Sha256 does not match the webhook secret")
        sender = view.get("X-Shopify-Shop-Domain")
        if sender and self.shop_domain and normalise_shop_domain(sender) != self.shop_domain:
            raise InvalidSignature(f"delivery is for shop {sender!r}, this channel is {self.shop_domain!r}")

        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidPayload(f"body is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise InvalidPayload(f"body is JSON {type(payload).__name__}, not an object")
        topic = view.get("X-Shopify-Topic")
        if not topic:
            raise InvalidPayload("no X-Shopify-Topic header")
        event = view.get("X-Shopify-Event-Id")
        if not event:
            raise InvalidPayload("no X-Shopify-Event-Id header: cannot tell a redelivery from a new event")
        resource = payload.get("id")
        return WebhookEnvelope(
            event_id=f"{topic}:{event}",
            topic=topic,
            payload=payload,
            resource_id="" if resource is None or isinstance(resource, bool) else str(resource),
            triggered_at=self._triggered_at(view.get("X-Shopify-Triggered-At")),
        )

    @staticmethod
    def _triggered_at(value: str) -> datetime | None:
        if not value:
            return None
        try:
            return parse_timestamp(value, "X-Shopify-Triggered-At")
        except InvalidPayload:
            return None

    def parse_order(self, payload: Mapping[str, Any]) -> ChannelOrder:
        return order_from_rest(payload)

    # ------------------------------------------------------------------------------------------- backfill

    def fetch_orders(self, *, since: datetime | None, cursor: str | None) -> OrderPage:
        client = self.client
        calls_before = client.calls
        variables: dict[str, Any] = {"after": cursor}
        if since is not None:
            moment = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
            # Shopify filters on whole seconds: round down so that nothing at `since` is missed.
            variables["query"] = f"updated_at:>='{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}'"
        while True:
            variables["first"] = self.orders_page_size
            variables["lineItems"] = self.line_items_page_size
            try:
                data = client.execute(ORDERS_QUERY, variables)
                break
            except QueryCostExceeded:
                if self.orders_page_size > 1:
                    self.orders_page_size = max(1, self.orders_page_size // 2)
                elif self.line_items_page_size > 1:
                    self.line_items_page_size = max(1, self.line_items_page_size // 2)
                else:
                    raise
        connection = data.get("orders")
        if not isinstance(connection, Mapping):
            raise InvalidPayload("Shopify answered the orders query without `orders`")
        nodes = connection.get("nodes")
        if not isinstance(nodes, list):
            raise InvalidPayload("Shopify answered the orders query without `orders.nodes`")
        orders: list[ChannelOrder] = []
        rejected: list[RejectedRecord] = []
        for node in nodes:
            # One order Shopify describes oddly must not hide the rest of the page from the backfill.
            try:
                orders.append(order_from_graphql(self._complete_line_items(client, node)))
            except InvalidPayload as exc:
                ident = node.get("legacyResourceId") or node.get("id") if isinstance(node, Mapping) else None
                rejected.append(RejectedRecord(external_id=str(ident or "?"), error=str(exc)))
        page_info = connection.get("pageInfo")
        has_next = isinstance(page_info, Mapping) and bool(page_info.get("hasNextPage"))
        end_cursor = page_info.get("endCursor") if isinstance(page_info, Mapping) else None
        return OrderPage(
            orders=tuple(orders),
            next_cursor=str(end_cursor) if has_next and end_cursor else None,
            calls=client.calls - calls_before,
            rejected=tuple(rejected),
        )

    def _complete_line_items(self, client: ShopifyGraphQLClient, node: Any) -> Any:
        """A node whose line items span more than one page gets the rest, so no line is ever dropped."""
        if not isinstance(node, Mapping):
            return node
        connection = node.get("lineItems")
        if not isinstance(connection, Mapping):
            return node
        page_info = connection.get("pageInfo")
        if not isinstance(page_info, Mapping) or not page_info.get("hasNextPage"):
            return node
        lines = list(connection.get("nodes") or [])
        after = page_info.get("endCursor")
        while after:
            data = client.execute(
                ORDER_LINE_ITEMS_QUERY,
                {"id": node.get("id"), "first": MORE_LINE_ITEMS_PAGE_SIZE, "after": after},
            )
            order = data.get("order")
            if not isinstance(order, Mapping) or not isinstance(order.get("lineItems"), Mapping):
                # Deleted between the page and this call: the next backfill will not list it any more.
                raise ChannelError(f"Shopify order {node.get('id')} vanished while its line items were read")
            more = order["lineItems"]
            lines.extend(more.get("nodes") or [])
            info = more.get("pageInfo")
            after = info.get("endCursor") if isinstance(info, Mapping) and info.get("hasNextPage") else None
        return {**node, "lineItems": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": lines}}

    # ---------------------------------------------------------------------------------------------- stock

    def parse_stock_update(self, payload: Mapping[str, Any]) -> ChannelStock:
        return stock_from_level_webhook(payload)

    def push_stock(self, levels: Sequence[StockQuantity], *, reference: str = "") -> list[StockPushResult]:
        """Set `available` for each level at its location, in calls of at most 250, with compare-and-swap.

        A quantity found stale is re-read and set again from what Shopify holds (stale=True, previous=that
        value); one Shopify refuses is taken out and the rest of its call retried. Two levels for the same
        item and location: the later wins, and both get its result. Without a reference each call of this
        method has keys of its own, so only the client's retries are recognised as repeats.
        """
        results: list[StockPushResult | None] = [None] * len(levels)
        keys: list[tuple[str, str] | None] = [None] * len(levels)
        latest: dict[tuple[str, str], int] = {}
        default_location = self.config.options.get("location_id", "")
        for index, level in enumerate(levels):
            item = shopify_gid("InventoryItem", level.external_ids.get("inventory_item_id"))
            location = shopify_gid("Location", level.external_ids.get("location_id") or default_location)
            if item is None:
                results[index] = StockPushResult(
                    sku=level.sku, ok=False, error="no Shopify inventory_item_id among the listing's external ids"
                )
            elif location is None:
                results[index] = StockPushResult(
                    sku=level.sku,
                    ok=False,
                    error="no Shopify location: give location_id in the external ids or as the channel's option",
                )
            else:
                keys[index] = (item, location)
                latest[(item, location)] = index
        pending = [
            _Pending(index, levels[index].sku, item, location, levels[index].quantity, levels[index].change_from)
            for (item, location), index in sorted(latest.items(), key=lambda entry: entry[1])
        ]
        namespace = uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{self.config.slug}\n{reference}") if reference else uuid.uuid4()
        uri = reference_document_uri(reference)
        for start in range(0, len(pending), STOCK_BATCH_SIZE):
            outcome = self._push_batch(pending[start : start + STOCK_BATCH_SIZE], namespace, uri)
            for index, pushed in outcome.items():
                results[index] = pushed
        done: list[StockPushResult] = []
        for index, level in enumerate(levels):
            result = results[index]
            key = keys[index]
            if result is None and key is not None:
                # An earlier duplicate: it shares the outcome of the latest quantity for its item and location.
                winner = results[latest[key]]
                result = None if winner is None else replace(winner, sku=level.sku)
            done.append(result or StockPushResult(sku=level.sku, ok=False, error="not attempted"))
        return done

    def _push_batch(
        self, batch: Sequence[_Pending], namespace: uuid.UUID, uri: str | None
    ) -> dict[int, StockPushResult]:
        done: dict[int, StockPushResult] = {}
        pending = list(batch)
        attempt = 0
        rounds = 0
        while pending:
            if rounds >= MAX_PUSH_ROUNDS:
                for entry in pending:
                    done[entry.index] = entry.failed(f"not set: Shopify refused this batch {rounds} times")
                break
            rounds += 1
            content: dict[str, Any] = {
                "name": "available",
                "reason": "correction",
                "referenceDocumentUri": uri,
                "quantities": [entry.as_input() for entry in pending],
            }
            data = self.client.execute(
                SET_AVAILABLE_MUTATION,
                {"input": content, "idempotencyKey": idempotency_key(namespace, content, attempt)},
                expected_cost=SET_AVAILABLE_COST,
            )
            payload = data.get("inventorySetQuantities")
            if not isinstance(payload, Mapping):
                raise ChannelError("Shopify answered inventorySetQuantities without its payload")
            errors = payload.get("userErrors") or []
            if not isinstance(errors, list):
                raise ChannelError("Shopify answered inventorySetQuantities with userErrors that are not a list")
            if not errors:
                group = payload.get("inventoryAdjustmentGroup")
                previous = _previous_by_level(group)
                for entry in pending:
                    before = previous.get((entry.item, entry.location))
                    if before is None:
                        # No change listed: the level already held the quantity (when Shopify gave a group).
                        before = entry.quantity if isinstance(group, Mapping) else entry.change_from
                    done[entry.index] = StockPushResult(sku=entry.sku, ok=True, stale=entry.stale, previous=before)
                break
            refusal = _read_refusal(errors, len(pending))
            if refusal.general:
                message = "; ".join(refusal.general)
                for entry in pending:
                    done[entry.index] = entry.failed(message)
                break
            if refusal.new_key:
                attempt += 1
            for position, message in refusal.refused.items():
                done[pending[position].index] = pending[position].failed(message)
            stale = [pending[p] for p in sorted(refusal.stale) if p not in refusal.refused]
            if refusal.stale_unplaced:
                stale = self._find_stale([e for e in pending if e.index not in done and e.change_from is not None])
            self._refresh_stale(stale, done)
            if refusal.concurrent and not (stale or refusal.refused or refusal.new_key):
                self._sleep(CONCURRENT_RETRY_WAIT)
            pending = [entry for entry in pending if entry.index not in done]
        return done

    def _refresh_stale(self, stale: Sequence[_Pending], done: dict[int, StockPushResult]) -> None:
        """Re-read what Shopify holds for items found stale and compare-and-swap from there next time."""
        retry: list[_Pending] = []
        for entry in stale:
            entry.stale = True
            entry.stale_rounds += 1
            if entry.stale_rounds > STALE_RETRIES:
                done[entry.index] = entry.failed(
                    f"not set: the quantity on Shopify kept changing ({entry.stale_rounds} compare-and-swap misses)"
                )
            else:
                retry.append(entry)
        if not retry:
            return
        current = self._read_available(retry)
        for entry in retry:
            value = current.get((entry.item, entry.location))
            if value is None:
                done[entry.index] = entry.failed("not set: the item is no longer stocked at the location on Shopify")
                continue
            entry.previous = value
            entry.change_from = value

    def _find_stale(self, candidates: Sequence[_Pending]) -> list[_Pending]:
        """Shopify said stale without saying which: those whose value is not what we compared with."""
        current = self._read_available(candidates)
        return [e for e in candidates if current.get((e.item, e.location)) != e.change_from]

    def _read_available(self, entries: Sequence[_Pending]) -> dict[tuple[str, str], int | None]:
        """`available` now for each entry's item at its location: one query per location (per 250 items)."""
        by_location: dict[str, list[str]] = {}
        for entry in entries:
            ids = by_location.setdefault(entry.location, [])
            if entry.item not in ids:
                ids.append(entry.item)
        found: dict[tuple[str, str], int | None] = {}
        for location, items in by_location.items():
            for start in range(0, len(items), STOCK_BATCH_SIZE):
                chunk = items[start : start + STOCK_BATCH_SIZE]
                data = self.client.execute(
                    AVAILABLE_QUERY,
                    {"ids": chunk, "locationId": location},
                    expected_cost=AVAILABLE_COST_PER_ITEM * len(chunk),
                )
                nodes = data.get("nodes")
                if not isinstance(nodes, list):
                    raise ChannelError("Shopify answered the available query without `nodes`")
                for node in nodes:
                    if isinstance(node, Mapping) and node.get("id"):
                        level = available_from_level(node.get("inventoryLevel"), "inventory item", "inventoryLevel")
                        found[(str(node["id"]), location)] = level
        return found

    def fetch_stock(self, *, cursor: str | None) -> StockPage:
        """One page of the levels stocked at the managed location: item, variant, product, SKU, available."""
        location = self._managed_location()
        client = self.client
        calls_before = client.calls
        while True:
            try:
                data = client.execute(
                    STOCK_LEVELS_QUERY,
                    {"locationId": location, "first": self.stock_page_size, "after": cursor},
                    expected_cost=stock_levels_cost(self.stock_page_size),
                )
                break
            except QueryCostExceeded:
                if self.stock_page_size <= 1:
                    raise
                self.stock_page_size = max(1, self.stock_page_size // 2)
        found = data.get("location")
        if found is None:
            raise ChannelError(f"Shopify has no location {location}: check the location_id option", retryable=False)
        if not isinstance(found, Mapping) or not isinstance(found.get("inventoryLevels"), Mapping):
            raise InvalidPayload("Shopify answered the stock query without `location.inventoryLevels`")
        nodes, next_cursor = _connection_page(found["inventoryLevels"], "location.inventoryLevels")
        return StockPage(
            items=tuple(stock_from_level(node, location_id=location) for node in nodes),
            next_cursor=next_cursor,
            calls=client.calls - calls_before,
        )

    def fetch_products(self, *, cursor: str | None) -> ProductPage:
        """One page of product variants: SKU, barcode, titles, price, weight, and available at the location."""
        location = self.location_id
        client = self.client
        calls_before = client.calls
        query = PRODUCTS_QUERY if location else PRODUCTS_QUERY_WITHOUT_LEVEL
        while True:
            variables: dict[str, Any] = {"first": self.products_page_size, "after": cursor}
            if location:
                variables["locationId"] = location
            try:
                data = client.execute(
                    query,
                    variables,
                    expected_cost=products_cost(self.products_page_size, with_level=bool(location)),
                )
                break
            except QueryCostExceeded:
                if self.products_page_size <= 1:
                    raise
                self.products_page_size = max(1, self.products_page_size // 2)
        connection = data.get("productVariants")
        if not isinstance(connection, Mapping):
            raise InvalidPayload("Shopify answered the products query without `productVariants`")
        nodes, next_cursor = _connection_page(connection, "productVariants")
        return ProductPage(
            items=tuple(product_from_variant(node, location_id=location) for node in nodes),
            next_cursor=next_cursor,
            calls=client.calls - calls_before,
        )

    # ---------------------------------------------------------------------------------------- fulfillment

    def mark_fulfilled(self, *, order_external_id: str, tracking: Tracking) -> None:
        """Fulfil everything still open on the order with this tracking: one fulfillment per location.

        Several numbers are several parcels of one shipment, sent in one trackingInfo; a URL holding `{number}`
        gives one URL per number. A repeat (a job retried, a lost answer) finds the order fulfilled with these
        numbers and does nothing. An unknown order, or one with nothing left to fulfil, is a ChannelError that
        retrying will not cure; an order on hold is one that it may.
        """
        order_id = shopify_gid("Order", order_external_id)
        if order_id is None:
            raise ChannelError(f"{order_external_id!r} is not a Shopify order id", retryable=False)
        numbers = tracking_numbers(tracking.numbers)
        state = self._order_fulfillment(order_id)
        groups = state.open_by_location()
        if not groups:
            if state.waiting() or not state.holds(numbers):
                raise state.refusal(numbers)
            return  # a repeat of a write-back that went through: Shopify holds these numbers, nothing is left
        for group in groups:
            self._create_fulfillment(order_id, group, numbers, tracking)

    def _order_fulfillment(self, order_id: str) -> _OrderFulfillment:
        client = self.client
        variables: dict[str, Any] = {
            "id": order_id,
            "first": FULFILLMENT_ORDERS_PAGE_SIZE,
            "after": None,
            "lineItems": FULFILLMENT_ORDER_LINES_PAGE_SIZE,
            "fulfillments": ORDER_FULFILLMENTS_LIMIT,
        }
        expected = fulfillment_orders_cost(
            FULFILLMENT_ORDERS_PAGE_SIZE, FULFILLMENT_ORDER_LINES_PAGE_SIZE, ORDER_FULFILLMENTS_LIMIT
        )
        orders: list[FulfillmentOrderState] = []
        fulfillments: Any = None
        while True:
            data = client.execute(FULFILLMENT_ORDERS_QUERY, variables, expected_cost=expected)
            order = data.get("order")
            if order is None:
                raise ChannelError(f"Shopify has no order {order_id}", retryable=False)
            if not isinstance(order, Mapping) or not isinstance(order.get("fulfillmentOrders"), Mapping):
                raise InvalidPayload("Shopify answered the fulfillment orders query without `order.fulfillmentOrders`")
            if fulfillments is None:
                fulfillments = order.get("fulfillments")
            nodes, after = _connection_page(order["fulfillmentOrders"], "order.fulfillmentOrders")
            orders.extend(fulfillment_order_state(node) for node in nodes)
            if after is None:
                break
            variables["after"] = after
        count, numbers = recorded_tracking_numbers(fulfillments)
        return _OrderFulfillment(order_id, tuple(orders), count, numbers)

    def _create_fulfillment(
        self,
        order_id: str,
        group: Sequence[FulfillmentOrderState],
        numbers: Sequence[str],
        tracking: Tracking,
    ) -> None:
        ids = [order.id for order in group]
        content: dict[str, Any] = {
            "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": ident} for ident in ids],
            "notifyCustomer": tracking.notify_customer,
        }
        info = tracking_input(numbers=numbers, carrier=tracking.carrier, url=tracking.url)
        if info is not None:
            content["trackingInfo"] = info
        key = idempotency_key(
            FULFILLMENT_NAMESPACE,
            {
                "shop": self.config.slug,
                "order": order_id,
                "numbers": list(numbers),
                "fulfillmentOrders": [[order.id, order.updated_at] for order in group],
            },
        )
        data = self.client.execute(
            FULFILLMENT_CREATE_MUTATION,
            {"fulfillment": content, "idempotencyKey": key},
            expected_cost=FULFILLMENT_CREATE_COST,
        )
        payload = data.get("fulfillmentCreate")
        if not isinstance(payload, Mapping):
            raise ChannelError("Shopify answered fulfillmentCreate without its payload")
        errors = payload.get("userErrors") or []
        if not isinstance(errors, list):
            raise ChannelError("Shopify answered fulfillmentCreate with userErrors that are not a list")
        if errors:
            # Fulfilled in between (another worker, the merchant): done if that carries our numbers. Put on hold
            # in between: worth another try later. Anything else Shopify refuses will be refused again.
            again = self._order_fulfillment(order_id)
            if again.closed(ids) and again.holds(numbers):
                return
            raise ChannelError(
                f"Shopify refused to fulfil order {order_id}: {_user_error_text(errors)}",
                retryable=again.waiting(among=ids),
            )
        if not isinstance(payload.get("fulfillment"), Mapping):
            raise ChannelError(f"Shopify answered fulfillmentCreate for order {order_id} without a fulfillment")


def _user_error_text(errors: Sequence[Any]) -> str:
    parts = []
    for error in errors:
        if isinstance(error, Mapping):
            field = error.get("field")
            where = ".".join(str(part) for part in field) if isinstance(field, list) else ""
            message = str(error.get("message") or "refused")
            parts.append(f"{where}: {message}" if where else message)
        else:
            parts.append(str(error))
    return "; ".join(parts)


def _connection_page(connection: Mapping[str, Any], where: str) -> tuple[list[Any], str | None]:
    nodes = connection.get("nodes")
    if not isinstance(nodes, list):
        raise InvalidPayload(f"Shopify answered without `{where}.nodes`")
    page_info = connection.get("pageInfo")
    has_next = isinstance(page_info, Mapping) and bool(page_info.get("hasNextPage"))
    end_cursor = page_info.get("endCursor") if isinstance(page_info, Mapping) else None
    return nodes, str(end_cursor) if has_next and end_cursor else None
