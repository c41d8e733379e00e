"""The channel contract: what every marketplace adapter offers the OMS, and the dataclasses that cross it.

Nothing here knows Django or any vendor's JSON; vendor modules subclass ChannelAdapter.
"""

from __future__ import annotations

import abc
import enum
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol, runtime_checkable


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
    """What became of one StockQuantity; push_stock returns one per input, in the input's order."""

    sku: str
    ok: bool
    error: str = ""
    # The channel's value was not `change_from`. With ok=True the adapter re-read it and set the quantity
    # anyway (`previous` says what it found: drift to log); with ok=False re-read before retrying.
    stale: bool = False
    previous: int | None = None  # what the channel held just before our set, when the channel says


@dataclass(frozen=True, slots=True)
class ChannelStock:
    external_ids: Mapping[str, str]
    sku: str  # "" when the channel's listing has none: the OMS reports it rather than guess
    quantity: int
    updated_at: datetime | None = None  # the channel's own time of the level, when it gives one


@dataclass(frozen=True, slots=True)
class StockPage:
    items: tuple[ChannelStock, ...]
    next_cursor: str | None  # None: this was the last page
    calls: int = 1  # API calls this page took, throttled retries included


@dataclass(frozen=True, slots=True)
class ChannelProduct:
    """One sellable variant as the channel lists it (for import and reconciliation of the catalogue)."""

    external_ids: Mapping[str, str]
    sku: str  # "" when none
    title: str  # the product's title
    variant_title: str = ""  # "" for a product without options
    barcode: str = ""
    price: Decimal | None = None
    weight_grams: int | None = None
    quantity: int | None = None  # available at the channel's managed location; None when not known


@dataclass(frozen=True, slots=True)
class ProductPage:
    items: tuple[ChannelProduct, ...]
    next_cursor: str | None  # None: this was the last page
    calls: int = 1


@dataclass(frozen=True, slots=True)
class Tracking:
    numbers: tuple[str, ...]
    carrier: str
    url: str = ""
    notify_customer: bool = False


# --------------------------------------------------------------------------------------------------------
# rate limiting shared by every adapter (and, through the OMS's own implementation, by every worker)

PACE_MARGIN = 0.05  # seconds added to a computed wait, so that rounding never leaves a bucket a point short


@runtime_checkable
class RateLimiter(Protocol):
    """A channel's rate limit as a leaky bucket of points (a request-counting channel uses 1 per call).

    One limiter is shared by everything that calls one channel account: threads here, worker processes when
    the OMS passes its own (Redis) implementation. The channel's answers are the truth; the limiter's job is
    to keep callers from learning it through refusals.
    """

    def reserve(self, cost: float) -> float:
        """Take `cost` points now; return the seconds the caller must wait before sending (0: send now).

        A reservation is a commitment: the caller sends after the wait, without asking again.
        """

    def refund(self, points: float) -> None:
        """Give back points reserved for a call the channel charged less for (or did not run at all)."""

    def observe(self, *, available: float, maximum: float, restore_rate: float) -> None:
        """The channel reported its bucket: `available` points of `maximum`, restoring `restore_rate` a second."""

    def penalize(self, seconds: float) -> None:
        """The channel said back off (Retry-After, THROTTLED): nobody sharing the limiter sends for `seconds`."""


