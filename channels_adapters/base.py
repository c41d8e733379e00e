"""The channel contract: what every marketplace adapter offers the OMS, and the dataclasses that cross it.

Nothing here knows Django or any vendor's JSON; vendor modules subclass ChannelAdapter.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar


class ChannelError(Exception):
    """A channel call failed; `retryable` says whether trying again later may help."""

    retryable: bool = True

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class InvalidSignature(ChannelError):
    """The webhook's signature does not match any of the channel's secrets."""

    retryable = False


class InvalidPayload(ChannelError):
    """The payload is not what the channel sends for this topic (missing or malformed fields)."""

    retryable = False


class AuthenticationFailed(ChannelError):
    """The channel refused our credentials."""

    retryable = False


class Throttled(ChannelError):
    """The channel's rate limit refused the call even after backing off."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotSupported(ChannelError):
    """An optional operation this channel does not offer."""

    retryable = False


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    COD = "cod"  # cash on delivery: ready to ship without payment


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """What an adapter needs to talk to one storefront; built by the OMS from its channel record."""

    slug: str
    api_base_url: str
    credentials: Mapping[str, str] = field(default_factory=dict)
    webhook_secrets: Sequence[str] = ()  # current secret first, then the previous one during rotation
    options: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class WebhookEnvelope:
    """A verified delivery: `event_id` is the channel's stable id for the event, never a per-delivery id."""

    event_id: str
    topic: str
    payload: Mapping[str, Any]
    resource_id: str = ""
    triggered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChannelAddress:
    name: str = ""
    company: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""  # province/state code where the channel gives one
    postal_code: str = ""
    country_code: str = ""  # ISO 3166-1 alpha-2, as the channel sent it
    phone: str = ""


@dataclass(frozen=True, slots=True)
class ChannelCustomer:
    external_id: str = ""
    email: str = ""
    phone: str = ""
    first_name: str = ""
    last_name: str = ""


@dataclass(frozen=True, slots=True)
class ChannelLine:
    external_id: str
    sku: str  # "" when the channel has none (custom items, digital goods)
    title: str
    quantity: int
    unit_price: Decimal
    tax: Decimal = Decimal("0")
    discount: Decimal = Decimal("0")
    variant_title: str = ""
    requires_shipping: bool = True
    external_variant_id: str = ""


@dataclass(frozen=True, slots=True)
class ChannelOrder:
    """One order as the channel describes it, normalised to the OMS's vocabulary but not yet validated."""

    external_id: str
    number: str
    currency: str
    placed_at: datetime
    updated_at: datetime  # the channel's own modification time: an older payload never overwrites a newer one
    payment_status: PaymentStatus
    subtotal: Decimal
    total_tax: Decimal
    shipping_total: Decimal
    discount_total: Decimal
    total: Decimal
    lines: tuple[ChannelLine, ...]
    email: str = ""
    phone: str = ""
    customer: ChannelCustomer | None = None
    shipping_address: ChannelAddress | None = None  # None for digital goods
    billing_address: ChannelAddress | None = None
    shipping_method: str = ""
    cancelled_at: datetime | None = None
    cancel_reason: str = ""
    note: str = ""
    tags: tuple[str, ...] = ()
    ship_by: date | None = None
    test: bool = False


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A record of a page that could not be mapped; the rest of the page still counts."""

    external_id: str
    error: str


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: tuple[ChannelOrder, ...]
    next_cursor: str | None  # None: this was the last page
    calls: int = 1  # API calls this page took, throttled retries included
    rejected: tuple[RejectedRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class StockQuantity:
    """An absolute quantity for one listing, as the OMS wants the channel to show it."""

    external_ids: Mapping[str, str]  # e.g. {"inventory_item_id": ..., "location_id": ...}
    sku: str
    quantity: int
    change_from: int | None = None  # the value we believe the channel holds (compare-and-swap)


@dataclass(frozen=True, slots=True)
class StockPushResult:
    sku: str
    ok: bool
    error: str = ""
    stale: bool = False  # the channel's value was not `change_from`: re-read before retrying


@dataclass(frozen=True, slots=True)
class ChannelStock:
    external_ids: Mapping[str, str]
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class StockPage:
    items: tuple[ChannelStock, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Tracking:
    numbers: tuple[str, ...]
    carrier: str
    url: str = ""
    notify_customer: bool = False


class ChannelAdapter(abc.ABC):
    """One marketplace. Required operations are abstract; optional ones raise NotSupported."""

    kind: ClassVar[str]
    label: ClassVar[str]
    # Topics this channel sends that carry an order, and those stored for later work.
    order_topics: ClassVar[frozenset[str]] = frozenset()
    deferred_topics: ClassVar[frozenset[str]] = frozenset()
    # Option names `add_channel --option` accepts, and which of them are secrets to encrypt.
    options: ClassVar[frozenset[str]] = frozenset()
    secret_options: ClassVar[frozenset[str]] = frozenset()
    # Options the API address is derived from (see api_base_url_for): changing one recomputes the address.
    address_options: ClassVar[frozenset[str]] = frozenset()
    default_api_base_url: ClassVar[str] = ""

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config

    @classmethod
    def api_base_url_for(cls, options: Mapping[str, str]) -> str:
        """The API root for a new channel given its options (a sandbox or emulator may override it)."""
        return options.get("api_base_url") or cls.default_api_base_url

    @abc.abstractmethod
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEnvelope:
        """Check the signature over the raw body in constant time and parse it; raise InvalidSignature."""

    @abc.abstractmethod
    def parse_order(self, payload: Mapping[str, Any]) -> ChannelOrder:
        """Turn an order payload (as delivered by webhook) into a ChannelOrder; raise InvalidPayload."""

    @abc.abstractmethod
    def fetch_orders(self, *, since: datetime | None, cursor: str | None) -> OrderPage:
        """One page of orders updated at or after `since`, oldest change first."""

    def push_stock(self, levels: Sequence[StockQuantity]) -> list[StockPushResult]:
        raise NotSupported(f"{self.kind} cannot push stock yet")

    def fetch_stock(self, *, cursor: str | None) -> StockPage:
        raise NotSupported(f"{self.kind} cannot list stock yet")

    def mark_fulfilled(self, *, order_external_id: str, tracking: Tracking) -> None:
        raise NotSupported(f"{self.kind} cannot take tracking yet")

    def cancel(self, *, order_external_id: str, reason: str) -> None:
        raise NotSupported(f"{self.kind} cannot cancel orders")

    def refund(self, *, order_external_id: str, amount: Decimal, reason: str) -> None:
        raise NotSupported(f"{self.kind} cannot refund orders")

    def fetch_products(self, *, cursor: str | None) -> StockPage:
        raise NotSupported(f"{self.kind} cannot list products")
