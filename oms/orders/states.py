"""The order state table: which status may follow which. One function in services applies it."""

from __future__ import annotations

from oms.orders.models import OrderStatus as S
from oms.orders.models import PaymentStatus as P

TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_PAYMENT: frozenset({S.READY, S.ON_HOLD, S.CANCELLED}),
    S.READY: frozenset({S.PICKING, S.ON_HOLD, S.CANCELLED, S.PENDING_PAYMENT}),
    S.ON_HOLD: frozenset({S.PENDING_PAYMENT, S.READY, S.CANCELLED}),
    S.PICKING: frozenset({S.PACKED, S.READY, S.ON_HOLD, S.CANCELLED}),
    S.PACKED: frozenset({S.SHIPPED, S.PICKING, S.ON_HOLD, S.CANCELLED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.RETURNED, S.PACKED}),  # packed again: its label was voided
    S.DELIVERED: frozenset({S.RETURNED}),
    S.CANCELLED: frozenset(),
    S.RETURNED: frozenset(),
}

# Payment states in which an order may be packed: paid, authorised (captured on shipping), or cash on delivery.
SHIPPABLE_PAYMENT = frozenset({P.PAID, P.AUTHORIZED, P.PARTIALLY_REFUNDED, P.COD})
HOLDABLE = frozenset({S.PENDING_PAYMENT, S.READY, S.ON_HOLD, S.PICKING, S.PACKED})
OPEN_STATES = frozenset({S.PENDING_PAYMENT, S.READY, S.ON_HOLD, S.PICKING, S.PACKED})


class IllegalTransition(ValueError):
    """The state table does not allow this move."""


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def base_status(payment_status: str) -> str:
    """Where an order stands when nothing holds it: ready to pack, or waiting for payment."""
    return S.READY if payment_status in SHIPPABLE_PAYMENT else S.PENDING_PAYMENT
