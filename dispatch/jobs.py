"""RQ entry points of dispatch: take ids, load rows, call one service, decide on retries."""

from __future__ import annotations

import logging

from rq import Retry

from carriers.base import CarrierUnavailable
from dispatch import services

logger = logging.getLogger(__name__)

# Backoff for a carrier that did not answer; a purchase retried here is safe (see services.shipment_buy).
BUY_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])


def shipment_buy(shipment_id: int) -> str | Retry:
    try:
        shipment = services.shipment_buy(shipment_id=shipment_id)
    except CarrierUnavailable as exc:
        logger.warning("shipment %s: carrier unavailable (%s); retrying", shipment_id, exc)
        return BUY_RETRY
    return shipment.status


def pack_sessions_expire() -> int:
    return services.pack_sessions_expire()
