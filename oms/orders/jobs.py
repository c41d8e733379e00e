"""RQ entry points of the order domain: take ids, load rows, call one service, decide on retries."""

from __future__ import annotations

import logging

from django.db import OperationalError
from rq import Retry

from oms.core.models import SalesChannel
from oms.orders import services

logger = logging.getLogger(__name__)


def inbound_event_process(event_id: int) -> str | Retry:
    """Process one stored webhook delivery; transient failures retry with backoff, then the sweeper."""
    try:
        return services.inbound_event_process(event_id=event_id)
    except (OperationalError, ConnectionError, TimeoutError) as exc:  # deadlock, lost connection, ...
        logger.warning("inbound event %s: transient failure %s", event_id, exc)
        services.inbound_event_record_error(event_id=event_id, error=f"{type(exc).__name__}: {exc}")
        return Retry(max=3, interval=[5, 30, 120])
    except Exception as exc:
        logger.exception("inbound event %s failed", event_id)
        services.inbound_event_record_error(event_id=event_id, error=f"{type(exc).__name__}: {exc}")
        raise


def channel_sync_orders(channel_id: int, trigger: str = "schedule") -> int | None:
    channel = SalesChannel.objects.filter(pk=channel_id, active=True).first()
    if channel is None:
        return None
    try:
        run = services.channel_sync_orders(channel=channel, trigger=trigger)
    except services.SyncAlreadyRunning:
        logger.info("backfill of %s already running; skipped", channel.slug)
        return None
    return run.pk


def backfills_due() -> list[int]:
    return services.backfills_due()


def inbox_sweep() -> int:
    return services.inbox_sweep()
