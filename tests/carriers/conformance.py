"""The conformance suite every carrier adapter passes: subclass CarrierAdapterConformance in test_<kind>.py.

It checks the contract of carriers/base.py through real HTTP against the carrier's emulator: buying labels
(formats, several parcels, idempotency), refusals with field errors in OMS terms, credentials, outages,
voiding, tracking and the optional operations. It holds no carrier knowledge of its own. Set the class
attribute `kind` to the adapter's kind: tests/carriers/test_registry.py checks that every registered kind has
a conformance subclass.

The test module must provide these pytest fixtures (module level, or on the subclass):

- `emulator`: the running emulator. Besides whatever the carrier's own tests use, it must expose
  `shipments_booked: int`, how many purchases the carrier has charged for so far (each label or shipment it
  created; a repeated idempotency key answered with an earlier purchase does not count; it never goes down,
  a void included).
- `adapter`: the adapter under test, talking to `emulator`. It must be rebuildable from its config alone,
  `type(adapter)(dataclasses.replace(adapter.config, label_format=...))`, as the registry builds adapters:
  the suite does so to buy labels in each of the adapter's `label_formats`.
- `shipment_request`: a ShipmentRequest the carrier accepts, with one parcel.
- `multi_parcel_request`: a ShipmentRequest the carrier accepts, with two parcels.
- `rejected_request`: a ShipmentRequest the carrier refuses with field errors (say, a postal code that does
  not exist and an overweight parcel).
- `bad_credentials_adapter`: an adapter talking to `emulator` with credentials the carrier refuses.
- `unreachable_adapter`: an adapter whose `api_base_url` is a closed 127.0.0.1 port (see `closed_port()`);
  build it so that its retries do not really wait (an injected sleep), or the suite gets slow.
- `slow_adapter`: an adapter whose timeout is shorter than the emulator's delay in answering, or None when
  the carrier's tests cannot arrange that (the check then skips). Keep the delay short: a second at most.
- `advance_tracking`: `(tracking_number, status: TrackingStatus) -> None`: make the emulator report the
  parcel's progress up to `status` (scans in between included), as the carrier's network would.

And may override `kind` (required, see above).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import socket
import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import ClassVar, Protocol

import pytest

from carriers.base import (
    Address,
    CarrierAdapter,
    CarrierAuthFailed,
    CarrierRejected,
    CarrierUnavailable,
    FieldError,
    Label,
    LabelDocument,
    LabelFormat,
    NotSupported,
    Parcel,
    PickupPoint,
    Rate,
    ShipmentRequest,
    TrackingEvent,
    TrackingResult,
    TrackingStatus,
)
from carriers.registry import ADAPTERS

__all__ = [
    "AdvanceTracking",
    "BookingEmulator",
    "CarrierAdapterConformance",
    "assert_label_well_formed",
    "closed_port",
    "is_oms_field",
    "new_key",
]

AdvanceTracking = Callable[[str, TrackingStatus], None]

# What the first bytes of a label document are, by format.
MAGIC: dict[LabelFormat, bytes] = {LabelFormat.PDF: b"%PDF", LabelFormat.ZPL: b"^XA"}


class BookingEmulator(Protocol):
    """What the suite needs of an emulator: the number of purchases the carrier charged for."""

    @property
    def shipments_booked(self) -> int: ...


def closed_port() -> int:
    """A 127.0.0.1 port that nothing listens on (bound, then released: a connection there is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_key() -> str:
    """A fresh purchase idempotency key, as the OMS makes one per attempt."""
    return f"conformance-{uuid.uuid4()}"


def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


_ADDRESS_FIELDS = "|".join(sorted(_field_names(Address)))
_PARCEL_FIELDS = "|".join(sorted(_field_names(Parcel)))
_SHIPMENT_FIELDS = "|".join(sorted(_field_names(ShipmentRequest) - {"ship_from", "ship_to", "parcels"}))
OMS_FIELD = re.compile(
    rf"^(?:(?:{_SHIPMENT_FIELDS})|(?:ship_from|ship_to)\.(?:{_ADDRESS_FIELDS})|parcels\[\d+\]\.(?:{_PARCEL_FIELDS}))$"
)


def is_oms_field(name: str) -> bool:
    """True for a path into ShipmentRequest: "ship_to.postal_code", "parcels[0].weight_grams", "service"."""
    return bool(OMS_FIELD.match(name))


def assert_label_well_formed(label: Label, shipment: ShipmentRequest, label_format: LabelFormat) -> None:
    """What every Label must be, whatever the carrier: the OMS stores and prints each of these."""
    assert isinstance(label, Label)
    assert isinstance(label.tracking_numbers, tuple)
    assert len(label.tracking_numbers) == len(shipment.parcels), "one tracking number per parcel"
    assert all(isinstance(number, str) and number.strip() for number in label.tracking_numbers)
    assert len(set(label.tracking_numbers)) == len(label.tracking_numbers), "tracking numbers repeat"
    assert isinstance(label.documents, tuple)
    assert label.documents, "a label without a document cannot be printed"
    for document in label.documents:
        assert isinstance(document, LabelDocument)
        assert document.format == label_format, f"asked for {label_format}, got {document.format}"
        assert isinstance(document.content, bytes)
        assert document.content.lstrip()[: len(MAGIC[label_format])] == MAGIC[label_format], (
            f"{label_format} document starts with {document.content[:16]!r}"
        )
        assert document.tracking_number in label.tracking_numbers
    if len(label.documents) > 1:
        # One document per parcel: each parcel's own, in the parcels' order.
        assert tuple(d.tracking_number for d in label.documents) == label.tracking_numbers
    assert label.cost is None or (type(label.cost) is Decimal and label.cost.is_finite() and label.cost >= 0)
    if label.cost is not None:
        assert re.fullmatch(r"[A-Z]{3}", label.currency), f"currency {label.currency!r}"
    assert isinstance(label.shipment_id, str)
    assert isinstance(label.service, str)


def _assert_tracking_well_formed(result: TrackingResult) -> None:
    assert isinstance(result, TrackingResult)
    assert isinstance(result.status, TrackingStatus)
    assert isinstance(result.events, tuple)
    for event in result.events:
        assert isinstance(event, TrackingEvent)
        assert isinstance(event.status, TrackingStatus)
        assert event.occurred_at.utcoffset() is not None, f"naive event time {event.occurred_at!r}"
        assert isinstance(event.description, str)
    moments = [event.occurred_at for event in result.events]
    assert moments == sorted(moments), "events must come oldest first"
    assert result.estimated_delivery is None or isinstance(result.estimated_delivery, date)


class CarrierAdapterConformance:
    """The shared contract tests; pytest runs them for each `Test<Carrier>Conformance` subclass."""

    kind: ClassVar[str] = ""

    # --------------------------------------------------------------------------------------- helpers

    @staticmethod
    def in_format(adapter: CarrierAdapter, label_format: LabelFormat) -> CarrierAdapter:
        if label_format not in adapter.label_formats:
            pytest.skip(f"{adapter.kind} offers no {label_format} labels")
        return type(adapter)(dataclasses.replace(adapter.config, label_format=label_format))

    # ---------------------------------------------------------------------------------- declarations

    def test_adapter_declares_its_contract(self, adapter: CarrierAdapter) -> None:
        cls = type(adapter)
        assert self.kind, "set `kind` on the conformance subclass"
        assert cls.kind == self.kind
        assert cls.label
        assert ADAPTERS.get(cls.kind) is cls, f"{cls.__name__} is not registered under {cls.kind!r}"
        assert not inspect.isabstract(cls)
        assert cls.label_formats, "an adapter must print some format"
        assert cls.label_formats <= set(LabelFormat)
        assert cls.services, "staff pick a service from `services`"
        assert all(isinstance(code, str) and code and name for code, name in cls.services.items())
        assert cls.default_api_base_url.startswith("https://")
        assert isinstance(cls.idempotent_purchase, bool)
        assert adapter.config.label_format in cls.label_formats

    def test_the_adapter_is_built_from_its_config_alone(self, adapter: CarrierAdapter) -> None:
        rebuilt = type(adapter)(adapter.config)

        assert rebuilt.config == adapter.config

    # ---------------------------------------------------------------------------------------- buying

    @pytest.mark.parametrize("label_format", list(LabelFormat))
    def test_buy_label_in_each_format(
        self,
        adapter: CarrierAdapter,
        emulator: BookingEmulator,
        shipment_request: ShipmentRequest,
        label_format: LabelFormat,
    ) -> None:
        account = self.in_format(adapter, label_format)
        booked = emulator.shipments_booked

        label = account.buy_label(shipment_request, idempotency_key=new_key())

        assert_label_well_formed(label, shipment_request, label_format)
        assert emulator.shipments_booked > booked, "the emulator booked nothing"

    def test_several_parcels_get_a_tracking_number_each(
        self, adapter: CarrierAdapter, multi_parcel_request: ShipmentRequest
    ) -> None:
        assert len(multi_parcel_request.parcels) == 2, "multi_parcel_request must have two parcels"

        label = adapter.buy_label(multi_parcel_request, idempotency_key=new_key())

        assert_label_well_formed(label, multi_parcel_request, adapter.config.label_format)
        assert len(set(label.tracking_numbers)) == 2

    def test_two_attempts_buy_two_labels(
        self, adapter: CarrierAdapter, emulator: BookingEmulator, shipment_request: ShipmentRequest
    ) -> None:
        booked = emulator.shipments_booked

        first = adapter.buy_label(shipment_request, idempotency_key=new_key())
        second = adapter.buy_label(shipment_request, idempotency_key=new_key())

        assert set(first.tracking_numbers).isdisjoint(second.tracking_numbers)
        assert emulator.shipments_booked - booked == 2

    def test_a_repeated_key_answers_the_first_purchase_exactly_when_the_adapter_says_so(
        self, adapter: CarrierAdapter, emulator: BookingEmulator, multi_parcel_request: ShipmentRequest
    ) -> None:
        key = new_key()
        first = adapter.buy_label(multi_parcel_request, idempotency_key=key)
        booked = emulator.shipments_booked

        again = adapter.buy_label(multi_parcel_request, idempotency_key=key)

        assert_label_well_formed(again, multi_parcel_request, adapter.config.label_format)
        if adapter.idempotent_purchase:
            assert again.tracking_numbers == first.tracking_numbers
            assert emulator.shipments_booked == booked, "a repeated key booked again"
        else:
            # The carrier books every call: this is why the OMS never repeats an attempt of such a carrier
            # whose outcome it does not know (dispatch.services.shipment_buy), and the flag must not say more.
            assert set(again.tracking_numbers).isdisjoint(first.tracking_numbers)
            assert emulator.shipments_booked > booked

    def test_find_label_finds_the_purchase_or_says_not_supported(
        self, adapter: CarrierAdapter, shipment_request: ShipmentRequest
    ) -> None:
        key = new_key()
        label = adapter.buy_label(shipment_request, idempotency_key=key)

        try:
            found = adapter.find_label(shipment_request, idempotency_key=key)
        except NotSupported:
            return  # the OMS then asks a person about an attempt whose outcome it does not know
        assert found is not None, "find_label lost a purchase that was made"
        assert found.tracking_numbers == label.tracking_numbers
        assert adapter.find_label(shipment_request, idempotency_key=new_key()) is None

    # ------------------------------------------------------------------------------------- refusals

    def test_a_refused_request_names_the_fields(
        self, adapter: CarrierAdapter, emulator: BookingEmulator, rejected_request: ShipmentRequest
    ) -> None:
        booked = emulator.shipments_booked

        with pytest.raises(CarrierRejected) as caught:
            adapter.buy_label(rejected_request, idempotency_key=new_key())

        error = caught.value
        assert error.retryable is False
        assert str(error), "a refusal says why"
        assert error.errors, "a refusal lists what to fix"
        for item in error.errors:
            assert isinstance(item, FieldError)
            assert item.message.strip(), item
            assert item.field == "" or is_oms_field(item.field), f"{item.field!r} is not an OMS field path"
        assert any(is_oms_field(item.field) for item in error.errors), "no error names an OMS field"
        assert emulator.shipments_booked == booked

    def test_bad_credentials_are_an_auth_failure(
        self, bad_credentials_adapter: CarrierAdapter, shipment_request: ShipmentRequest
    ) -> None:
        with pytest.raises(CarrierAuthFailed) as caught:
            bad_credentials_adapter.buy_label(shipment_request, idempotency_key=new_key())
        assert caught.value.retryable is False

        with pytest.raises(CarrierAuthFailed):
            bad_credentials_adapter.track(["9400100000000000000000"])

    def test_an_unreachable_carrier_is_unavailable(
        self, unreachable_adapter: CarrierAdapter, shipment_request: ShipmentRequest
    ) -> None:
        with pytest.raises(CarrierUnavailable) as caught:
            unreachable_adapter.buy_label(shipment_request, idempotency_key=new_key())
        assert caught.value.retryable is True
        # Refused before connecting: nothing can have been bought, and the OMS may book again at once.
        assert caught.value.request_sent is False

        with pytest.raises(CarrierUnavailable):
            unreachable_adapter.track(["9400100000000000000000"])

    def test_a_carrier_slower_than_the_timeout_is_unavailable(
        self, slow_adapter: CarrierAdapter | None, shipment_request: ShipmentRequest
    ) -> None:
        if slow_adapter is None:
            pytest.skip("the carrier's tests cannot slow its emulator down")

        with pytest.raises(CarrierUnavailable) as caught:
            slow_adapter.buy_label(shipment_request, idempotency_key=new_key())
        assert caught.value.retryable is True

    # ---------------------------------------------------------------------------------------- voiding

    def test_a_label_is_voided_once(self, adapter: CarrierAdapter, shipment_request: ShipmentRequest) -> None:
        label = adapter.buy_label(shipment_request, idempotency_key=new_key())

        adapter.void_label(label)

        try:
            adapter.void_label(label)
        except CarrierRejected:
            return
        (result,) = adapter.track(label.tracking_numbers[:1])
        assert result.status is TrackingStatus.CANCELLED, "a second void passed and tracking is not cancelled"

    # --------------------------------------------------------------------------------------- tracking

    def test_tracking_follows_the_parcel_to_delivery(
        self, adapter: CarrierAdapter, shipment_request: ShipmentRequest, advance_tracking: AdvanceTracking
    ) -> None:
        (number,) = adapter.buy_label(shipment_request, idempotency_key=new_key()).tracking_numbers

        advance_tracking(number, TrackingStatus.IN_TRANSIT)
        (moving,) = adapter.track([number])
        advance_tracking(number, TrackingStatus.DELIVERED)
        (delivered,) = adapter.track([number])

        for result in (moving, delivered):
            assert result.tracking_number == number
            _assert_tracking_well_formed(result)
        assert moving.status is TrackingStatus.IN_TRANSIT
        assert moving.events
        assert delivered.status is TrackingStatus.DELIVERED
        assert delivered.events[-1].status is TrackingStatus.DELIVERED
        assert len(delivered.events) > len(moving.events)

    def test_tracking_several_parcels_answers_each(
        self, adapter: CarrierAdapter, multi_parcel_request: ShipmentRequest, advance_tracking: AdvanceTracking
    ) -> None:
        first, second = adapter.buy_label(multi_parcel_request, idempotency_key=new_key()).tracking_numbers
        advance_tracking(second, TrackingStatus.OUT_FOR_DELIVERY)

        results = {result.tracking_number: result for result in adapter.track([first, second])}

        assert set(results) == {first, second}
        for result in results.values():
            _assert_tracking_well_formed(result)
        assert results[second].status is TrackingStatus.OUT_FOR_DELIVERY
        assert results[first].status in (TrackingStatus.PRE_TRANSIT, TrackingStatus.UNKNOWN)

    def test_tracking_leaves_out_numbers_the_carrier_does_not_know(
        self, adapter: CarrierAdapter, shipment_request: ShipmentRequest
    ) -> None:
        (number,) = adapter.buy_label(shipment_request, idempotency_key=new_key()).tracking_numbers

        results = adapter.track([number, "0000000000000000000000"])

        assert [result.tracking_number for result in results] == [number]

    def test_tracking_nothing_is_nothing(self, adapter: CarrierAdapter) -> None:
        assert adapter.track([]) == []

    # ------------------------------------------------------------------------------ optional operations

    def test_rates_are_decimal_or_not_supported(
        self, adapter: CarrierAdapter, shipment_request: ShipmentRequest
    ) -> None:
        try:
            rates = adapter.rates(shipment_request)
        except NotSupported:
            return
        assert isinstance(rates, list)
        assert rates, "a carrier that quotes should quote the shipment it can book"
        for rate in rates:
            assert isinstance(rate, Rate)
            assert type(rate.amount) is Decimal, f"{rate.service}: amount is {type(rate.amount).__name__}"
            assert rate.amount.is_finite()
            assert rate.amount >= 0
            assert re.fullmatch(r"[A-Z]{3}", rate.currency), f"currency {rate.currency!r}"
            assert isinstance(rate.service, str)
            assert rate.service
            assert rate.delivery_days is None or type(rate.delivery_days) is int

    def test_pickup_points_or_not_supported(self, adapter: CarrierAdapter, shipment_request: ShipmentRequest) -> None:
        to = shipment_request.ship_to
        try:
            points = adapter.pickup_points(country_code=to.country_code, postal_code=to.postal_code, limit=5)
        except NotSupported:
            return
        assert isinstance(points, list)
        assert len(points) <= 5
        for point in points:
            assert isinstance(point, PickupPoint)
            assert point.id
            assert isinstance(point.address, Address)

    OPTIONAL_OPERATIONS: ClassVar[tuple[str, ...]] = ("rates", "find_label", "pickup_points")

    @pytest.mark.parametrize("operation", OPTIONAL_OPERATIONS)
    def test_optional_operations_keep_the_contracts_signature(self, adapter: CarrierAdapter, operation: str) -> None:
        expected = inspect.signature(getattr(CarrierAdapter, operation)).parameters
        actual = inspect.signature(getattr(type(adapter), operation)).parameters

        assert [(p.name, p.kind) for p in actual.values()] == [(p.name, p.kind) for p in expected.values()]
