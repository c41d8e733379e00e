"""Buying labels when things go wrong, through dispatch.services.shipment_buy and real HTTP to the carriers'
emulators: a carrier that fails after doing the work, one that cannot be reached, a worker killed mid-call, a
double click, and the sweeper that re-enqueues what lost its job.

What must hold whatever happens: never two labels for one shipment, and never a silent loss. USPS takes the
purchase key itself (a retry with the same key answers the first label); GLS can be asked what an earlier
attempt bought; for FedEx an unknown outcome goes to a person (UNKNOWN and a critical alert), never to a second
purchase. Jobs run inline in tests (OMS_JOBS_INLINE); the buy job enqueued when a box is packed runs only once
the packing transaction commits, which a test's transaction never does: each test runs shipment_buy itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rq import Retry

from carriers.base import CarrierUnavailable
from channels_adapters.base import ChannelAddress
from dispatch import jobs
from dispatch.models import CarrierAccount, Document, PackSession, Shipment, ShipmentEvent, ShipmentStatus
from dispatch.services import (
    IN_FLIGHT,
    DispatchError,
    carrier_adapter,
    dispatch_sweep,
    pack_complete,
    pack_expected,
    pack_next,
    pack_scan,
    shipment_buy,
    shipment_rebook,
    shipment_request,
    shipment_resolve_unknown,
)
from oms.core.models import Alert, AuditEntry, SalesChannel
from oms.orders.models import Order, OrderStatus
from tests.carriers.conformance import closed_port
from tests.dispatch.test_tracking import usps_account
from tests.emulators._carrier_server import CarrierEmulator
from tests.emulators.fedex import FedExEmulator
from tests.emulators.gls import GlsEmulator
from tests.emulators.usps import USPSEmulator
from tests.factories import ingested_order, staff_user

pytestmark = pytest.mark.django_db

USPS_LABEL = "/labels/v3/label"
FEDEX_SHIP = "/ship/v1/shipments"
GLS_PRINT = "/PrintLabels"
CZ_ADDRESS = ChannelAddress(
    name="Jana Nováková",
    line1="Masarykova 27",
    city="Ostrava",
    postal_code="70200",
    country_code="CZ",
    phone="+420777123456",
)


# ---------------------------------------------------------------------------------------------- emulators


@pytest.fixture(autouse=True)
def media(tmp_path, settings) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


@pytest.fixture
def usps() -> Iterator[USPSEmulator]:
    with USPSEmulator() as running:
        assert isinstance(running, USPSEmulator)
        yield running


@pytest.fixture
def fedex() -> Iterator[FedExEmulator]:
    with FedExEmulator() as running:
        assert isinstance(running, FedExEmulator)
        yield running


@pytest.fixture
def gls() -> Iterator[GlsEmulator]:
    with GlsEmulator() as running:
        assert isinstance(running, GlsEmulator)
        yield running


def fedex_account(fedex: FedExEmulator) -> CarrierAccount:
    return CarrierAccount.objects.create(
        name="FedEx Memphis",
        kind="fedex",
        api_base_url=fedex.base_url,
        credentials={"client_id": fedex.client_id, "client_secret": fedex.client_secret},
        options={"account_number": fedex.account_number},
        default_service="FEDEX_GROUND",
        sender_name="Ada Lovelace",
        sender_company="Northwind Goods",
        sender_line1="3610 Hacks Cross Rd",
        sender_city="Memphis",
        sender_region="TN",
        sender_postal_code="38125",
        sender_country="US",
        sender_phone="+19015550100",
    )


def gls_account(gls: GlsEmulator) -> CarrierAccount:
    return CarrierAccount.objects.create(
        name="GLS Praha",
        kind="gls",
        api_base_url=gls.base_url,
        credentials={"username": gls.username, "password": gls.password},
        options={"client_number": str(gls.client_number)},
        default_service="standard",
        sender_name="Petr Sklad",
        sender_company="OMS s.r.o.",
        sender_line1="Skladová 12",
        sender_city="Praha",
        sender_postal_code="19000",
        sender_country="CZ",
        sender_phone="+420222333444",
    )


# ---------------------------------------------------------------------------------------------- packing


def packed_session(channel: SalesChannel, **order_fields: Any) -> tuple[PackSession, User]:
    """A ready order taken by a packer and scanned in full: the Packed button is open."""
    order = ingested_order(channel, **order_fields)
    packer = staff_user("Packer")
    session = pack_next(packer=packer)
    assert session is not None
    assert session.order_id == order.pk
    for item in pack_expected(order):
        for _ in range(item.quantity):
            assert pack_scan(session=session, barcode=item.sku, actor=packer).ok
    return session, packer


def draft(channel: SalesChannel, account: CarrierAccount, **order_fields: Any) -> Shipment:
    """A packed order's shipment, to book: its buy job waits for a commit that a test never makes."""
    session, packer = packed_session(channel, **order_fields)
    shipment = pack_complete(session=session, actor=packer, carrier_account=account)
    assert shipment.status == ShipmentStatus.DRAFT
    return shipment


