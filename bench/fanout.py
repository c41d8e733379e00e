"""Stock fan-out under a flash sale: a sale on one channel to the new quantity on every other channel.

Three emulated Shopify stores run in this process (100-300 ms per request, Shopify Standard rate limits: a
2,000-point bucket restoring 100 points/s, the emulator's defaults). The OMS runs as it does in production:
gunicorn takes the webhooks, two RQ workers (queues high and default, long-running) ingest the orders and
run the fan-out. Signed orders/create webhooks go to channel 1 at a fixed rate, each order buying one unit
of one or two random SKUs (200 SKUs listed on all three stores, some with only 1-3 units so that changes to
zero happen). Prints, per target channel (2 and 3), the delay from a sale's webhook being posted to the
store having applied a quantity that counts that sale (p50/p95/p99, all changes and changes to zero), API
calls per sale, THROTTLED answers, and whether every store ends with the master's quantity. Usage:

    .venv/bin/python bench/fanout.py [--rate 20] [--seconds 30] [--skus 200] [--workers 2]

Needs MariaDB on 127.0.0.1:3306 (root, no password) and Redis on 127.0.0.1:6379; uses its own database
`oms_bench_fanout` and Redis db 4, both wiped at the start.
"""

from __future__ import annotations

import argparse
import bisect
import http.client
import os
import random
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    bench_env,
    flush_redis,
    gunicorn,
    manage,
    percentile,
    reset_mysql_database,
    rq_workers,
    wait_for_idle_database,
)
from tests.emulators.shopify import RecordedRequest, ShopifyEmulator, order_payload, webhook_delivery

DATABASE_URL = "mysql://root@127.0.0.1:3306/oms_bench_fanout"
REDIS_URL = "redis://127.0.0.1:6379/4"
SECRET = "bench-webhook-secret"
CHANNELS = 3
WARM_SKU = "WARM-UP"


def set_events(emulator: ShopifyEmulator) -> dict[str, list[tuple[float, int]]]:
    """item gid -> [(when applied, quantity set)] from the inventorySetQuantities calls the store applied."""
    events: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for r in emulator.graphql_requests:
        if "inventorySetQuantities" not in ((r.json or {}).get("query") or ""):
            continue
        payload = ((r.response or {}).get("data") or {}).get("inventorySetQuantities") or {}
        if r.status != 200 or payload.get("userErrors") != []:
            continue  # throttled, failed, or refused (a stale compare applies nothing)
        for q in r.json["variables"]["input"]["quantities"]:
            events[q["inventoryItemId"]].append((r.received_at, int(q["quantity"])))
    for series in events.values():
        series.sort()
    return events


