"""`manage.py seed_demo`: three demo storefronts, ~300 realistic orders over 60 days, and one staff user per role.

Idempotent: channels are configured by slug, orders have fixed external ids (existing ones are left alone), and
existing users keep their passwords. Everything goes through the real services, so holds, events and the audit
trail look exactly as they would in production.
"""

from __future__ import annotations

import dataclasses
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from channels_adapters.base import ChannelAddress, ChannelCustomer, ChannelLine, ChannelOrder, PaymentStatus
from inventory.channels import channel_configure
from inventory.models import Bin, ChannelListing, Location, MismatchKind, Product, StockMismatch, Variant
from inventory.selectors import listing_quantities
from inventory.services import bundle_set_components, stock_receive
from inventory.services_reconcile import mismatch_alert_key
from oms.core.models import SalesChannel
from oms.core.services import alert_raise
from oms.orders.models import Order, OrderStatus
from oms.orders.services import order_ingest, order_transition

SEED = 20250601
DAYS = 60
CENT = Decimal("0.01")


@dataclass(frozen=True)
class DemoChannel:
    slug: str
    name: str
    shop_domain: str
    number_prefix: str
    first_number: int
    id_base: int
    orders: int
    countries: tuple[tuple[str, int], ...]  # (country, weight)
    wholesale: bool = False


CHANNELS = (
    DemoChannel(
        "atelier-us",
        "Atelier Shopify",
        "atelier-us-demo.myshopify.com",
        "#",
        1001,
        5_100_000_000,
        150,
        (("US", 85), ("CA", 15)),
    ),
    DemoChannel(
        "atelier-eu",
        "Atelier EU",
        "atelier-eu-demo.myshopify.com",
        "EU-",
        2001,
        5_200_000_000,
        110,
        (
            ("DE", 30),
            ("FR", 20),
            ("NL", 10),
            ("IT", 10),
            ("ES", 8),
            ("AT", 5),
            ("GB", 10),
            ("SE", 4),
            ("PL", 3),
            ("US", 4),
        ),
    ),
    DemoChannel(
        "wholesale",
        "Wholesale",
        "atelier-wholesale-demo.myshopify.com",
        "W-",
        501,
        5_300_000_000,
        40,
        (("US", 50), ("DE", 20), ("GB", 15), ("FR", 15)),
        wholesale=True,
    ),
)