def stalled(shipment: Shipment, *, ago: timedelta) -> Shipment:
    """The shipment as a worker left it when it was killed in the middle of the carrier call, `ago`."""
    Shipment.objects.filter(pk=shipment.pk).update(
        status=ShipmentStatus.BUYING, attempts=1, attempt_started_at=timezone.now() - ago
    )
    return Shipment.objects.get(pk=shipment.pk)


def fresh(shipment: Shipment) -> Shipment:
    return Shipment.objects.get(pk=shipment.pk)


def kinds(shipment: Shipment) -> list[str]:
    return list(ShipmentEvent.objects.filter(shipment=shipment).values_list("kind", flat=True))


def tracking_numbers(shipment: Shipment) -> list[str]:
    return list(shipment.parcels.order_by("position").values_list("tracking_number", flat=True))


def unknown_alert(shipment: Shipment) -> Alert | None:
    return Alert.objects.filter(dedupe_key=f"shipment-unknown:{shipment.pk}", resolved_at__isnull=True).first()


def assert_bought_once(shipment: Shipment, emulator: CarrierEmulator) -> None:
    shipment = fresh(shipment)
    assert shipment.status == ShipmentStatus.BOUGHT, shipment.errors
    assert emulator.shipments_booked == 1
    numbers = tracking_numbers(shipment)
    assert all(numbers)
    assert Document.objects.filter(shipment=shipment, kind=Document.Kind.LABEL).count() == len(numbers)
    assert Order.objects.get(pk=shipment.order_id).status == OrderStatus.SHIPPED
    assert unknown_alert(shipment) is None


# ----------------------------------------------------------------------- (a) USPS fails after buying the label


def test_usps_failing_after_booking_is_retried_with_the_same_key_and_books_once(channel, usps):
    shipment = draft(channel, usps_account(usps))
    # USPS books the label, then the answer is lost: a 503 for the call and for each of its 3 retries.
    usps.fail_next(503, count=4, after=True, path_contains=USPS_LABEL)

    with pytest.raises(CarrierUnavailable) as caught:
        shipment_buy(shipment_id=shipment.pk)

    assert caught.value.request_sent is True
    assert fresh(shipment).status == ShipmentStatus.BUYING  # not refused, not unknown: USPS takes the key
    assert usps.shipments_booked == 1
    assert unknown_alert(shipment) is None
    assert "carrier_unavailable" in kinds(shipment)

    # The job's next run asks RQ to retry again while USPS still fails...
    usps.fail_next(503, count=4, path_contains=USPS_LABEL)
    assert isinstance(jobs.shipment_buy(shipment.pk), Retry)
    assert fresh(shipment).status == ShipmentStatus.BUYING

    # ...and once USPS answers, the same key gets the label it made the first time.
    assert jobs.shipment_buy(shipment.pk) == ShipmentStatus.BOUGHT
    assert_bought_once(shipment, usps)
    [label] = usps.labels
    assert tracking_numbers(fresh(shipment)) == [label.tracking_number]
    keys = {r.headers["x-idempotency-key"] for r in usps.requests_to(USPS_LABEL)}
    assert keys == {f"{shipment.purchase_key}:0"}
    assert len(usps.requests_to(USPS_LABEL)) == 4 + 4 + 1
    assert fresh(shipment).attempts == 3


# -------------------------------------------------------------------- (b) FedEx fails after booking the shipment


