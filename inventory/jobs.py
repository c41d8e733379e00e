"""RQ entry points of inventory: take ids, load rows, call one service, decide on retries."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import connection
from rq import Retry

from channels_adapters.base import ChannelError
from inventory import services_fanout as fanout
from inventory import services_reconcile as reconcile
from oms.core.models import SalesChannel

logger = logging.getLogger(__name__)

MAX_PARALLEL_CHANNELS = 8


def stock_fanout() -> dict[str, int] | Retry:
    """Turn the outbox into pushes to every channel, the channels in parallel (each push waits on the network).

    A channel that fails is retried with backoff by RQ (three times), then left to the next change or the
    next reconciliation; its listings show the error on the stock screens meanwhile.
    """
    fanout.fanout_started()
    fanout.fanout_collect()
    channels = list(SalesChannel.objects.filter(pk__in=fanout.channels_with_pending_pushes(), active=True))
    if not channels:
        return {}
    failed: list[str] = []
    # Threads each open their own connection: only outside a transaction (a job, not inline in a request's
    # on_commit or a test) can they see what the caller wrote.
    threaded = len(channels) > 1 and not settings.OMS_JOBS_INLINE and not connection.in_atomic_block

    def push(channel: SalesChannel) -> tuple[str, int]:
        try:
            report = fanout.channel_push_stock(channel=channel)
            return channel.slug, report.pushed
        except ChannelError as exc:
            logger.warning("stock push to %s failed: %s", channel.slug, exc)
            failed.append(channel.slug)
            return channel.slug, 0
        finally:
            if threaded:
                connection.close()  # this thread's own connection

    if not threaded:
        results = dict(push(c) for c in channels)
    else:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CHANNELS, len(channels))) as pool:
            results = dict(pool.map(push, channels))
    if failed:
        return Retry(max=3, interval=[2, 10, 60])
    return results


def stock_drift_sweep() -> int:
    return fanout.stock_drift_sweep()


def channel_reconcile(channel_id: int, trigger: str = "schedule") -> int | None:
    """Reconcile one channel's stock with the master; a run already going (or an inactive channel) skips."""
    channel = SalesChannel.objects.filter(pk=channel_id, active=True).first()
    if channel is None:
        return None
    try:
        run = reconcile.channel_reconcile(channel=channel, trigger=trigger)
    except reconcile.ReconcileAlreadyRunning:
        logger.info("reconcile of %s already running; skipped", channel.slug)
        return None
    return run.pk


def reconciles_due() -> list[int]:
    return reconcile.reconciles_due()