CURRENCY = {"US": "USD", "CA": "CAD", "GB": "GBP", "SE": "SEK", "PL": "PLN"}  # the rest of Europe: EUR
FX = {
    "USD": Decimal("1"),
    "CAD": Decimal("1.35"),
    "EUR": Decimal("0.92"),
    "GBP": Decimal("0.79"),
    "SEK": Decimal("10.6"),
    "PLN": Decimal("3.95"),
}
TAX = {
    "US": Decimal("0.0725"),
    "CA": Decimal("0.13"),
    "DE": Decimal("0.19"),
    "FR": Decimal("0.20"),
    "NL": Decimal("0.21"),
    "IT": Decimal("0.22"),
    "ES": Decimal("0.21"),
    "AT": Decimal("0.20"),
    "GB": Decimal("0.20"),
    "SE": Decimal("0.25"),
    "PL": Decimal("0.23"),
}
PLACES = {
    "US": [
        ("Louisville", "KY", "40202", "+1 502-555-0{n:03d}"),
        ("Portland", "OR", "97205", "+1 503-555-0{n:03d}"),
        ("Austin", "TX", "78701", "+1 512-555-0{n:03d}"),
        ("Brooklyn", "NY", "11201", "+1 718-555-0{n:03d}"),
        ("Denver", "CO", "80202", "+1 303-555-0{n:03d}"),
    ],
    "CA": [("Toronto", "ON", "M5V 2T6", "+1 416-555-0{n:03d}"), ("Vancouver", "BC", "V6B 1A1", "+1 604-555-0{n:03d}")],
    "DE": [("Berlin", "", "10115", "+49 30 901820{n:02d}"), ("München", "", "80331", "+49 89 23390{n:03d}")],
    "FR": [("Paris", "", "75003", "+33 1 42 68 5{n:03d}"), ("Lyon", "", "69002", "+33 4 72 10 3{n:03d}")],
    "NL": [("Amsterdam", "", "1012 AB", "+31 20 555 0{n:03d}")],
    "IT": [("Milano", "", "20121", "+39 02 8845 0{n:03d}")],
    "ES": [("Madrid", "", "28013", "+34 91 555 0{n:03d}")],
    "AT": [("Wien", "", "1010", "+43 1 5350{n:03d}")],
    "GB": [("London", "", "SW1A 1AA", "+44 20 7946 0{n:03d}"), ("Manchester", "", "M1 1AE", "+44 161 496 0{n:03d}")],
    "SE": [("Stockholm", "", "111 22", "+46 8 555 0{n:03d}")],
    "PL": [("Kraków", "", "31-042", "+48 12 555 0{n:03d}")],
}
STREETS = [
    "Chestnut Street",
    "Harbour Road",
    "Linden Allee",
    "Rue des Archives",
    "Keizersgracht",
    "Via Torino",
    "Calle Mayor",
    "Market Street",
    "High Street",
    "Maple Avenue",
    "Kungsgatan",
    "Floriańska",
    "Graben",
]
FIRST = [
    "Ada",
    "Ben",
    "Chloé",
    "David",
    "Elena",
    "Finn",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kara",
    "Luca",
    "Maya",
    "Noah",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Ugo",
    "Vera",
    "Will",
    "Yara",
    "Zoe",
]
LAST = [
    "Adler",
    "Brooks",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Hughes",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Lambert",
    "Moreau",
    "Nielsen",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Urban",
    "Varga",
    "Weber",
    "Young",
    "Zimmermann",
]
# (SKU, title, variant, price in USD)
CATALOG = [
    ("MUG-BLUE", "Stoneware mug", "Blue", "18.00"),
    ("MUG-SAND", "Stoneware mug", "Sand", "18.00"),
    ("BOWL-S", "Serving bowl", "Small", "32.00"),
    ("BOWL-L", "Serving bowl", "Large", "48.00"),
    ("PLATE-SET4", "Dinner plates", "Set of 4", "84.00"),
    ("VASE-TALL", "Bud vase", "Tall", "39.00"),
    ("TEE-S", "Studio tee", "S", "28.00"),
    ("TEE-M", "Studio tee", "M", "28.00"),
    ("TEE-L", "Studio tee", "L", "28.00"),
    ("APRON-CANVAS", "Canvas apron", "", "46.00"),
    ("TOTE-NATURAL", "Market tote", "Natural", "24.00"),
    ("CANDLE-FIG", "Soy candle", "Fig", "22.00"),
    ("CANDLE-CEDAR", "Soy candle", "Cedar", "22.00"),
    ("LINEN-NAPKIN4", "Linen napkins", "Set of 4", "36.00"),
    ("TEAPOT-1L", "Teapot", "1 l", "64.00"),
    ("BOARD-OAK", "Oak serving board", "", "58.00"),
    ("CARAFE-GLASS", "Glass carafe", "", "29.00"),
    ("PRINT-A3", "Art print", "A3", "40.00"),
]
# Scarce SKUs: later orders for them wait on hold for stock, as they would in a real shop.
SCARCE = {"PRINT-A3": 6, "TEAPOT-1L": 9, "VASE-TALL": 14}
VARIANT_IDS = {sku: f"4{4_100_000 + i:09d}" for i, (sku, *_) in enumerate(CATALOG)}
STAFF = (
    # username, group, channel access: "all", a channel slug, or "" (the group's own permissions decide)
    ("admin", "Admin", "all"),
    ("manager", "Manager", "all"),
    ("manager-eu", "Manager", "atelier-eu"),
    ("warehouse", "Warehouse", ""),
    ("packer", "Packer", ""),
)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class DemoCustomer:
    index: int
    first: str
    last: str
    email: str
    country: str
    address: ChannelAddress  # where they live: repeat orders go to the same address


