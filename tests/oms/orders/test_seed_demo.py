"""`manage.py seed_demo`: realistic, deterministic demo data that a second run leaves exactly as it was."""

from __future__ import annotations

import io
import random

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from oms.core.models import AuditEntry, SalesChannel
from oms.core.selectors import channels_visible_to
from oms.orders.management.commands.seed_demo import CHANNELS, SEED, Command
from oms.orders.models import Customer, CustomerIdentity, Order, OrderEvent, OrderHold, OrderStatus

pytestmark = pytest.mark.django_db


def _run() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def _counts() -> dict[str, int]:
    return {
        "channels": SalesChannel.objects.count(),
        "orders": Order.objects.count(),
        "customers": Customer.objects.count(),
        "identities": CustomerIdentity.objects.count(),
        "holds": OrderHold.objects.count(),
        "events": OrderEvent.objects.count(),
        "audit": AuditEntry.objects.count(),
        "users": User.objects.count(),
    }


def test_seed_demo_twice_adds_nothing_and_keeps_passwords():
    first_output = _run()
    first = _counts()
    passwords = dict(User.objects.values_list("username", "password"))

    second_output = _run()

    assert _counts() == first
    assert dict(User.objects.values_list("username", "password")) == passwords
    assert "exists, password unchanged" not in first_output
    assert second_output.count("exists, password unchanged") == 5
    assert "0 order(s) added" in second_output


def test_seed_demo_builds_a_realistic_book():
    output = _run()

    assert SalesChannel.objects.filter(kind="shopify").count() == 3
    assert 250 <= Order.objects.count() <= 350
    statuses = set(Order.objects.values_list("status", flat=True))
    assert {
        OrderStatus.READY,
        OrderStatus.ON_HOLD,
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
        OrderStatus.CANCELLED,
        OrderStatus.PENDING_PAYMENT,
    } <= statuses
    assert len(set(Order.objects.values_list("currency", flat=True))) >= 4
    assert Order.objects.filter(payment_status="cod").exists()
    reasons = set(OrderHold.objects.values_list("reason", flat=True))
    assert {"unknown_sku", "address_invalid"} <= reasons
    # Repeat customers across channels, matched by e-mail.
    multi = [c for c in Customer.objects.all() if c.orders.values("channel").distinct().count() > 1]
    assert multi
    # Secrets are encrypted at rest and the channel is usable.
    eu = SalesChannel.objects.get(slug="atelier-eu")
    assert eu.webhook_secret
    assert eu.credentials["access_token"].startswith("shpat_demo_")
    # One password per new user, printed once; roles and channel access as documented.
    for username in ("admin", "manager", "manager-eu", "warehouse", "packer"):
        assert username in output
    admin = User.objects.get(username="admin")
    assert admin.is_superuser
    assert admin.groups.filter(name="Admin").exists()
    assert channels_visible_to(User.objects.get(username="manager")).count() == 3
    assert [c.slug for c in channels_visible_to(User.objects.get(username="manager-eu"))] == ["atelier-eu"]
    packer = User.objects.get(username="packer")
    assert packer.has_perm("orders.view_packing_queue")
    assert not packer.has_perm("orders.view_order")


def test_seed_demo_plan_is_deterministic():
    now = timezone.now()

    def plan() -> list[tuple[str, str, str, str]]:
        command = Command()
        rng = random.Random(SEED)
        people = command._people(rng)
        return [
            (spec.slug, co.external_id, co.number, str(co.total))
            for spec in CHANNELS
            for co in command._plan_orders(rng, spec, people, now)
        ]

    first, second = plan(), plan()

    assert first == second
    assert len({(slug, ext) for slug, ext, _, _ in first}) == len(first)  # fixed, unique external ids
