"""RQ entry points of dispatch: take ids, load rows, call one service, decide on retries."""

from __future__ import annotations

import logging

from rq import Retry

from carriers.base import CarrierUnavailable
from dispatch import services, services_checks, services_print, services_tracking
from dispatch.models import Document, PackingStation, PackSession, PrintJob
from dispatch.printers import PrinterUnavailable

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


# A printer that is off comes back within minutes or not at all today: retry briefly, then the packer downloads.
PRINT_RETRY = Retry(max=3, interval=[5, 20, 60])


def print_job_send(print_job_id: int) -> str | Retry:
    try:
        job = services_print.print_job_send(print_job_id=print_job_id)
    except PrinterUnavailable as exc:
        logger.warning("print job %s: printer unavailable (%s); retrying", print_job_id, exc)
        return PRINT_RETRY
    return job.state


def dispatch_sweep() -> int:
    return services.dispatch_sweep()


def print_jobs_refresh() -> int:
    return services_print.print_jobs_refresh()


def packing_slip_print(session_id: int) -> int | None:
    session = PackSession.objects.select_related("order", "station", "packer").filter(pk=session_id).first()
    if session is None or session.station_id is None:
        return None
    station = PackingStation.objects.select_related("document_printer", "label_printer").get(pk=session.station_id)
    already = PrintJob.objects.filter(
        document__order=session.order,
        document__kind=Document.Kind.PACKING_SLIP,
        created_at__gte=session.started_at,
        reprint_of__isnull=True,
    ).first()
    if already is not None:  # RQ ran this job twice: one slip per order taken
        return already.pk
    job = services_print.packing_slip_print(order=session.order, station=station, actor=session.packer)
    return job.pk if job else None


# ---------------------------------------------------------------------------------------------------------
# After the label: channel write-back, customer e-mails, tracking, stuck orders (services_tracking, services_checks)

# Backoff for a channel or mail server that failed; the write-back is idempotent and each e-mail is claimed once.
AFTER_SHIP_RETRY = Retry(max=5, interval=[60, 300, 900, 1800, 3600])


def shipment_after_ship(shipment_id: int) -> str | Retry:
    outcome = services_tracking.shipment_after_ship(shipment_id=shipment_id)
    if outcome.retry:
        logger.warning(
            "shipment %s: after-ship incomplete (%s, %s); retrying", shipment_id, outcome.channel, outcome.email
        )
        return AFTER_SHIP_RETRY
    return f"{outcome.channel}/{outcome.email}"


def shipments_after_ship_sweep() -> int:
    return services_tracking.shipments_after_ship_sweep()


def tracking_poll() -> int:
    result = services_tracking.tracking_poll(limit=1000)
    if result.failed_accounts:
        logger.warning("tracking poll: no answer from %s", ", ".join(sorted(set(result.failed_accounts))))
    return result.updated


def stuck_orders_check() -> int:
    return services_checks.stuck_orders_check().stuck