def test_fedex_failing_after_booking_goes_to_a_person_and_is_never_sent_again(channel, fedex):
    shipment = draft(channel, fedex_account(fedex))
    fedex.fail_next(503, after=True, path_contains=FEDEX_SHIP)  # FedEx booked it; the answer is lost

    result = shipment_buy(shipment_id=shipment.pk)

    assert result.status == ShipmentStatus.UNKNOWN
    assert fedex.shipments_booked == 1
    alert = unknown_alert(shipment)
    assert alert is not None
    assert alert.severity == "critical"
    assert "FedEx Memphis" in alert.title
    assert "may have bought the label" in alert.message
    assert kinds(shipment)[-2:] == ["carrier_unavailable", "unknown"]
    assert Order.objects.get(pk=shipment.order_id).status == OrderStatus.PACKED

    # The job again, a retry, the sweeper much later: none of them calls FedEx again.
    assert shipment_buy(shipment_id=shipment.pk).status == ShipmentStatus.UNKNOWN
    assert jobs.shipment_buy(shipment.pk) == ShipmentStatus.UNKNOWN
    assert dispatch_sweep(now=timezone.now() + timedelta(hours=2)) == 0
    assert fedex.shipments_booked == 1
    assert len(fedex.requests_to(FEDEX_SHIP)) == 1
    assert fresh(shipment).attempts == 1


# ------------------------------------------------------------------- (c) refused before the request was sent


@pytest.mark.parametrize("kind", ["usps", "fedex"])
def test_a_refused_connection_goes_back_to_draft_and_a_retry_books_once(channel, usps, fedex, kind):
    emulator: USPSEmulator | FedExEmulator = usps if kind == "usps" else fedex
    account = usps_account(usps) if kind == "usps" else fedex_account(fedex)
    shipment = draft(channel, account)
    CarrierAccount.objects.filter(pk=account.pk).update(api_base_url=f"http://127.0.0.1:{closed_port()}")

    with pytest.raises(CarrierUnavailable) as caught:
        shipment_buy(shipment_id=shipment.pk)

    assert caught.value.request_sent is False
    assert fresh(shipment).status == ShipmentStatus.DRAFT  # nothing can have been bought: book it as new
    assert "carrier_unavailable" in kinds(shipment)
    assert unknown_alert(shipment) is None
    assert emulator.requests == []

    CarrierAccount.objects.filter(pk=account.pk).update(api_base_url=emulator.base_url)  # the network is back
    assert jobs.shipment_buy(shipment.pk) == ShipmentStatus.BOUGHT
    assert_bought_once(shipment, emulator)


# ---------------------------------------------------------------------- (d) a worker killed in mid-call


def test_gls_finds_the_label_a_killed_worker_bought(channel, gls):
    shipment = draft(channel, gls_account(gls), shipping_address=CZ_ADDRESS, currency="CZK")
    # The killed worker's call reached GLS, which printed the label; the answer died with the worker.
    earlier = carrier_adapter(shipment.carrier_account).buy_label(
        shipment_request(shipment), idempotency_key=shipment.purchase_key
    )
    shipment = stalled(shipment, ago=IN_FLIGHT + timedelta(minutes=1))

    assert shipment_buy(shipment_id=shipment.pk).status == ShipmentStatus.BOUGHT

    assert_bought_once(shipment, gls)
    assert tracking_numbers(fresh(shipment)) == list(earlier.tracking_numbers)
    assert len(gls.requests_to(GLS_PRINT)) == 1  # the killed worker's call only
    assert len(gls.requests_to("/GetParcelList")) == 1


def test_gls_buys_when_the_killed_worker_bought_nothing(channel, gls):
    shipment = draft(channel, gls_account(gls), shipping_address=CZ_ADDRESS, currency="CZK")
    shipment = stalled(shipment, ago=IN_FLIGHT + timedelta(minutes=1))

    assert shipment_buy(shipment_id=shipment.pk).status == ShipmentStatus.BOUGHT

    assert_bought_once(shipment, gls)
    assert len(gls.requests_to("/GetParcelList")) == 1
    assert len(gls.requests_to(GLS_PRINT)) == 1