class LocalBucket:
    """A thread-safe in-process RateLimiter: a leaky bucket learnt from the channel's own reports.

    Until the first report (or unless `maximum` and `restore_rate` are given) it does not pace at all, only
    honours penalties, but counts what it let through; the first report is taken less all of that, since it
    cannot tell which of those calls the channel had seen. A later report never raises the level above what
    this bucket believes: the difference is reservations already made here that the channel has not seen yet.
    `clock` is injectable for tests.
    """

    def __init__(
        self,
        *,
        maximum: float | None = None,
        restore_rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        margin: float = PACE_MARGIN,
    ) -> None:
        self._clock = clock
        self._margin = margin
        self._lock = threading.Lock()
        self._maximum = maximum
        self._rate = restore_rate
        self._level: float | None = maximum  # None: not known yet
        self._unseen = 0.0  # points let through while the level was not known
        self._at = clock()
        self._not_before = -math.inf

    def _leak_back(self, now: float) -> None:
        if self._level is not None and self._maximum is not None and self._rate:
            self._level = min(self._maximum, self._level + max(now - self._at, 0.0) * self._rate)
        self._at = now

    def reserve(self, cost: float) -> float:
        with self._lock:
            now = self._clock()
            self._leak_back(now)
            penalty = max(self._not_before - now, 0.0)
            if self._level is None or self._maximum is None or not self._rate or self._rate <= 0 or cost <= 0:
                if self._level is None and cost > 0:
                    self._unseen += cost
                return penalty
            # A call dearer than the whole bucket still gets a turn once the bucket is full.
            self._level -= min(cost, self._maximum)
            wait = -self._level / self._rate + self._margin if self._level < 0 else 0.0
            return max(wait, penalty)

    def refund(self, points: float) -> None:
        if points <= 0:
            return
        with self._lock:
            self._leak_back(self._clock())
            if self._level is None:
                self._unseen = max(self._unseen - points, 0.0)
            elif self._maximum is not None:
                self._level = min(self._maximum, self._level + points)

    def observe(self, *, available: float, maximum: float, restore_rate: float) -> None:
        with self._lock:
            self._leak_back(self._clock())
            self._maximum = maximum
            self._rate = restore_rate
            if self._level is None:
                self._level, self._unseen = min(available, maximum) - self._unseen, 0.0
            else:
                self._level = min(self._level, available, maximum)

    def penalize(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)

    @property
    def available(self) -> float | None:
        """The points this bucket believes are free now (negative: reservations waiting); None if unknown."""
        with self._lock:
            self._leak_back(self._clock())
            return self._level


class ChannelAdapter(abc.ABC):
    """One marketplace. Required operations are abstract; optional ones raise NotSupported."""

    kind: ClassVar[str]
    label: ClassVar[str]
    # Topics this channel sends that carry an order, those that carry a stock level (parse_stock_update),
    # and those stored for later work.
    order_topics: ClassVar[frozenset[str]] = frozenset()
    stock_topics: ClassVar[frozenset[str]] = frozenset()
    deferred_topics: ClassVar[frozenset[str]] = frozenset()
    # Option names `add_channel --option` accepts, and which of them are secrets to encrypt.
    options: ClassVar[frozenset[str]] = frozenset()
    secret_options: ClassVar[frozenset[str]] = frozenset()
    # Options the API address is derived from (see api_base_url_for): changing one recomputes the address.
    address_options: ClassVar[frozenset[str]] = frozenset()
    default_api_base_url: ClassVar[str] = ""

    def __init__(self, config: ChannelConfig, *, limiter: RateLimiter | None = None) -> None:
        self.config = config
        # Pass one limiter to every adapter of the same channel account so that together they stay in its limit.
        self.limiter: RateLimiter = limiter if limiter is not None else LocalBucket()

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

    def push_stock(self, levels: Sequence[StockQuantity], *, reference: str = "") -> list[StockPushResult]:
        """Set absolute quantities; one result per level, in order. A listing the channel refuses is an ok=False
        result, not an exception (the others still go through); an outage or throttling raises ChannelError.

        `reference` names this push (the OMS's outbox batch, say): the same reference with the same quantities
        is a retry and is applied at most once; a new push needs a new reference.
        """
        raise NotSupported(f"{self.kind} cannot push stock yet")

    def fetch_stock(self, *, cursor: str | None) -> StockPage:
        """One page of every listing's quantity at the managed location (for reconciliation)."""
        raise NotSupported(f"{self.kind} cannot list stock yet")

    def parse_stock_update(self, payload: Mapping[str, Any]) -> ChannelStock:
        """Turn a stock webhook payload (a topic in `stock_topics`) into a ChannelStock; raise InvalidPayload."""
        raise NotSupported(f"{self.kind} sends no stock webhooks")

    def mark_fulfilled(self, *, order_external_id: str, tracking: Tracking) -> None:
        raise NotSupported(f"{self.kind} cannot take tracking yet")

    def cancel(self, *, order_external_id: str, reason: str) -> None:
        raise NotSupported(f"{self.kind} cannot cancel orders")

    def refund(self, *, order_external_id: str, amount: Decimal, reason: str) -> None:
        raise NotSupported(f"{self.kind} cannot refund orders")

    def fetch_products(self, *, cursor: str | None) -> ProductPage:
        """One page of the channel's sellable variants with SKU, barcode, price, weight and quantity."""
        raise NotSupported(f"{self.kind} cannot list products")