# How many demo shoppers live in each country (together about 120).
POPULATION = {"US": 40, "CA": 8, "DE": 18, "FR": 12, "NL": 6, "IT": 6, "ES": 5, "AT": 4, "GB": 12, "SE": 4, "PL": 4}


class Command(BaseCommand):
    help = "Load demo channels, ~300 orders and one staff user per role (idempotent; safe to run again)."

    def handle(self, *args: Any, **options: Any) -> None:
        rng = random.Random(SEED)  # noqa: S311 - demo data, not security
        now = timezone.now().replace(minute=0, second=0, microsecond=0)
        channels = self._channels()
        self._catalog(rng, channels)
        people = self._people(rng)
        created_total = 0
        for spec in CHANNELS:
            planned = self._plan_orders(rng, spec, people, now)
            created = self._ingest(channels[spec.slug], planned, now)
            created_total += created
            self.stdout.write(f"{spec.name}: {created} new order(s), {len(planned) - created} already there")
        self._mismatches(channels)
        self._staff(channels)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {created_total} order(s) added."))

    # ----------------------------------------------------------------------------------------------------

    def _channels(self) -> dict[str, SalesChannel]:
        found = {}
        for spec in CHANNELS:
            channel = SalesChannel.objects.filter(slug=spec.slug).first()
            if channel is None:
                channel, _ = channel_configure(
                    kind="shopify",
                    slug=spec.slug,
                    name=spec.name,
                    options={
                        "shop_domain": spec.shop_domain,
                        "access_token": f"shpat_demo_{secrets.token_hex(8)}",
                        "webhook_secret": secrets.token_urlsafe(24),
                    },
                )
                self.stdout.write(f"Channel {spec.name} ({spec.slug}) created")
            found[spec.slug] = channel
        return found

    def _catalog(self, rng: random.Random, channels: dict[str, SalesChannel]) -> None:
        """Two locations, the catalog with stock (a few SKUs scarce), a gift-set bundle, and listings everywhere."""
        main, created = Location.objects.get_or_create(code="main", defaults={"name": "Main warehouse", "priority": 10})
        back, _ = Location.objects.get_or_create(code="shop", defaults={"name": "Shop back room", "priority": 20})
        if created:
            for aisle in "ABC":
                for shelf in range(1, 5):
                    Bin.objects.get_or_create(location=main, code=f"{aisle}-{shelf:02d}")
        products: dict[str, Product] = {}
        new = 0
        for i, (sku, title, variant_title, usd) in enumerate(CATALOG):
            if Variant.objects.filter(sku=sku).exists():
                continue
            product = products.get(title) or Product.objects.filter(title=title).first()
            if product is None:
                product = Product.objects.create(title=title, vendor="Studio Kiln")
            products[title] = product
            variant = Variant.objects.create(
                product=product,
                sku=sku,
                title=variant_title,
                barcode=f"400{7_000_000_000 + i * 7919:010d}",
                weight_grams=rng.choice((180, 350, 420, 900, 1400)),
                sale_price=Decimal(usd),
                cost_price=_money(Decimal(usd) * Decimal("0.42")),
                low_stock_threshold=5,
            )
            units = SCARCE.get(sku, rng.randint(60, 220))
            stock_receive(variant=variant, location=main, quantity=units, actor=None, note="opening stock")
            if sku not in SCARCE and rng.random() < 0.3:
                stock_receive(variant=variant, location=back, quantity=rng.randint(2, 12), actor=None, note="opening")
            new += 1
        if not Variant.objects.filter(sku="GIFT-MUG-CANDLE").exists():
            product = Product.objects.create(title="Gift set: two mugs and a candle", vendor="Studio Kiln")
            gift = Variant.objects.create(product=product, sku="GIFT-MUG-CANDLE", sale_price=Decimal("52.00"))
            parts = [(Variant.objects.get(sku="MUG-BLUE"), 2), (Variant.objects.get(sku="CANDLE-FIG"), 1)]
            bundle_set_components(bundle=gift, components=parts, actor=None, system="seed_demo")
            new += 1
        for channel in channels.values():
            listed = set(ChannelListing.objects.filter(channel=channel).values_list("variant_id", flat=True))
            ChannelListing.objects.bulk_create(
                [
                    ChannelListing(
                        channel=channel,
                        variant=v,
                        external_id=f"gid://shopify/InventoryItem/{channel.pk}{v.pk:06d}",
                        external_ids={"location_id": f"gid://shopify/Location/{channel.pk}"},
                        channel_sku=v.sku,
                        buffer=1 if v.sku.startswith("TEE") else 0,
                    )
                    for v in Variant.objects.exclude(pk__in=listed)
                ]
            )
        if new:
            self.stdout.write(f"Catalog: {new} SKU(s) with opening stock in {main.name} and {back.name}")

    def _people(self, rng: random.Random) -> list[DemoCustomer]:
        """Shoppers with a home address and a phone number of their own (intake matches people by phone too)."""
        people: list[DemoCustomer] = []
        for country, count in POPULATION.items():
            for n in range(count):
                index = len(people)
                first, last = rng.choice(FIRST), rng.choice(LAST)
                plain = f"{first}.{last}".lower().replace("é", "e").replace("í", "i").replace("ñ", "n")
                city, region, postal, phone = rng.choice(PLACES[country])
                home = ChannelAddress(
                    name=f"{first} {last}",
                    line1=f"{rng.choice(STREETS)} {rng.randint(1, 180)}",
                    city=city,
                    region=region,
                    postal_code=postal,
                    country_code=country,
                    phone=phone.format(n=n),
                )
                people.append(
                    DemoCustomer(
                        index=index,
                        first=first,
                        last=last,
                        email=f"{plain}{index}@example.com",
                        country=country,
                        address=home,
                    )
                )
        return people

    def _address(self, rng: random.Random, person: DemoCustomer, *, broken: bool) -> ChannelAddress:
        if not broken:
            return person.address
        # The kind of mistakes shoppers make: a postal code that cannot exist, or no city at all.
        if rng.random() < 0.5:
            return dataclasses.replace(person.address, postal_code="XX-??")
        return dataclasses.replace(person.address, city="")

    def _plan_orders(
        self, rng: random.Random, spec: DemoChannel, people: list[DemoCustomer], now: datetime
    ) -> list[ChannelOrder]:
        channel_countries = [c for c, _ in spec.countries]
        weights = [w for _, w in spec.countries]
        # Regulars buy often, some on several channels (matched by e-mail); the long tail buys once or twice.
        living = {c: [p for p in people if p.country == c] for c in channel_countries}
        ages = sorted((rng.uniform(0, DAYS) for _ in range(spec.orders)), reverse=True)
        orders = []
        for n, age_days in enumerate(ages):
            placed = now - timedelta(days=age_days)
            country = rng.choices(channel_countries, weights)[0]
            locals_ = living[country]
            regulars = locals_[: max(2, len(locals_) // 4)]
            person = rng.choice(regulars) if rng.random() < 0.4 else rng.choice(locals_)
            guest = rng.random() < 0.12
            currency = CURRENCY.get(country, "EUR")
            rate = FX[currency]
            lines: list[tuple[str, str, str, str, int, Decimal]] = []
            for k in range(rng.choices([1, 2, 3, 4], [45, 30, 17, 8])[0]):
                sku, title, variant, usd = rng.choice(CATALOG)
                qty = rng.randint(6, 24) if spec.wholesale else rng.choices([1, 2, 3], [75, 20, 5])[0]
                lines.append((f"{spec.id_base + n}{k:02d}", sku, title, variant, qty, _money(Decimal(usd) * rate)))
            if rng.random() < 0.035:  # a custom item the storefront sold without a SKU: held as unknown SKU
                lines.append((f"{spec.id_base + n}90", "", "Custom engraving", "", 1, _money(Decimal("15") * rate)))
            tax_rate = TAX[country]
            discount_rate = (
                Decimal("0.3") if spec.wholesale else (Decimal("0.1") if rng.random() < 0.15 else Decimal("0"))
            )
            channel_lines: list[ChannelLine] = []
            subtotal = tax_total = discount_total = Decimal("0")
            for ext, sku, title, variant, qty, unit in lines:
                gross = unit * qty
                discount = _money(gross * discount_rate)
                tax = _money((gross - discount) * tax_rate)
                subtotal += gross
                discount_total += discount
                tax_total += tax
                channel_lines.append(
                    ChannelLine(
                        external_id=ext,
                        sku=sku,
                        title=title,
                        variant_title=variant,
                        quantity=qty,
                        unit_price=unit,
                        tax=tax,
                        discount=discount,
                        external_variant_id=VARIANT_IDS.get(sku, ""),
                    )
                )
            shipping = Decimal("0") if subtotal - discount_total >= 100 * rate else _money(Decimal("6.90") * rate)
            total = subtotal - discount_total + shipping + tax_total

            roll = rng.random()
            cancelled_at = None
            cancel_reason = ""
            if roll < 0.04 and age_days > 1:
                payment, cancelled_at = PaymentStatus.VOIDED, placed + timedelta(hours=rng.randint(1, 20))
                cancel_reason = rng.choice(["customer changed their mind", "payment declined", "duplicate order"])
            elif roll < 0.13:
                payment = PaymentStatus.COD
            elif roll < 0.23 and age_days < 10:
                payment = PaymentStatus.PENDING
            elif roll < 0.28:
                payment = PaymentStatus.AUTHORIZED
            else:
                payment = PaymentStatus.PAID

            shipping_address = self._address(rng, person, broken=rng.random() < 0.04)
            number = f"{spec.number_prefix}{spec.first_number + n}"
            orders.append(
                ChannelOrder(
                    external_id=str(spec.id_base + n),
                    number=number,
                    currency=currency,
                    placed_at=placed,
                    updated_at=cancelled_at or placed,
                    payment_status=payment,
                    subtotal=subtotal,
                    total_tax=tax_total,
                    shipping_total=shipping,
                    discount_total=discount_total,
                    total=total,
                    lines=tuple(channel_lines),
                    email=person.email,
                    phone=shipping_address.phone,
                    customer=None
                    if guest
                    else ChannelCustomer(
                        external_id=f"{spec.id_base // 1000 + person.index}",
                        email=person.email,
                        first_name=person.first,
                        last_name=person.last,
                    ),
                    shipping_address=shipping_address,
                    billing_address=person.address,
                    shipping_method=("Freight" if spec.wholesale else rng.choice(["Standard", "Standard", "Express"])),
                    cancelled_at=cancelled_at,
                    cancel_reason=cancel_reason,
                    note=rng.choice(
                        [
                            "",
                            "",
                            "",
                            "",
                            "Please leave at the back door.",
                            "Gift — no invoice in the box.",
                            "Call before delivery.",
                        ]
                    ),
                    tags=("wholesale",) if spec.wholesale else (),
                    ship_by=(placed + timedelta(days=3 if spec.wholesale else 2)).date(),
                )
            )
        return orders

    @transaction.atomic
    def _ingest(self, channel: SalesChannel, planned: list[ChannelOrder], now: datetime) -> int:
        existing = set(Order.objects.filter(channel=channel).values_list("external_id", flat=True))
        created = 0
        progress_rng = random.Random(f"{SEED}-{channel.slug}")  # noqa: S311
        for co in planned:
            if co.external_id in existing:
                continue
            order = order_ingest(channel=channel, co=co, source="seed_demo").order
            created += 1
            if order.status == OrderStatus.READY:
                self._move_on(order, (now - co.placed_at).total_seconds() / 86400, progress_rng)
        return created

    def _move_on(self, order: Order, age_days: float, rng: random.Random) -> None:
        """Take an order as far as the warehouse would have by now; a few old ones are left behind, overdue."""
        if age_days < 1.5 or rng.random() < 0.04:
            return
        if age_days > 10:
            target = OrderStatus.DELIVERED if rng.random() < 0.9 else OrderStatus.SHIPPED
        elif age_days > 5:
            target = OrderStatus.SHIPPED if rng.random() < 0.8 else OrderStatus.DELIVERED
        elif age_days > 3:
            target = rng.choice([OrderStatus.PACKED, OrderStatus.SHIPPED])
        else:
            target = rng.choice([OrderStatus.PICKING, OrderStatus.PACKED])
        path = [OrderStatus.PICKING, OrderStatus.PACKED, OrderStatus.SHIPPED, OrderStatus.DELIVERED]
        for step in path[: path.index(target) + 1]:
            order = order_transition(order=order, to=step, actor=None, system="seed_demo")

    def _mismatches(self, channels: dict[str, SalesChannel]) -> None:
        """Two stock mismatches for the mismatches screen and the bell: a drift on the EU shop (so that the
        manager limited to it sees one) and a SKU the US shop sells that the master does not know."""
        if StockMismatch.objects.filter(source="seed_demo").exists():
            return
        eu, us = channels["atelier-eu"], channels["atelier-us"]
        listing = ChannelListing.objects.filter(channel=eu, variant__sku="CANDLE-CEDAR").first()
        rows = []
        if listing is not None:
            allowed = listing_quantities([listing])[listing.pk]
            rows.append(
                StockMismatch(
                    channel=eu,
                    kind=MismatchKind.QUANTITY_DRIFT,
                    listing=listing,
                    variant=listing.variant,
                    sku=listing.variant.sku,
                    external_id=listing.external_id,
                    master_quantity=allowed,
                    channel_quantity=max(allowed - 3, 0),
                    last_pushed_quantity=allowed,
                    source="seed_demo",
                )
            )
        rows.append(
            StockMismatch(
                channel=us,
                kind=MismatchKind.UNKNOWN_SKU,
                sku="MUG-SPECKLED",
                external_id="gid://shopify/InventoryItem/9990001",
                channel_quantity=4,
                source="seed_demo",
            )
        )
        for mismatch in rows:
            mismatch.save()
            what = mismatch.sku
            title = (
                f"{what} shows {mismatch.channel_quantity} on {mismatch.channel.name}; "
                f"the master allows {mismatch.master_quantity}"
                if mismatch.kind == MismatchKind.QUANTITY_DRIFT
                else f"{mismatch.channel.name} lists {what}, unknown to the master"
            )
            alert_raise(
                kind="stock.mismatch",
                title=title,
                channel=mismatch.channel,
                link=f"{reverse('inventory:mismatch-list')}?channel={mismatch.channel_id}&kind={mismatch.kind}",
                dedupe_key=mismatch_alert_key(mismatch.pk),
            )
        self.stdout.write(f"Stock: {len(rows)} demo mismatch(es) to resolve on the mismatches screen")

    # ----------------------------------------------------------------------------------------------------

    def _staff(self, channels: dict[str, SalesChannel]) -> None:
        rows = []
        for username, group_name, access in STAFF:
            user = User.objects.filter(username=username).first()
            password = ""
            if user is None:
                password = secrets.token_urlsafe(12)
                user = User.objects.create_user(
                    username=username,
                    password=password,
                    email=f"{username}@example.com",
                    is_staff=group_name == "Admin",
                    is_superuser=username == "admin",
                )
            user.groups.add(Group.objects.get(name=group_name))
            if access == "all":
                assign_perm("core.access_channel", user)
            elif access:
                assign_perm("core.access_channel", user, channels[access])
            scope = {"all": "all channels", "": "per role"}.get(access, channels.get(access, access))
            rows.append((username, group_name, str(scope), password or "exists, password unchanged"))

        widths = [max(len(r[i]) for r in [("user", "role", "channels", "password"), *rows]) for i in range(4)]
        line = "  ".join("{:<%d}" % w for w in widths)  # noqa: UP031 - builds the format string itself
        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING("Staff accounts (new passwords are shown only this once)"))
        self.stdout.write(line.format("user", "role", "channels", "password"))
        self.stdout.write(line.format(*("-" * w for w in widths)))
        for row in rows:
            self.stdout.write(line.format(*row))