def test_gls_asked_while_down_is_asked_again_by_the_retry(channel, gls):
    shipment = draft(channel, gls_account(gls), shipping_address=CZ_ADDRESS, currency="CZK")
    carrier_adapter(shipment.carrier_account).buy_label(
        shipment_request(shipment), idempotency_key=shipment.purchase_key
    )
    shipment = stalled(shipment, ago=IN_FLIGHT + timedelta(minutes=1))
    gls.fail_next(503, count=4, path_contains="/GetParcelList")  # the look-up and its 3 retries

    assert isinstance(jobs.shipment_buy(shipment.pk), Retry)
    assert fresh(shipment).status == ShipmentStatus.BUYING

    # The retry, seconds later: the look-up that failed was no purchase in flight, so GLS is asked again.
    assert jobs.shipment_buy(shipment.pk) == ShipmentStatus.BOUGHT
    assert_bought_once(shipment, gls)
    assert len(gls.requests_to(GLS_PRINT)) == 1


def test_gls_that_refuses_the_look_up_goes_to_a_person(channel, gls):
    account = gls_account(gls)
    shipment = draft(channel, account, shipping_address=CZ_ADDRESS, currency="CZK")
    shipment = stalled(shipment, ago=IN_FLIGHT + timedelta(minutes=1))
    CarrierAccount.objects.filter(pk=account.pk).update(
        credentials={"username": gls.username, "password": "changed-in-mygls"}
    )

    assert shipment_buy(shipment_id=shipment.pk).status == ShipmentStatus.UNKNOWN

    alert = unknown_alert(shipment)
    assert alert is not None
    assert "GLS refused the credentials" in alert.message
    assert gls.requests_to(GLS_PRINT) == []  # not bought blind either
    assert gls.shipments_booked == 0


def test_fedex_cannot_be_asked_so_a_killed_worker_goes_to_a_person(channel, fedex):
    shipment = draft(channel, fedex_account(fedex))
    shipment = stalled(shipment, ago=IN_FLIGHT + timedelta(minutes=1))

    assert shipment_buy(shipment_id=shipment.pk).status == ShipmentStatus.UNKNOWN

    alert = unknown_alert(shipment)
    assert alert is not None
    assert "cannot be asked whether it bought one" in alert.message
    assert fedex.requests == []  # neither asked nor bought again
    assert shipment_buy(shipment_id=shipment.pk).status == ShipmentStatus.UNKNOWN
    assert fedex.requests == []


def test_usps_answers_a_killed_workers_key_with_its_label(channel, usps):
    shipment = draft(channel, usps_account(usps))
    earlier = carrier_adapter(shipment.carrier_account).buy_label(
        shipment_request(shipment), idempotency_key=shipment.purchase_key
    )
    shipment = stalled(shipment, ago=IN_FLIGHT + timedelta(minutes=1))

    assert shipment_buy(shipment_id=shipment.pk).status == ShipmentStatus.BOUGHT

    assert_bought_once(shipment, usps)
    assert tracking_numbers(fresh(shipment)) == list(earlier.tracking_numbers)


@pytest.mark.parametrize("kind", ["fedex", "gls"])
def test_an_attempt_that_may_still_be_in_flight_is_left_alone(channel, fedex, gls, kind):
    if kind == "fedex":
        emulator: FedExEmulator | GlsEmulator = fedex
        shipment = draft(channel, fedex_account(fedex))
    else:
        emulator = gls
        shipment = draft(channel, gls_account(gls), shipping_address=CZ_ADDRESS, currency="CZK")
    shipment = stalled(shipment, ago=IN_FLIGHT - timedelta(seconds=30))

    result = shipment_buy(shipment_id=shipment.pk)

    assert result.status == ShipmentStatus.BUYING
    assert fresh(shipment).attempts == 1  # no new attempt recorded
    assert fresh(shipment).attempt_started_at == shipment.attempt_started_at
    assert emulator.requests == []
    assert unknown_alert(shipment) is None


# ---------------------------------------------------------------------------------------- (e) double clicks


def test_packed_twice_books_one_shipment(channel, fedex):
    account = fedex_account(fedex)
    session, packer = packed_session(channel)

    first = pack_complete(session=session, actor=packer, carrier_account=account)
    with pytest.raises(DispatchError, match="no longer being packed"):
        pack_complete(session=session, actor=packer, carrier_account=account)

    assert list(Shipment.objects.filter(order_id=session.order_id)) == [first]
    assert fedex.requests == []