def throttled(r: RecordedRequest) -> bool:
    if r.status == 429:
        return True
    errors = (r.response or {}).get("errors") if isinstance(r.response, dict) else None
    return isinstance(errors, list) and any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20, help="orders per second on channel 1")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--skus", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="RQ workers (queues high, default)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    env = bench_env(DATABASE_URL, REDIS_URL)
    reset_mysql_database(DATABASE_URL)
    flush_redis(REDIS_URL)
    manage(env, "migrate", "--noinput")
    os.environ.update(env)
    import django

    django.setup()

    from django.db.models import Sum

    from inventory.channels import channel_configure
    from inventory.models import Allocation, ChannelListing, Location, Product, StockChange, StockLevel, Variant
    from inventory.selectors import listing_quantities
    from inventory.services import stock_receive
    from oms.core.models import InboundEvent
    from oms.core.queue import get_queue
    from oms.orders.models import Order

    with ExitStack() as stack:
        shops = [
            stack.enter_context(ShopifyEmulator(shop_domain=f"bench-{n}.myshopify.com", latency=(0.1, 0.3)))
            for n in range(1, CHANNELS + 1)
        ]
        channels = []
        for n, shop in enumerate(shops, start=1):
            channel, _ = channel_configure(
                kind="shopify",
                slug=f"bench-{n}",
                name=f"Bench shop {n}",
                options={
                    "shop_domain": shop.shop_domain,
                    "access_token": shop.access_token,
                    "webhook_secret": SECRET,
                    "api_base_url": shop.base_url,
                    "location_id": shop.location_id,
                },
                active=True,
            )
            channels.append(channel)

        # The catalog: a few SKUs with 1-3 units (they sell out), the rest with plenty.
        location, _ = Location.objects.get_or_create(code="main", defaults={"name": "Main"})
        stock = {WARM_SKU: 100_000}
        for i in range(args.skus):
            stock[f"FS-{i:04d}"] = 1 if i % 5 == 0 else (rng.randint(2, 3) if i % 5 == 1 else rng.randint(10, 40))
        items: list[dict[str, str]] = [{} for _ in shops]  # per shop: sku -> inventory item gid
        listings = []
        for sku, on_hand in stock.items():
            variant = Variant.objects.create(product=Product.objects.create(title=sku), sku=sku)
            stock_receive(variant=variant, location=location, quantity=on_hand, actor=None, note="bench stock")
            for k, (channel, shop) in enumerate(zip(channels, shops, strict=True)):
                ids = shop.add_product(sku=sku, available=on_hand, title=sku)
                items[k][sku] = ids["inventory_item_id"]
                listings.append(
                    ChannelListing(
                        channel=channel,
                        variant=variant,
                        external_id=ids["inventory_item_id"],
                        external_ids={"location_id": ids["location_id"]},
                        channel_sku=sku,
                        last_pushed_quantity=on_hand,
                        last_seen_quantity=on_hand,
                    )
                )
        ChannelListing.objects.bulk_create(listings)
        StockChange.objects.all().delete()
        flush_redis(REDIS_URL)  # the fan-out jobs the stock receipts queued: nothing to push yet
        sku_of = [{gid: sku for sku, gid in per_shop.items()} for per_shop in items]

        def quiet() -> bool:
            return (
                not InboundEvent.objects.filter(status=InboundEvent.Status.PENDING).exists()
                and not StockChange.objects.exists()
                and not ChannelListing.objects.filter(push_pending=True).exists()
                and all(len(get_queue(q)) == 0 for q in ("high", "default"))
            )

        def wait_quiet(limit: float) -> float:
            began = time.perf_counter()
            time.sleep(0.5)
            while time.perf_counter() - began < limit and not quiet():
                time.sleep(0.2)
            return time.perf_counter() - began

        skus = [s for s in stock if s != WARM_SKU]
        sales: list[tuple[int, dict[str, int]]] = []  # (order id, sku -> units) in posting order
        for i in range(int(args.rate * args.seconds)):
            picked = rng.sample(skus, rng.choice((1, 1, 2)))
            sales.append((9_000_000_000 + i, dict.fromkeys(picked, 1)))
        deliveries = [
            webhook_delivery(
                "orders/create",
                order_payload(
                    id=order_id,
                    name=f"#FS{n}",
                    order_number=200_000 + n,
                    line_items=[
                        {"sku": sku, "quantity": q, "title": sku, "price": "25.00"} for sku, q in lines.items()
                    ],
                ),
                SECRET,
                shop_domain=shops[0].shop_domain,
            )
            for n, (order_id, lines) in enumerate(sales)
        ]
        warmup = [
            webhook_delivery(
                "orders/create",
                order_payload(id=8_000_000_000 + n, line_items=[{"sku": WARM_SKU, "quantity": 1}]),
                SECRET,
                shop_domain=shops[0].shop_domain,
            )
            for n in range(10)
        ]

        posted: list[float] = [0.0] * len(deliveries)  # time.time() when each webhook was posted
        statuses: dict[int, int] = defaultdict(int)
        status_lock = threading.Lock()
        with (
            gunicorn(env) as base,
            rq_workers(env, args.workers, ("high", "default"), burst=False),
        ):
            host, port = base.removeprefix("http://").split(":")
            local = threading.local()

            def post(i: int, delivery: tuple[dict[str, str], bytes], record: bool) -> None:
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection(host, int(port), timeout=10)
                headers, body = delivery
                if record:
                    posted[i] = time.time()
                try:
                    conn.request("POST", "/webhooks/bench-1/", body=body, headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                    status = resp.status
                except OSError:
                    status = 0
                    local.conn = None
                with status_lock:
                    statuses[status] += 1

            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda d: post(0, d, False), warmup))
            print(f"warm-up: 10 orders, quiet after {wait_quiet(120):.1f} s")
            statuses.clear()
            for shop in shops:
                shop.clear_requests()
            print(f"waited {wait_for_idle_database():.0f} s for the database to go idle")
            print(
                f"offering {len(deliveries)} orders at {args.rate:.0f}/s over {args.seconds:.0f} s to bench-1; "
                f"{args.skus} SKUs on {CHANNELS} stores (latency 100-300 ms, bucket 2000 restoring 100/s)"
            )
            start = time.perf_counter() + 0.2
            with ThreadPoolExecutor(max_workers=16) as pool:
                for i, delivery in enumerate(deliveries):
                    delay = start + i / args.rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    pool.submit(post, i, delivery, True)
            load_end = time.perf_counter()
            drained = wait_quiet(300)
            print(f"posted in {load_end - start:.1f} s; HTTP statuses {dict(statuses)}; quiet {drained:.1f} s later")
            if not quiet():
                print(
                    f"NOT QUIET after {drained:.0f} s: "
                    f"{InboundEvent.objects.filter(status=InboundEvent.Status.PENDING).count()} inbox events pending, "
                    f"{StockChange.objects.count()} outbox rows, "
                    f"{ChannelListing.objects.filter(push_pending=True).count()} listings waiting for a push"
                )

        # What was really allocated: a held line changes nothing to push.
        order_ids = {int(o.external_id): o.pk for o in Order.objects.filter(channel=channels[0])}
        allocated: set[tuple[str, str]] = set(Allocation.objects.values_list("reference", "variant__sku").distinct())
        cumulative: dict[str, int] = defaultdict(int)
        expected: list[dict[str, int]] = []  # per sale: sku -> the quantity that counts this sale (and earlier)
        for order_id, lines in sales:
            pk = order_ids.get(order_id)
            after = {}
            for sku, units in lines.items():
                if pk is not None and (f"order:{pk}", sku) in allocated:
                    cumulative[sku] += units
                    after[sku] = stock[sku] - cumulative[sku]
            expected.append(after)
        changes = sum(len(e) for e in expected)
        print(
            f"orders stored {len(order_ids) - len(warmup)} of {len(sales)}; "
            f"SKU changes allocated {changes}, to zero {sum(1 for e in expected for q in e.values() if q == 0)}"
        )

        ingested = {
            int(resource): done.timestamp()
            for resource, done in InboundEvent.objects.filter(channel=channels[0], processed_at__isnull=False)
            .values_list("resource_id", "processed_at")
            .iterator()
            if resource.isdigit() and done is not None
        }
        intake = [ingested[order_id] - posted[i] for i, (order_id, _) in enumerate(sales) if order_id in ingested]
        print(
            f"webhook -> order ingested (the intake's share)  p50 {percentile(intake, 50):.2f} s  "
            f"p95 {percentile(intake, 95):.2f} s  p99 {percentile(intake, 99):.2f} s"
        )

        masters = listing_quantities(list(ChannelListing.objects.select_related("variant")))
        listing_by_item = {(lst.channel_id, lst.external_id): lst.pk for lst in ChannelListing.objects.all()}
        master_available = dict(
            StockLevel.objects.values("variant__sku")
            .annotate(n=Sum("on_hand") - Sum("allocated"))
            .values_list("variant__sku", "n")
        )
        p95_ok = p99_zero_ok = no_throttle = all_match = True
        for k, (channel, shop) in enumerate(zip(channels, shops, strict=True)):
            events = set_events(shop)
            delays: list[float] = []
            zero_delays: list[float] = []
            after_ingest: list[float] = []
            missing = 0
            for i, after in enumerate(expected):
                for sku, quantity in after.items():
                    series = events.get(items[k][sku], [])
                    j = bisect.bisect_left(series, (posted[i], -(10**9)))
                    hit = next((t for t, q in series[j:] if q <= quantity), None)
                    if hit is None:
                        missing += 1
                        continue
                    delays.append(hit - posted[i])
                    if sales[i][0] in ingested:
                        after_ingest.append(hit - ingested[sales[i][0]])
                    if quantity == 0:
                        zero_delays.append(hit - posted[i])
            requests = shop.graphql_requests
            throttles = sum(1 for r in requests if throttled(r))
            sets = sum(1 for r in requests if "inventorySetQuantities" in ((r.json or {}).get("query") or ""))
            wrong = [
                sku
                for gid, sku in sku_of[k].items()
                if shop.available(gid) != masters[listing_by_item[(channel.pk, gid)]]
                or masters[listing_by_item[(channel.pk, gid)]] != master_available.get(sku)
            ]
            role = "origin of the sale" if k == 0 else "target"
            print(f"{channel.slug} ({role})")
            if k > 0:
                p95_ok &= percentile(delays, 95) <= 2.0
                p99_zero_ok &= not zero_delays or percentile(zero_delays, 99) <= 1.0
            if delays:
                print(
                    f"  sale -> quantity  p50 {percentile(delays, 50):.2f} s  p95 {percentile(delays, 95):.2f} s  "
                    f"p99 {percentile(delays, 99):.2f} s  max {max(delays):.2f} s  ({len(delays)} changes)"
                )
            if after_ingest:
                print(
                    f"  ingested -> quantity (the fan-out's share)  p50 {percentile(after_ingest, 50):.2f} s  "
                    f"p95 {percentile(after_ingest, 95):.2f} s  p99 {percentile(after_ingest, 99):.2f} s"
                )
            if zero_delays:
                print(
                    f"  to zero           p50 {percentile(zero_delays, 50):.2f} s  "
                    f"p95 {percentile(zero_delays, 95):.2f} s  p99 {percentile(zero_delays, 99):.2f} s  "
                    f"max {max(zero_delays):.2f} s  ({len(zero_delays)} changes)"
                )
            print(f"  changes never seen {missing}")
            print(
                f"  API calls {len(requests)} ({sets} inventorySetQuantities), "
                f"{len(requests) / len(sales):.2f} per sale; THROTTLED/429 answers {throttles}"
            )
            print(f"  ends with the master's quantity for every SKU: {'yes' if not wrong else f'NO ({len(wrong)})'}")
            no_throttle &= throttles == 0
            all_match &= not wrong
        print(
            f"targets: p95 <= 2 s on targets {'met' if p95_ok else 'NOT met'}; "
            f"p99 <= 1 s for zero-stock changes {'met' if p99_zero_ok else 'NOT met'}; "
            f"no rate-limit violation {'met' if no_throttle else 'NOT met'}; "
            f"every store matches the master {'yes' if all_match else 'NO'}"
        )


if __name__ == "__main__":
    main()
