"""Factories for tests: channels, staff users by role, and channel orders that go through the real intake."""

from __future__ import annotations

import importlib
import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone
from guardian.shortcuts import assign_perm

from channels_adapters.base import ChannelAddress, ChannelCustomer, ChannelLine, ChannelOrder, PaymentStatus
from inventory.models import Location, Product, Variant
from inventory.services import stock_receive
from oms.core.models import SalesChannel
from oms.orders.models import Order
from oms.orders.services import order_ingest

_ids = itertools.count(1001)
WEBHOOK_SECRET = "whsec-test-current"
PREVIOUS_SECRET = "whsec-test-previous"


class SalesChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SalesChannel
        django_get_or_create = ("slug",)

    kind = "shopify"
    name = factory.Sequence(lambda n: f"Shop {n}")
    slug = factory.Sequence(lambda n: f"shop-{n}")
    api_base_url = "http://127.0.0.1:9"
    options = factory.LazyAttribute(lambda o: {"shop_domain": f"{o.slug}.myshopify.com"})
    credentials = factory.LazyFunction(lambda: {"access_token": "shpat_test"})
    webhook_secret = WEBHOOK_SECRET


def ensure_roles() -> None:
    """Tests with transaction=True flush the tables, taking the role groups of migration 0002 with them."""
    if Group.objects.filter(name="Admin").exists():
        return
    from django.apps import apps

    roles = importlib.import_module("oms.orders.migrations.0002_roles")
    roles.create_roles(apps, None)
    # The inventory's permissions (stock, alerts) for the same groups.
    importlib.import_module("inventory.migrations.0002_roles").grant(apps, None)
    importlib.import_module("dispatch.migrations.0002_roles").grant(apps, None)


def sales_channel(**overrides: Any) -> SalesChannel:
    return cast(SalesChannel, SalesChannelFactory(**overrides))


def staff_user(
    role: str,
    *,
    username: str | None = None,
    channels: list[SalesChannel] | None = None,
    all_channels: bool = False,
    password: str = "pw-for-tests-only",
) -> User:
    """A user in one role group. Managers see only `channels` unless `all_channels`."""
    ensure_roles()
    user = User.objects.create_user(
        username=username or f"{role.lower()}-{next(_ids)}", password=password, is_staff=role == "Admin"
    )
    user.groups.add(Group.objects.get(name=role))
    if role == "Admin" or all_channels:
        assign_perm("core.access_channel", user)
    for channel in channels or []:
        assign_perm("core.access_channel", user, channel)
    return user


def channel_order(**overrides: Any) -> ChannelOrder:
    """A realistic ChannelOrder; every field can be overridden."""
    n = next(_ids)
    placed: datetime = overrides.pop("placed_at", timezone.now() - timedelta(hours=2))
    lines = (
        overrides.pop("lines")
        if "lines" in overrides
        else (
            ChannelLine(
                external_id=f"{n}01",
                sku="MUG-BLUE",
                title="Blue mug",
                quantity=2,
                unit_price=Decimal("12.50"),
                tax=Decimal("4.75"),
            ),
            ChannelLine(
                external_id=f"{n}02",
                sku="TEE-M",
                title="T-shirt",
                variant_title="M",
                quantity=1,
                unit_price=Decimal("20.00"),
                tax=Decimal("3.80"),
            ),
        )
    )
    values: dict[str, Any] = {
        "external_id": str(n * 1000),
        "number": f"#{n}",
        "currency": "USD",
        "placed_at": placed,
        "updated_at": placed,
        "payment_status": PaymentStatus.PAID,
        "subtotal": Decimal("45.00"),
        "total_tax": Decimal("8.55"),
        "shipping_total": Decimal("5.00"),
        "discount_total": Decimal("0"),
        "total": Decimal("58.55"),
        "lines": tuple(lines),
        "email": f"buyer{n}@example.com",
        "customer": ChannelCustomer(
            external_id=str(n * 7), email=f"buyer{n}@example.com", first_name="Ada", last_name=f"Buyer{n}"
        ),
        "shipping_address": ChannelAddress(
            name=f"Ada Buyer{n}",
            line1="Chestnut Street 92",
            city="Louisville",
            region="KY",
            postal_code="40202",
            country_code="US",
            phone="+1 502-555-0199",
        ),
        "shipping_method": "Standard",
    }
    values.update(overrides)
    return ChannelOrder(**values)


# The SKUs the order factories and the emulator's default payloads and fixtures sell.
SHOP_SKUS = (
    "MUG-BLUE",
    "TEE-M",
    "TEE-ORG-BLK-M",
    "MUG-STONE-350",
    "HOODIE-FLC-GRY-L",
    "KURTA-LIN-WHT-M",
    "SCARF-MER-NVY",
)


def location(code: str = "main", **fields: Any) -> Location:
    return Location.objects.get_or_create(code=code, defaults={"name": code.title(), **fields})[0]


def variant(sku: str, **fields: Any) -> Variant:
    """A catalog variant (its product named after it); created once per SKU."""
    found = Variant.objects.filter(sku=sku).first()
    if found is not None:
        return found
    product = Product.objects.create(title=fields.pop("product_title", sku.replace("-", " ").title()))
    return Variant.objects.create(product=product, sku=sku, **fields)


def stocked(sku: str, on_hand: int, *, at: Location | None = None, **fields: Any) -> Variant:
    """A variant with `on_hand` units received (through the real service, so ledger and outbox follow)."""
    v = variant(sku, **fields)
    if on_hand:
        stock_receive(variant=v, location=at or location(), quantity=on_hand, actor=None, note="test stock")
    return v


def shop_catalog(on_hand: int = 1000) -> None:
    """The catalog the default orders need, with plenty of stock: orders go to ready, not on hold."""
    for sku in SHOP_SKUS:
        if not Variant.objects.filter(sku=sku).exists():
            stocked(sku, on_hand)


def ingested_order(channel: SalesChannel, *, stock: bool = True, **overrides: Any) -> Order:
    """An order through the real intake. `stock`: its SKUs are in the catalog with plenty of units first."""
    co = channel_order(**overrides)
    if stock:
        shop_catalog()
        for line in co.lines:
            if line.sku and not Variant.objects.filter(sku=line.sku).exists():
                stocked(line.sku, 1000)
    return order_ingest(channel=channel, co=co, source="test").order
