"""The carrier contract: what every carrier adapter offers the OMS, and the dataclasses that cross it.

Nothing here knows Django or any carrier's wire format; carrier modules subclass CarrierAdapter.

Buying a label must never buy two. The OMS gives every purchase attempt a unique `idempotency_key` and
records the attempt before the call. An adapter whose carrier takes an idempotency key (USPS
`X-Idempotency-Key`) sends it, so a retry of the same attempt answers the first label; an adapter that can
look a purchase up by the reference it sent implements `find_label`; for any other carrier the OMS never
repeats an attempt whose outcome it does not know (the worker died mid-call): it asks a person.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar


class CarrierError(Exception):
    """A carrier call failed; `retryable` says whether trying again later may help."""

    retryable: bool = True

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


@dataclass(frozen=True, slots=True)
class FieldError:
    """One thing the carrier refused, in words a packer can act on: `field` is ours ("to.postal_code")."""

    field: str
    message: str


class CarrierRejected(CarrierError):
    """The carrier refused the request as it stands (a 4xx with reasons); sending it again will not help."""

    retryable = False

    def __init__(self, message: str, *, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(message)
        self.errors = tuple(errors)


class CarrierAuthFailed(CarrierError):
    """The carrier refused our credentials."""

    retryable = False


class CarrierUnavailable(CarrierError):
    """A timeout, a connection refused, a 5xx or a throttle: try again later.

    `request_sent` is False only when the request surely never reached the carrier (the connection was
    refused, a 429 before any work); otherwise a purchase may have happened and its outcome is unknown.
    """

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, request_sent: bool = True) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.request_sent = request_sent


class NotSupported(CarrierError):
    """An optional operation this carrier does not offer."""

    retryable = False


class LabelFormat(enum.StrEnum):
    PDF = "pdf"
    ZPL = "zpl"


class TrackingStatus(enum.StrEnum):
    """The OMS's vocabulary for a parcel's progress; adapters map the carrier's event codes onto it."""

    PRE_TRANSIT = "pre_transit"  # label created, not yet handed over
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERED = "delivered"
    EXCEPTION = "exception"  # delayed, damaged, address problem, failed attempt
    RETURNED = "returned"  # on its way back to the sender, or back
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CarrierConfig:
    """What an adapter needs to talk to one carrier account; built by the OMS from its CarrierAccount row."""

    slug: str
    api_base_url: str
    credentials: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    label_format: LabelFormat = LabelFormat.PDF
    timeout: float = 15.0


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    line1: str
    city: str
    postal_code: str
    country_code: str  # ISO 3166-1 alpha-2
    company: str = ""
    line2: str = ""
    region: str = ""  # state/province code where the country has them
    phone: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class Parcel:
    weight_grams: int
    length_cm: Decimal | None = None
    width_cm: Decimal | None = None
    height_cm: Decimal | None = None
    reference: str = ""  # printed on the label where the carrier allows


@dataclass(frozen=True, slots=True)
class ShipmentRequest:
    """One shipment to book: one or more parcels from `ship_from` to `ship_to` with one service."""

    reference: str  # the order number: the carrier's customer reference
    ship_from: Address
    ship_to: Address
    parcels: tuple[Parcel, ...]
    service: str  # the carrier's own service code (USPS mailClass, FedEx serviceType, ...)
    ship_date: date | None = None
    contents: str = ""  # a description for the label and customs
    value: Decimal | None = None
    currency: str = ""
    cod_amount: Decimal | None = None  # cash on delivery to collect, in `currency`
    pickup_point_id: str = ""  # deliver to this pickup point instead of the address (Packeta, GLS, DPD)


@dataclass(frozen=True, slots=True)
class Rate:
    service: str
    amount: Decimal
    currency: str
    description: str = ""
    delivery_days: int | None = None


@dataclass(frozen=True, slots=True)
class LabelDocument:
    """The printable label of one parcel (or of all of them, when the carrier sends one document)."""

    tracking_number: str
    content: bytes
    format: LabelFormat


@dataclass(frozen=True, slots=True)
class Label:
    """A bought shipment: one tracking number per parcel, in the request's parcel order."""

    tracking_numbers: tuple[str, ...]
    documents: tuple[LabelDocument, ...]
    shipment_id: str = ""  # the carrier's id of the shipment, when it has one besides the tracking numbers
    cost: Decimal | None = None
    currency: str = ""
    service: str = ""
    raw: Mapping[str, object] = field(default_factory=dict)  # the carrier's metadata, kept for support cases


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    status: TrackingStatus
    occurred_at: datetime  # aware
    description: str
    code: str = ""  # the carrier's own event code
    location: str = ""


@dataclass(frozen=True, slots=True)
class TrackingResult:
    tracking_number: str
    status: TrackingStatus  # the latest
    events: tuple[TrackingEvent, ...]  # oldest first
    estimated_delivery: date | None = None


@dataclass(frozen=True, slots=True)
class PickupPoint:
    id: str
    name: str
    address: Address
    opening_hours: str = ""


class CarrierAdapter(abc.ABC):
    """One carrier. Required operations are abstract; optional ones raise NotSupported."""

    kind: ClassVar[str]
    label: ClassVar[str]
    # Credential names the account form asks for, and option names (service defaults, account numbers).
    credential_names: ClassVar[frozenset[str]] = frozenset()
    options: ClassVar[frozenset[str]] = frozenset()
    default_api_base_url: ClassVar[str] = ""
    label_formats: ClassVar[frozenset[LabelFormat]] = frozenset({LabelFormat.PDF})
    services: ClassVar[Mapping[str, str]] = {}  # service code -> what staff see
    # True when the carrier itself answers a repeated idempotency key with the first purchase.
    idempotent_purchase: ClassVar[bool] = False

    def __init__(self, config: CarrierConfig) -> None:
        self.config = config

    @abc.abstractmethod
    def buy_label(self, shipment: ShipmentRequest, *, idempotency_key: str) -> Label:
        """Book the shipment and return its label(s). Raise CarrierRejected with field errors for bad input."""

    @abc.abstractmethod
    def void_label(self, label: Label) -> None:
        """Cancel a bought label (refund the postage where the carrier does). Raise CarrierRejected if it cannot."""

    @abc.abstractmethod
    def track(self, tracking_numbers: Sequence[str]) -> list[TrackingResult]:
        """The events of each parcel, one result per number that the carrier knows."""

    def rates(self, shipment: ShipmentRequest) -> list[Rate]:
        raise NotSupported(f"{self.kind} gives no rate quotes")

    def find_label(self, shipment: ShipmentRequest, *, idempotency_key: str) -> Label | None:
        """The label an earlier attempt with this key bought, or None if it bought none; for recovery."""
        raise NotSupported(f"{self.kind} cannot look a purchase up")

    def pickup_points(self, *, country_code: str, postal_code: str = "", limit: int = 20) -> list[PickupPoint]:
        raise NotSupported(f"{self.kind} has no pickup points")
