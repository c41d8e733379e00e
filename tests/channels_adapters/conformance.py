"""The conformance suite every channel adapter passes: subclass ChannelAdapterConformance in test_<kind>.py.

It checks the contract of channels_adapters/base.py through real HTTP against the channel's emulator:
webhook verification (signature, rotation, stable event ids, bad input), order parsing of every fixture,
backfill paging and `since`, and the optional operations. It holds no channel knowledge of its own.

The test module must provide these pytest fixtures (module level, or on the subclass):

- `adapter`: the adapter under test, talking to `emulator`, whose webhook secrets are
  (`current_secret`, `previous_secret`): a rotation in progress.
- `stale_secret_adapter`: the same channel once rotation is over: secrets (`current_secret`,) only.
- `current_secret`, `previous_secret`: the two secrets, as strings.
- `emulator`: the running emulator (only needed by the channel's own fixtures; listed for clarity).
- `make_order_payload`: `(**overrides) -> dict`, a fresh, valid order payload as the channel's webhooks send.
- `signed_delivery`: `(topic, payload: Mapping | bytes, *, secret=None, event_id=None) -> (headers, body)`:
  one delivery exactly as the channel sends it, signed with `secret` (default: the current one). Two calls
  with the same `event_id` are two deliveries of one event; without `event_id` every call is a new event.
- `seed_orders`: `(count, *, start: datetime, step: timedelta) -> list[str]`: store `count` orders in the
  emulator, the i-th last modified at `start + i * step`; returns their external ids in that order.

Stock (needed only when the adapter implements push_stock and fetch_stock; the stock checks skip otherwise):

- `seed_stock`: `(quantities: Sequence[int], *, skus: Sequence[str] | None = None) -> list[StockQuantity]`:
  create one listing per quantity on the channel (at the location the adapter manages) and describe each as
  the OMS would know it: its external ids, its SKU (default: unique ones) and the quantity the channel holds.
- `channel_quantity`: `(external_ids) -> int`: what the emulator holds for that listing now.
- `drift_stock`: `(external_ids, quantity) -> None`: a change made on the channel's side.
- `unknown_listing`: external ids (a Mapping) of a listing the channel does not have.

Fulfillment (needed only when the adapter implements mark_fulfilled; the checks skip otherwise):

- `seed_fulfillable_order`: `() -> str`: store an order the channel can fulfil now (paid, nothing shipped yet);
  returns its external id.
- `order_fulfillment`: `(order_external_id) -> Sequence[Tracking]`: what the channel recorded for that order, one
  Tracking per fulfillment (shipment) it holds: its numbers, the carrier as the channel names it, its first URL.

And may override these class attributes: `delivery_topic` (an order topic the channel sends),
`signature_header` (the header carrying the signature), `fixture_dir` (defaults to
tests/fixtures/<kind>), `paging_order_count` (enough orders for three pages or more), `stock_paging_count`
(enough listings for three fetch_stock pages or more), `compare_and_swap` (True when push_stock honours
StockQuantity.change_from and reports `stale`), `unknown_order_external_id` (an order id of the channel's form
that it does not have). Stock webhook fixtures are tests/fixtures/<kind>/<topic>.json
for each of the adapter's `stock_topics`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest

from channels_adapters.base import (
    ChannelAdapter,
    ChannelError,
    ChannelLine,
    ChannelOrder,
    ChannelStock,
    InvalidPayload,
    InvalidSignature,
    NotSupported,
    OrderPage,
    PaymentStatus,
    StockPage,
    StockPushResult,
    StockQuantity,
    Tracking,
    WebhookEnvelope,
)
from channels_adapters.registry import ADAPTERS

FIXTURES_ROOT = Path(__file__).resolve().parent.parent / "fixtures"
MAX_PAGES = 1000  # a backfill that never ends is a failure, not a hang

Delivery = tuple[dict[str, str], bytes]


def _money_fields(obj: object) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj) if f.type in ("Decimal", Decimal)}  # type: ignore[arg-type]


def assert_well_formed(order: ChannelOrder, *, source: str) -> None:
    """What every ChannelOrder must be, whatever the channel: the OMS relies on each of these."""
    assert isinstance(order, ChannelOrder), source
    assert isinstance(order.external_id, str), source
    assert order.external_id.strip(), f"{source}: empty external_id"
    assert isinstance(order.number, str), source
    assert order.number.strip(), f"{source}: empty number"
    assert isinstance(order.currency, str), source
    assert len(order.currency) == 3, f"{source}: currency {order.currency!r}"
    assert order.currency.isupper(), f"{source}: currency {order.currency!r}"
    for name in ("placed_at", "updated_at", "cancelled_at"):
        moment = getattr(order, name)
        if moment is None and name == "cancelled_at":
            continue
        assert isinstance(moment, datetime), f"{source}: {name} is not a datetime"
        assert moment.utcoffset() is not None, f"{source}: {name} is naive"
    assert order.ship_by is None or isinstance(order.ship_by, date), source
    assert isinstance(order.payment_status, PaymentStatus), f"{source}: payment_status {order.payment_status!r}"
    for name, value in _money_fields(order).items():
        assert type(value) is Decimal, f"{source}: {name} is {type(value).__name__}, not Decimal"
        assert value.is_finite(), f"{source}: {name} = {value}"
    assert isinstance(order.lines, tuple), source
    assert order.lines, f"{source}: no lines"
    for index, line in enumerate(order.lines):
        where = f"{source} line {index}"
        assert isinstance(line, ChannelLine), where
        assert isinstance(line.external_id, str), where
        assert line.external_id, f"{where}: empty external_id"
        assert isinstance(line.sku, str), f"{where}: sku must be a str ('' when none)"
        assert type(line.quantity) is int, f"{where}: quantity {line.quantity!r}"
        for name, value in _money_fields(line).items():
            assert type(value) is Decimal, f"{where}: {name} is {type(value).__name__}, not Decimal"
    assert isinstance(order.tags, tuple), source
    assert all(isinstance(tag, str) and tag for tag in order.tags), source


def _without_header(headers: Mapping[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in headers.items() if key.lower() != name.lower()}


def _all_pages(adapter: ChannelAdapter, *, since: datetime | None) -> list[OrderPage]:
    pages: list[OrderPage] = []
    cursor: str | None = None
    while True:
        page = adapter.fetch_orders(since=since, cursor=cursor)
        assert isinstance(page, OrderPage)
        pages.append(page)
        assert len(pages) <= MAX_PAGES, "fetch_orders never returned next_cursor=None"
        if page.next_cursor is None:
            return pages
        assert page.next_cursor != cursor, "fetch_orders returned the cursor it was given: it would loop"
        cursor = page.next_cursor


def _all_stock_pages(adapter: ChannelAdapter) -> list[StockPage]:
    pages: list[StockPage] = []
    cursor: str | None = None
    while True:
        page = adapter.fetch_stock(cursor=cursor)
        assert isinstance(page, StockPage)
        pages.append(page)
        assert len(pages) <= MAX_PAGES, "fetch_stock never returned next_cursor=None"
        if page.next_cursor is None:
            return pages
        assert page.next_cursor != cursor, "fetch_stock returned the cursor it was given: it would loop"
        cursor = page.next_cursor


def _is_listing(known: Mapping[str, str], found: Mapping[str, str]) -> bool:
    """A fetched listing is a seeded one when it carries every external id the OMS stored for it."""
    return all(found.get(key) == value for key, value in known.items())


def _implements(adapter: ChannelAdapter, *operations: str) -> None:
    for operation in operations:
        if getattr(type(adapter), operation) is getattr(ChannelAdapter, operation):
            pytest.skip(f"{adapter.kind} does not offer {operation}")


class ChannelAdapterConformance:
    """The shared contract tests; pytest runs them for each `Test<Channel>Conformance` subclass."""

    delivery_topic: ClassVar[str] = ""
    signature_header: ClassVar[str] = ""
    fixture_dir: ClassVar[Path | None] = None
    paging_order_count: ClassVar[int] = 25
    stock_paging_count: ClassVar[int] = 60
    compare_and_swap: ClassVar[bool] = False
    unknown_order_external_id: ClassVar[str] = "999999999"

    # --------------------------------------------------------------------------------------- helpers

    def topic(self, adapter: ChannelAdapter) -> str:
        return self.delivery_topic or sorted(adapter.order_topics)[0]

    def fixtures_for(self, adapter: ChannelAdapter) -> dict[str, Any]:
        """Every order fixture of the channel (those of deferred topics are not orders), by file name."""
        directory = self.fixture_dir or FIXTURES_ROOT / adapter.kind
        not_orders = tuple(topic.replace("/", "_") for topic in adapter.deferred_topics | adapter.stock_topics)
        found = {
            path.name: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(directory.glob("*.json"))
            if not path.stem.startswith(not_orders)
        }
        assert found, f"no order fixtures in {directory}"
        return found

    # ---------------------------------------------------------------------------------- declarations

    def test_adapter_declares_its_contract(self, adapter: ChannelAdapter) -> None:
        cls = type(adapter)
        assert cls.kind
        assert cls.label
        assert ADAPTERS.get(cls.kind) is cls, f"{cls.__name__} is not registered under {cls.kind!r}"
        assert cls.order_topics, "an adapter must name the webhook topics that carry orders"
        assert not cls.order_topics & cls.deferred_topics
        assert not cls.stock_topics & (cls.order_topics | cls.deferred_topics)
        assert cls.secret_options <= cls.options
        assert not inspect.isabstract(cls)

    # -------------------------------------------------------------------------------------- webhooks

    def test_genuine_delivery_verifies(
        self,
        adapter: ChannelAdapter,
        signed_delivery: Callable[..., Delivery],
        make_order_payload: Callable[..., dict[str, Any]],
    ) -> None:
        payload = make_order_payload()
        headers, body = signed_delivery(self.topic(adapter), payload)

        envelope = adapter.verify_webhook(headers, body)

        assert isinstance(envelope, WebhookEnvelope)
        assert envelope.topic == self.topic(adapter)
        assert dict(envelope.payload) == json.loads(body)
        assert isinstance(envelope.event_id, str)
        assert envelope.event_id
        assert envelope.triggered_at is None or envelope.triggered_at.tzinfo is not None

    def test_redelivery_keeps_the_event_id_and_new_events_get_new_ones(
        self,
        adapter: ChannelAdapter,
        signed_delivery: Callable[..., Delivery],
        make_order_payload: Callable[..., dict[str, Any]],
    ) -> None:
        payload = make_order_payload()
        first = adapter.verify_webhook(*signed_delivery(self.topic(adapter), payload, event_id="evt-1"))
        again = adapter.verify_webhook(*signed_delivery(self.topic(adapter), payload, event_id="evt-1"))
        other = adapter.verify_webhook(*signed_delivery(self.topic(adapter), make_order_payload()))

        assert first.event_id == again.event_id
        assert other.event_id != first.event_id

    def test_header_names_are_case_insensitive(
        self,
        adapter: ChannelAdapter,
        signed_delivery: Callable[..., Delivery],
        make_order_payload: Callable[..., dict[str, Any]],
    ) -> None:
        headers, body = signed_delivery(self.topic(adapter), make_order_payload())
        expected = adapter.verify_webhook(headers, body).event_id

        assert adapter.verify_webhook({k.lower(): v for k, v in headers.items()}, body).event_id == expected
        assert adapter.verify_webhook({k.upper(): v for k, v in headers.items()}, body).event_id == expected

    def test_tampered_body_is_refused(
        self,
        adapter: ChannelAdapter,
        signed_delivery: Callable[..., Delivery],
        make_order_payload: Callable[..., dict[str, Any]],
    ) -> None:
        payload = make_order_payload()
        headers, body = signed_delivery(self.topic(adapter), payload)
        tampered = json.loads(body)
        tampered["tampered"] = True

        with pytest.raises(InvalidSignature):
            adapter.verify_webhook(headers, json.dumps(tampered).encode())
        with pytest.raises(InvalidSignature):
            adapter.verify_webhook(headers, body + b" ")

    def test_wrong_secret_is_refused(
        self,
        adapter: ChannelAdapter,
        signed_delivery: Callable[..., Delivery],
        make_order_payload: Callable[..., dict[str, Any]],
    ) -> None:
        headers, body = signed_delivery(self.topic(adapter), make_order_payload(), secret="not-our-secret")

        with pytest.raises(InvalidSignature):
            adapter.verify_webhook(headers, body)

    def test_missing_signature_is_refused(
        self,
        adapter: ChannelAdapter,
        signed_delivery: Callable[..., Delivery],
        make_order_payload: Callable[..., dict[str, Any]],
    ) -> None:
        assert self.signature_header, "set signature_header on the conformance subclass"
        headers, body = signed_delivery(self.topic(adapter), make_order_payload())

        with pytest.raises(InvalidSignature):
            adapter.verify_webhook(_without_header(headers, self.signature_header), body)
        with pytest.raises(InvalidSignature):
            adapter.verify_webhook({**_without_header(headers, self.signature_header), self.signature_header: ""}, body)

    def test_previous_secret_verifies_during_rotation(
        self,
        adapter: ChannelAdapter,
        previous_secret: str,
        signed_delivery: Callable[..., Delivery],
        make_order_payload: Callable[..., dict[str, Any]],
    ) -> None:
        headers, body = signed_delivery(self.topic(adapter), make_order_payload(), secret=previous_secret)

        assert adapter.verify_webhook(headers, body).topic == self.topic(adapter)

    def test_previous_secret_is_refused_once_rotation_is_over(
        self,
        stale_secret_adapter: ChannelAdapter,
        previous_secret: str,
        current_secret: str,
        signed_delivery: Callable[..., Delivery],
        make_order_payload: Callable[..., dict[str, Any]],
    ) -> None:
        topic = self.topic(stale_secret_adapter)
        stale = signed_delivery(topic, make_order_payload(), secret=previous_secret)
        fresh = signed_delivery(topic, make_order_payload(), secret=current_secret)

        with pytest.raises(InvalidSignature):
            stale_secret_adapter.verify_webhook(*stale)
        assert stale_secret_adapter.verify_webhook(*fresh).topic == topic

    @pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe{}", b'"a string"', b"[1, 2]", b"null"])
    def test_signed_but_malformed_body_is_an_invalid_payload(
        self, adapter: ChannelAdapter, signed_delivery: Callable[..., Delivery], body: bytes
    ) -> None:
        headers, signed_body = signed_delivery(self.topic(adapter), body)

        with pytest.raises(InvalidPayload):
            adapter.verify_webhook(headers, signed_body)

    def test_signature_is_checked_before_the_body_is_read(
        self, adapter: ChannelAdapter, signed_delivery: Callable[..., Delivery]
    ) -> None:
        headers, body = signed_delivery(self.topic(adapter), b"{not json", secret="not-our-secret")

        with pytest.raises(InvalidSignature):
            adapter.verify_webhook(headers, body)

    # ----------------------------------------------------------------------------------------- parsing

    def test_every_fixture_parses_to_a_well_formed_order(self, adapter: ChannelAdapter) -> None:
        for name, payload in self.fixtures_for(adapter).items():
            assert_well_formed(adapter.parse_order(payload), source=name)

    def test_a_delivered_order_parses(
        self,
        adapter: ChannelAdapter,
        signed_delivery: Callable[..., Delivery],
        make_order_payload: Callable[..., dict[str, Any]],
    ) -> None:
        envelope = adapter.verify_webhook(*signed_delivery(self.topic(adapter), make_order_payload()))

        order = adapter.parse_order(envelope.payload)

        assert_well_formed(order, source="delivery")
        assert envelope.resource_id in ("", order.external_id)

    @pytest.mark.parametrize("payload", [{}, {"id": None}, {"unexpected": "shape"}])
    def test_parse_order_refuses_what_is_not_an_order(self, adapter: ChannelAdapter, payload: Any) -> None:
        with pytest.raises(InvalidPayload):
            adapter.parse_order(payload)

    # ---------------------------------------------------------------------------------------- backfill

    def test_fetch_orders_pages_through_every_order_exactly_once(
        self, adapter: ChannelAdapter, seed_orders: Callable[..., list[str]]
    ) -> None:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
        seeded = seed_orders(self.paging_order_count, start=start, step=timedelta(minutes=7))

        pages = _all_pages(adapter, since=None)

        seen = [order.external_id for page in pages for order in page.orders]
        assert len(pages) >= 3, f"{self.paging_order_count} orders came in {len(pages)} page(s): raise the count"
        assert sorted(seen) == sorted(seeded), "every seeded order once, no other, no repeat"
        stamps = [order.updated_at for page in pages for order in page.orders]
        assert stamps == sorted(stamps), "orders must come oldest change first"
        assert all(page.calls >= 1 for page in pages)
        for page in pages:
            for order in page.orders:
                assert_well_formed(order, source=f"fetched {order.external_id}")

    def test_fetch_orders_since_returns_only_later_changes(
        self, adapter: ChannelAdapter, seed_orders: Callable[..., list[str]]
    ) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        seed_orders(4, start=now - timedelta(days=10), step=timedelta(hours=1))
        recent = seed_orders(5, start=now - timedelta(days=1), step=timedelta(hours=1))

        pages = _all_pages(adapter, since=now - timedelta(days=2))

        assert sorted(o.external_id for page in pages for o in page.orders) == sorted(recent)

    def test_fetch_orders_with_nothing_to_fetch(self, adapter: ChannelAdapter) -> None:
        page = adapter.fetch_orders(since=datetime.now(UTC) + timedelta(days=1), cursor=None)

        assert page.orders == ()
        assert page.next_cursor is None

    # ------------------------------------------------------------------------------ optional operations

    OPTIONAL_CALLS: ClassVar[dict[str, tuple[tuple[Any, ...], dict[str, Any]]]] = {
        "push_stock": (([StockQuantity(external_ids={"id": "1"}, sku="CONFORMANCE-SKU", quantity=1)],), {}),
        "fetch_stock": ((), {"cursor": None}),
        "mark_fulfilled": (
            (),
            {"order_external_id": "1", "tracking": Tracking(numbers=("1Z999AA10123456784",), carrier="UPS")},
        ),
        "cancel": ((), {"order_external_id": "1", "reason": "customer"}),
        "refund": ((), {"order_external_id": "1", "amount": Decimal("1.00"), "reason": "customer"}),
        "fetch_products": ((), {"cursor": None}),
    }

    @pytest.mark.parametrize("operation", sorted(OPTIONAL_CALLS))
    def test_optional_operation_works_or_says_not_supported(self, adapter: ChannelAdapter, operation: str) -> None:
        method = getattr(adapter, operation, None)
        assert callable(method), f"{operation} is missing: the base class provides it"
        args, kwargs = self.OPTIONAL_CALLS[operation]
        inspect.signature(method).bind(*args, **kwargs)  # the override still takes the contract's arguments
        try:
            method(*args, **kwargs)
        except NotSupported:
            pass
        except ChannelError:
            pass  # implemented, and refused these made-up ids in the contract's own terms

    # ------------------------------------------------------------------------------------------ fulfillment

    @staticmethod
    def fulfillment_fixtures(request: pytest.FixtureRequest) -> tuple[SeedFulfillableOrder, OrderFulfillment]:
        try:
            seed: SeedFulfillableOrder = request.getfixturevalue("seed_fulfillable_order")
            read: OrderFulfillment = request.getfixturevalue("order_fulfillment")
        except pytest.FixtureLookupError:
            pytest.skip("the channel's tests provide no seed_fulfillable_order/order_fulfillment fixtures")
        return seed, read

    @staticmethod
    def mark(adapter: ChannelAdapter, order_external_id: str, tracking: Tracking) -> None:
        try:
            adapter.mark_fulfilled(order_external_id=order_external_id, tracking=tracking)
        except NotSupported:
            pytest.skip(f"{adapter.kind} does not take tracking")

    def test_mark_fulfilled_records_every_parcel_in_one_fulfillment(
        self, adapter: ChannelAdapter, request: pytest.FixtureRequest
    ) -> None:
        _implements(adapter, "mark_fulfilled")
        seed, read = self.fulfillment_fixtures(request)
        order = seed()
        parcels = ("1Z999AA10123456784", "1Z999AA10123456791")

        self.mark(adapter, order, Tracking(numbers=parcels, carrier="UPS"))

        (recorded,) = read(order)
        assert sorted(recorded.numbers) == sorted(parcels), "both parcels' numbers on the one shipment"
        assert recorded.carrier.casefold() == "ups"

    def test_marking_the_same_tracking_again_is_not_a_second_fulfillment(
        self, adapter: ChannelAdapter, request: pytest.FixtureRequest
    ) -> None:
        _implements(adapter, "mark_fulfilled")
        seed, read = self.fulfillment_fixtures(request)
        order = seed()
        tracking = Tracking(numbers=("9400111899223197428490",), carrier="USPS")

        self.mark(adapter, order, tracking)
        self.mark(adapter, order, tracking)  # the job retried after an answer it never saw

        (recorded,) = read(order)
        assert recorded.numbers == tracking.numbers

    def test_mark_fulfilled_of_an_unknown_order_is_a_final_channel_error(self, adapter: ChannelAdapter) -> None:
        _implements(adapter, "mark_fulfilled")
        tracking = Tracking(numbers=("1Z999AA10123456784",), carrier="UPS")

        with pytest.raises(ChannelError) as caught:
            self.mark(adapter, self.unknown_order_external_id, tracking)

        assert caught.value.retryable is False, "retrying cannot make the order exist"

    # ------------------------------------------------------------------------------------------------ stock

    def test_push_stock_sets_absolute_quantities_and_answers_in_order(
        self,
        adapter: ChannelAdapter,
        seed_stock: Callable[..., list[StockQuantity]],
        channel_quantity: Callable[[Mapping[str, str]], int],
    ) -> None:
        _implements(adapter, "push_stock")
        seeded = seed_stock([0, 4, 9])
        wanted = [
            replace(listing, quantity=target, change_from=listing.quantity)
            for listing, target in zip(seeded, [5, 0, 12], strict=True)
        ]

        results = adapter.push_stock(wanted, reference="conformance-push-1")

        assert [type(result) for result in results] == [StockPushResult] * 3
        assert [result.sku for result in results] == [listing.sku for listing in wanted]
        assert all(result.ok for result in results), results
        assert not any(result.stale for result in results)
        for listing, result in zip(seeded, results, strict=True):
            assert result.previous in (None, listing.quantity)
        assert [channel_quantity(listing.external_ids) for listing in wanted] == [5, 0, 12]

    def test_push_stock_of_nothing_is_nothing(self, adapter: ChannelAdapter) -> None:
        _implements(adapter, "push_stock")

        assert adapter.push_stock([]) == []

    def test_pushing_the_same_quantities_again_is_harmless(
        self,
        adapter: ChannelAdapter,
        seed_stock: Callable[..., list[StockQuantity]],
        channel_quantity: Callable[[Mapping[str, str]], int],
    ) -> None:
        _implements(adapter, "push_stock")
        (listing,) = seed_stock([2])
        push = [replace(listing, quantity=7, change_from=2)]

        first = adapter.push_stock(push, reference="conformance-retry")
        again = adapter.push_stock(push, reference="conformance-retry")  # a job retried after a lost answer

        assert first[0].ok
        assert again[0].ok
        assert channel_quantity(listing.external_ids) == 7

    def test_a_refused_listing_does_not_hold_back_the_others(
        self,
        adapter: ChannelAdapter,
        seed_stock: Callable[..., list[StockQuantity]],
        channel_quantity: Callable[[Mapping[str, str]], int],
        unknown_listing: Mapping[str, str],
    ) -> None:
        _implements(adapter, "push_stock")
        (known,) = seed_stock([1])
        ghost = StockQuantity(external_ids=unknown_listing, sku="CONFORMANCE-GHOST", quantity=3, change_from=None)

        refused, applied = adapter.push_stock([ghost, replace(known, quantity=6, change_from=1)])

        assert (refused.sku, refused.ok) == ("CONFORMANCE-GHOST", False)
        assert refused.error, "a refusal says why"
        assert applied.ok, applied
        assert channel_quantity(known.external_ids) == 6

    def test_a_stale_change_from_is_reported(
        self,
        adapter: ChannelAdapter,
        seed_stock: Callable[..., list[StockQuantity]],
        channel_quantity: Callable[[Mapping[str, str]], int],
        drift_stock: Callable[[Mapping[str, str], int], None],
    ) -> None:
        _implements(adapter, "push_stock")
        if not self.compare_and_swap:
            pytest.skip(f"{adapter.kind} has no compare-and-swap")
        (listing,) = seed_stock([5])
        drift_stock(listing.external_ids, 8)  # sold or edited on the channel since we last pushed

        (result,) = adapter.push_stock([replace(listing, quantity=3, change_from=5)])

        assert result.stale, "the channel held 8, not the 5 we compared with"
        if result.ok:
            assert result.previous == 8
            assert channel_quantity(listing.external_ids) == 3
        else:
            assert result.error
            assert channel_quantity(listing.external_ids) == 8

    def test_fetch_stock_pages_through_every_listing_exactly_once(
        self, adapter: ChannelAdapter, seed_stock: Callable[..., list[StockQuantity]]
    ) -> None:
        _implements(adapter, "fetch_stock")
        seeded = seed_stock([index % 17 for index in range(self.stock_paging_count)])

        pages = _all_stock_pages(adapter)

        found = [item for page in pages for item in page.items]
        assert len(pages) >= 3, f"{self.stock_paging_count} listings came in {len(pages)} page(s): raise the count"
        assert all(page.calls >= 1 for page in pages)
        assert all(isinstance(item, ChannelStock) and type(item.quantity) is int for item in found)
        assert all(isinstance(item.sku, str) for item in found)
        for listing in seeded:
            matches = [item for item in found if _is_listing(listing.external_ids, item.external_ids)]
            assert len(matches) == 1, f"{listing.sku}: listed {len(matches)} times"
            assert (matches[0].sku, matches[0].quantity) == (listing.sku, listing.quantity)

    def test_fetch_stock_lists_listings_without_a_sku(
        self, adapter: ChannelAdapter, seed_stock: Callable[..., list[StockQuantity]]
    ) -> None:
        _implements(adapter, "fetch_stock")
        (bare,) = seed_stock([3], skus=[""])

        found = [item for page in _all_stock_pages(adapter) for item in page.items]

        (item,) = [item for item in found if _is_listing(bare.external_ids, item.external_ids)]
        assert (item.sku, item.quantity) == ("", 3)

    def test_what_was_pushed_is_what_fetch_stock_reads(
        self, adapter: ChannelAdapter, seed_stock: Callable[..., list[StockQuantity]]
    ) -> None:
        _implements(adapter, "push_stock", "fetch_stock")
        seeded = seed_stock([1, 1])
        targets = dict(zip((listing.sku for listing in seeded), (0, 40), strict=True))

        results = adapter.push_stock([replace(s, quantity=targets[s.sku], change_from=1) for s in seeded])
        found = [item for page in _all_stock_pages(adapter) for item in page.items]

        assert all(result.ok for result in results)
        for listing in seeded:
            (item,) = [item for item in found if _is_listing(listing.external_ids, item.external_ids)]
            assert item.quantity == targets[listing.sku]

    def test_every_stock_topic_has_a_fixture_that_parses(self, adapter: ChannelAdapter) -> None:
        if not adapter.stock_topics:
            pytest.skip(f"{adapter.kind} sends no stock webhooks")
        directory = self.fixture_dir or FIXTURES_ROOT / adapter.kind
        for topic in sorted(adapter.stock_topics):
            path = directory / f"{topic.replace('/', '_')}.json"
            assert path.exists(), f"no fixture for stock topic {topic}: {path}"
            stock = adapter.parse_stock_update(json.loads(path.read_text(encoding="utf-8")))
            assert isinstance(stock, ChannelStock)
            assert type(stock.quantity) is int
            assert stock.external_ids
            assert all(isinstance(v, str) and v for v in stock.external_ids.values())
            assert stock.updated_at is None or stock.updated_at.utcoffset() is not None

    @pytest.mark.parametrize("payload", [{}, {"unexpected": "shape"}])
    def test_parse_stock_update_refuses_what_is_not_a_level(self, adapter: ChannelAdapter, payload: Any) -> None:
        if not adapter.stock_topics:
            pytest.skip(f"{adapter.kind} sends no stock webhooks")
        with pytest.raises(InvalidPayload):
            adapter.parse_stock_update(payload)


# The fixtures' types, for the channel's own test module.
SeedStock = Callable[..., list[StockQuantity]]
ChannelQuantity = Callable[[Mapping[str, str]], int]
DriftStock = Callable[[Mapping[str, str], int], None]
SeedFulfillableOrder = Callable[[], str]
OrderFulfillment = Callable[[str], Sequence[Tracking]]
__all__ = [
    "ChannelAdapterConformance",
    "ChannelQuantity",
    "DriftStock",
    "OrderFulfillment",
    "SeedFulfillableOrder",
    "SeedStock",
    "assert_well_formed",
]
