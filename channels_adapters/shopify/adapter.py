"""The Shopify channel: webhook verification, the REST webhook order shape, and order backfill over GraphQL.

Only this package knows Shopify's JSON; it returns the dataclasses of channels_adapters.base.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import requests

from channels_adapters.base import (
    AuthenticationFailed,
    ChannelAdapter,
    ChannelConfig,
    ChannelError,
    ChannelOrder,
    InvalidPayload,
    InvalidSignature,
    OrderPage,
    RejectedRecord,
    WebhookEnvelope,
)
from channels_adapters.shopify.client import QueryCostExceeded, ShopifyGraphQLClient
from channels_adapters.shopify.mappers import order_from_graphql, order_from_rest, parse_timestamp

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
    deferred_topics: ClassVar[frozenset[str]] = frozenset({"refunds/create"})
    options: ClassVar[frozenset[str]] = frozenset({"shop_domain", "access_token", "webhook_secret", "api_base_url"})
    secret_options: ClassVar[frozenset[str]] = frozenset({"access_token", "webhook_secret"})
    address_options: ClassVar[frozenset[str]] = frozenset({"shop_domain"})

    def __init__(
        self,
        config: ChannelConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config)
        self._session = session
        self._sleep = sleep
        self._clock = clock
        self._client: ShopifyGraphQLClient | None = None
        self.orders_page_size = ORDERS_PAGE_SIZE
        self.line_items_page_size = LINE_ITEMS_PAGE_SIZE

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
            )
        return self._client

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
