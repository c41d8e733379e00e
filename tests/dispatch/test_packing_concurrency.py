"""Ten packers pressing "next order" at the same moment on a real server database: no order handed out twice."""

from __future__ import annotations

from collections import Counter

import pytest

from dispatch.models import PackSession
from dispatch.services import pack_next, pack_release
from oms.orders.models import Order, OrderStatus
from tests.factories import ingested_order, sales_channel, shop_catalog, staff_user
from tests.inventory.test_concurrency import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.server]


def test_ten_packers_never_get_the_same_order(needs_server_db):
    shop_catalog()
    channel = sales_channel(slug="pack-race")
    orders = [ingested_order(channel) for _ in range(25)]
    packers = [staff_user("Packer", username=f"racer-{i}") for i in range(10)]
    claimed: dict[int, list[int]] = {i: [] for i in range(10)}

    def work(i: int) -> None:
        # Each packer claims, lets go, and claims again: three rounds in lock-step with the others.
        for _ in range(3):
            session = pack_next(packer=packers[i])
            assert session is not None
            claimed[i].append(session.order_id)
            if _ < 2:
                pack_release(session=session, actor=packers[i], reason="next round")

    errors = race(10, work)

    assert errors == []
    # At the end every packer holds one order, and no two hold the same one.
    holding = [ids[-1] for ids in claimed.values()]
    assert len(set(holding)) == 10
    open_sessions = PackSession.objects.filter(outcome=PackSession.Outcome.OPEN)
    assert open_sessions.count() == 10
    assert Counter(open_sessions.values_list("order_id", flat=True)).most_common(1)[0][1] == 1
    assert Order.objects.filter(status=OrderStatus.PICKING).count() == 10
    assert {o.pk for o in orders} >= set(holding)


def test_claims_at_once_hand_out_distinct_orders_until_the_queue_is_empty(needs_server_db):
    shop_catalog()
    channel = sales_channel(slug="pack-drain")
    for _ in range(6):
        ingested_order(channel)
    packers = [staff_user("Packer", username=f"drain-{i}") for i in range(10)]
    got: list[int | None] = [None] * 10

    def work(i: int) -> None:
        session = pack_next(packer=packers[i])
        got[i] = session.order_id if session else None

    assert race(10, work) == []
    handed = [g for g in got if g is not None]
    assert len(handed) == 6
    assert len(set(handed)) == 6