def test_the_buy_run_twice_in_a_row_books_once(channel, fedex):
    shipment = draft(channel, fedex_account(fedex))

    assert shipment_buy(shipment_id=shipment.pk).status == ShipmentStatus.BOUGHT
    numbers = tracking_numbers(fresh(shipment))
    assert shipment_buy(shipment_id=shipment.pk).status == ShipmentStatus.BOUGHT

    assert_bought_once(shipment, fedex)
    assert len(fedex.requests_to(FEDEX_SHIP)) == 1
    assert tracking_numbers(fresh(shipment)) == numbers
    assert kinds(shipment).count("bought") == 1
    assert fresh(shipment).attempts == 1


# ------------------------------------------------------------------------------------------------ (f) sweep


def test_the_sweep_books_a_shipment_whose_job_was_lost(channel, fedex):
    shipment = draft(channel, fedex_account(fedex))  # its job was never enqueued (Redis was down, say)

    assert dispatch_sweep(now=timezone.now()) == 0  # too young: its own job may still come
    assert fedex.requests == []

    assert dispatch_sweep(now=timezone.now() + timedelta(minutes=3)) == 1  # the job runs inline

    assert_bought_once(shipment, fedex)
    assert dispatch_sweep(now=timezone.now() + timedelta(minutes=10)) == 0
    assert len(fedex.requests_to(FEDEX_SHIP)) == 1


# ------------------------------------------------------------------- a person settles an unknown purchase


def test_a_manager_settles_an_unknown_purchase_and_the_order_is_booked_again(channel, fedex):
    account = fedex_account(fedex)
    shipment = draft(channel, account)
    fedex.fail_next(503, after=True, path_contains=FEDEX_SHIP)
    assert shipment_buy(shipment_id=shipment.pk).status == ShipmentStatus.UNKNOWN
    with pytest.raises(DispatchError, match="only someone who may void"):
        shipment_resolve_unknown(shipment=shipment, actor=staff_user("Packer"), reason="checked")
    with pytest.raises(DispatchError, match="only a refused or voided"):
        shipment_rebook(shipment=shipment, actor=None)
    manager = staff_user("Manager", all_channels=True)
    with pytest.raises(DispatchError, match="say what"):
        shipment_resolve_unknown(shipment=shipment, actor=manager, reason=" ")

    settled = shipment_resolve_unknown(shipment=shipment, actor=manager, reason="voided 7712 in FedEx Ship Manager")

    assert settled.status == ShipmentStatus.FAILED
    assert settled.live_key is None
    assert unknown_alert(shipment) is None  # resolved
    assert AuditEntry.objects.filter(verb="shipment.settle_unknown", object_id=str(shipment.pk)).exists()
    again = shipment_rebook(shipment=settled, actor=manager)
    assert shipment_buy(shipment_id=again.pk).status == ShipmentStatus.BOUGHT
    assert fedex.shipments_booked == 2
    with pytest.raises(DispatchError, match="not unknown"):
        shipment_resolve_unknown(shipment=settled, actor=manager, reason="twice")


def test_the_settle_button_works_for_a_manager_and_not_for_a_packer(channel, fedex, client):
    shipment = draft(channel, fedex_account(fedex))
    fedex.fail_next(503, after=True, path_contains=FEDEX_SHIP)
    assert shipment_buy(shipment_id=shipment.pk).status == ShipmentStatus.UNKNOWN
    url = f"/dispatch/shipments/{shipment.pk}/settle/"

    client.force_login(staff_user("Packer"))
    assert client.post(url, {"reason": "checked"}).status_code == 403
    client.force_login(staff_user("Manager", all_channels=True))
    page = client.get(f"/dispatch/shipments/{shipment.pk}/")
    assert "Settle the unknown purchase" in page.content.decode()
    empty = client.post(url, {"reason": ""}, follow=True)
    assert "Not settled" in empty.content.decode()
    assert fresh(shipment).status == ShipmentStatus.UNKNOWN
    done = client.post(url, {"reason": "nothing in FedEx Ship Manager"}, follow=True)
    assert done.status_code == 200
    assert "Settled: no label is live" in done.content.decode()
    assert fresh(shipment).status == ShipmentStatus.FAILED
