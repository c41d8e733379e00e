"""Reconciliation at catalog scale: 33,000 SKUs listed on three Shopify channels (emulators on 127.0.0.1, each in
a process of its own), against MariaDB and Redis; each channel is reconciled in turn, twice (a first run that
finds, links and alerts, then a steady run that finds the same again and adds nothing).

Prints, per channel and run: total time; the channel's own API time (inside fetch_stock: HTTP, the emulator's
work, the adapter's parsing, the shared rate limiter); the time beyond the API (our reads, comparison and
writes); queries; and what was found. Then the totals against the budget (<= 10 s beyond the API for 33,000
SKUs x 3 channels). Usage:

    .venv/bin/python bench/reconcile.py [--skus 33000] [--channels 3] [--drift 0.01] [--latency 0]

Needs MariaDB on 127.0.0.1:3306 (root, no password) and Redis on 127.0.0.1:6379; uses its own database
`oms_bench_reconcile` and Redis db 7, both wiped at the start. The emulators' rate limit is set generous: real
Shopify throttling is API time, which the budget excludes.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import bench_env, flush_redis, manage, reset_mysql_database, wait_for_idle_database

DATABASE_URL = "mysql://root@127.0.0.1:3306/oms_bench_reconcile"
REDIS_URL = "redis://127.0.0.1:6379/7"
BATCH = 1000
HEADER = f"{'channel':<10}{'items':>7}{'pages':>6}{'total s':>9}{'API s':>8}{'beyond s':>10}{'queries':>9}  found"


def setup_django() -> None:
    os.environ.update(bench_env(DATABASE_URL, REDIS_URL))
    # The emulator stamps drift with the time it was seeded, moments ago: judge it now, not after the grace period.
    os.environ["STOCK_DRIFT_GRACE_SECONDS"] = "0"
    import django

    django.setup()


def seed_master(skus: int) -> tuple[list[Any], dict[int, int]]:
    """`skus` products with one variant each, stocked at one location through the bulk stock service."""
    from inventory.models import Location, Product, Variant
    from inventory.services import stock_set_on_hand_bulk

    products = Product.objects.bulk_create([Product(title=f"Bench product {i}") for i in range(skus)], batch_size=BATCH)
    Variant.objects.bulk_create(
        [Variant(product=p, sku=f"BENCH-{i:06}") for i, p in enumerate(products)], batch_size=BATCH
    )
    variants = list(Variant.objects.order_by("pk"))
    location = Location.objects.create(code="main", name="Main")
    rng = random.Random(7)
    on_hand = {v.pk: rng.randint(0, 60) for v in variants}
    stock_set_on_hand_bulk(targets=[(pk, location.pk, n) for pk, n in on_hand.items()], actor=None, note="bench")
    return variants, on_hand


class RemoteShop:
    """A ShopifyEmulator in a process of its own (spawned: it shares nothing with Django), so that its work and
    its memory count as the channel's, not against our process's GIL and garbage collector. Calls go over a pipe,
    many at a time."""

    def __init__(self, **options: Any) -> None:
        context = mp.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_shop, args=(child, options), daemon=True)
        self._process.start()
        self.base_url, self.access_token, self.location_id, self.shop_domain = self._conn.recv()

    def many(self, method: str, calls: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> list[Any]:
        self._conn.send((method, calls))
        result = self._conn.recv()
        if isinstance(result, Exception):
            raise result
        return list(result)

    def stop(self) -> None:
        self._conn.send(("stop", []))
        self._conn.recv()
        self._process.join(timeout=10)


def _serve_shop(conn: Any, options: dict[str, Any]) -> None:
    from tests.emulators.shopify import ShopifyEmulator

    shop = ShopifyEmulator(**options).start()
    conn.send((shop.base_url, shop.access_token, shop.location_id, shop.shop_domain))
    while True:
        method, calls = conn.recv()
        if method == "stop":
            shop.stop()
            conn.send(None)
            return
        try:
            conn.send([getattr(shop, method)(*a, **kw) for a, kw in calls])
        except Exception as exc:  # handed back to the caller
            conn.send(exc)


def seed_channel(n: int, variants: list[Any], on_hand: dict[int, int], args: argparse.Namespace) -> tuple[Any, Any]:
    """One emulated shop listing every SKU with the quantity the master allows, a master channel with its listings,
    and the drift this run should find."""
    from inventory.channels import channel_configure
    from inventory.models import ChannelListing
    from inventory.selectors import listing_quantity

    shop = RemoteShop(
        shop_domain=f"bench-{n}.myshopify.com",
        restore_rate=1_000_000,
        maximum_available=1_000_000,
        latency=args.latency,
    )
    channel, _ = channel_configure(
        kind="shopify",
        slug=f"bench-{n}",
        name=f"Bench shop {n}",
        options={
            "shop_domain": shop.shop_domain,
            "access_token": shop.access_token,
            "webhook_secret": "bench",
            "api_base_url": shop.base_url,
            "location_id": shop.location_id,
        },
    )
    rules = [{}, {"buffer": 2}, {"percentage": 50}][n % 3]  # each channel its own rule
    rng = random.Random(n)
    unlinked = set(rng.sample(range(len(variants)), args.unlinked))  # on the channel, not linked in the OMS yet
    # A listing linked by reconciliation gets the default rules: its item shows what those allow.
    listings = [
        ChannelListing(channel=channel, variant=v, **({} if i in unlinked else rules)) for i, v in enumerate(variants)
    ]
    quantities = [
        listing_quantity(listing, available=on_hand[listing.variant_id], exclusive_elsewhere=False)
        for listing in listings
    ]
    items = shop.many(
        "add_product",
        [
            ((), {"sku": v.sku, "available": q, "title": f"Bench product {i}"})
            for i, (v, q) in enumerate(zip(variants, quantities, strict=True))
        ],
    )
    for listing, item, quantity in zip(listings, items, quantities, strict=True):
        listing.external_id = item["inventory_item_id"]
        listing.external_ids = {k: item[k] for k in ("inventory_item_id", "variant_id", "product_id", "location_id")}
        listing.channel_sku = item["sku"]
        listing.last_pushed_quantity = quantity
    ChannelListing.objects.bulk_create(
        [listing for i, listing in enumerate(listings) if i not in unlinked], batch_size=BATCH
    )
    # Disjoint samples of the linked items: each drift is found once, as what it is.
    linked = [i for i in range(len(variants)) if i not in unlinked]
    rng.shuffle(linked)
    d = int(len(variants) * args.drift)
    drifted, gone, twins = linked[:d], linked[d : d + args.deleted], linked[d + args.deleted :][: args.duplicates]
    shop.many(
        "set_available",
        [((items[i], quantities[i] + rng.choice([-3, -2, -1, 1, 2, 5])), {}) for i in drifted],
    )
    shop.many("delete_product", [((items[i],), {}) for i in gone])
    shop.many("add_product", [((), {"sku": f"NOT-IN-MASTER-{n}-{j}", "available": 3}) for j in range(args.unknown)])
    shop.many("add_product", [((), {"sku": "", "available": 1}) for _ in range(args.no_sku)])
    shop.many("add_product", [((), {"sku": variants[i].sku, "available": 1}) for i in twins])
    return shop, channel


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def reconcile_once(channel: Any) -> dict[str, Any]:
    from django.db import connection

    from inventory.services_reconcile import channel_reconcile

    counter = QueryCounter()
    started = time.monotonic()
    with connection.execute_wrapper(counter):
        run = channel_reconcile(channel=channel, trigger="bench")
    wall = time.monotonic() - started
    if run.status != "done":
        raise SystemExit(f"{channel.slug}: run failed: {run.error}")
    api = float(run.summary["api_seconds"])
    return {"run": run, "wall": wall, "api": api, "beyond": wall - api, "queries": counter.count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skus", type=int, default=33_000)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--drift", type=float, default=0.01, help="share of listings whose quantity drifts")
    parser.add_argument("--unknown", type=int, default=10, help="items per channel with a SKU the master lacks")
    parser.add_argument("--no-sku", type=int, default=5, help="items per channel without a SKU")
    parser.add_argument("--duplicates", type=int, default=5, help="SKUs per channel listed twice")
    parser.add_argument("--deleted", type=int, default=10, help="listed items per channel deleted on the channel")
    parser.add_argument("--unlinked", type=int, default=100, help="items per channel not linked yet (linked by SKU)")
    parser.add_argument("--latency", type=float, default=0.0, help="emulated API latency per request, seconds")
    args = parser.parse_args()

    env = bench_env(DATABASE_URL, REDIS_URL)
    reset_mysql_database(DATABASE_URL)
    flush_redis(REDIS_URL)
    manage(env, "migrate", "--noinput")
    setup_django()

    began = time.monotonic()
    variants, on_hand = seed_master(args.skus)
    shops = []
    channels = []
    for n in range(args.channels):
        shop, channel = seed_channel(n, variants, on_hand, args)
        shops.append(shop)
        channels.append(channel)
    print(f"seeded {args.skus} SKUs on {args.channels} channels in {time.monotonic() - began:.0f} s")
    print(f"waited {wait_for_idle_database():.0f} s for the database to go idle")

    expected = int(args.skus * args.drift) + args.unknown + args.no_sku + args.duplicates + args.deleted
    try:
        for label in ("first run", "steady run"):
            total = {"wall": 0.0, "api": 0.0, "beyond": 0.0, "queries": 0}
            print(f"\n{label}")
            print(HEADER)
            for channel in channels:
                result = reconcile_once(channel)
                run = result["run"]
                s = run.summary
                for key in ("wall", "api", "beyond", "queries"):
                    total[key] += result[key]
                found = (
                    f"{run.mismatches} mismatches (expected {expected}): {s.get('new', 0)} new, "
                    f"{s.get('still_open', 0)} again, {s.get('gone', 0)} gone; linked {s.get('linked', 0)}"
                )
                print(
                    f"{channel.slug:<10}{s['items']:>7}{run.pages:>6}{result['wall']:>9.2f}{result['api']:>8.2f}"
                    f"{result['beyond']:>10.2f}{result['queries']:>9}  {found}"
                )
            print(
                f"{'all':<10}{'':>7}{'':>6}{total['wall']:>9.2f}{total['api']:>8.2f}{total['beyond']:>10.2f}"
                f"{total['queries']:>9}  budget: <= 10 s beyond the API for {args.skus} SKUs x {args.channels} channels"
            )
    finally:
        for shop in shops:
            shop.stop()
        flush_redis(REDIS_URL)


if __name__ == "__main__":
    main()
