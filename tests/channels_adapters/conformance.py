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

And may override these class attributes: `delivery_topic` (an order topic the channel sends),
`signature_header` (the header carrying the signature), `fixture_dir` (defaults to
tests/fixtures/<kind>), `paging_order_count` (enough orders for three pages or more).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import fields
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
    InvalidPayload,
    InvalidSignature,
    NotSupported,
    OrderPage,
    PaymentStatus,
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


class ChannelAdapterConformance:
    """The shared contract tests; pytest runs them for each `Test<Channel>Conformance` subclass."""

    delivery_topic: ClassVar[str] = ""
    signature_header: ClassVar[str] = ""
    fixture_dir: ClassVar[Path | None] = None
    paging_order_count: ClassVar[int] = 25

    # --------------------------------------------------------------------------------------- helpers

    def topic(self, adapter: ChannelAdapter) -> str:
        return self.delivery_topic or sorted(adapter.order_topics)[0]

    def fixtures_for(self, adapter: ChannelAdapter) -> dict[str, Any]:
        """Every order fixture of the channel (those of deferred topics are not orders), by file name."""
        directory = self.fixture_dir or FIXTURES_ROOT / adapter.kind
        deferred = tuple(topic.replace("/", "_") for topic in adapter.deferred_topics)
        found = {
            path.name: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(directory.glob("*.json"))
            if not path.stem.startswith(deferred)
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
