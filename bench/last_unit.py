"""The last unit: concurrent buyers for a SKU with one unit left, through the real intake (`order_ingest`).

Each trial makes a fresh SKU with 1 unit on hand, then `--buyers` threads (each with its own database
connection) ingest a different order for it at the same moment (a barrier). Exactly one order may get the
unit; the others must go on hold for insufficient stock. Prints oversells (more than one allocation; target 0),
undersells (no allocation at all), orders held per trial, errors, and the ingest latency p50/p95/p99. Usage:

    .venv/bin/python bench/last_unit.py [--trials 1000] [--buyers 8]

Needs MariaDB on 127.0.0.1:3306 (root, no password) and Redis on 127.0.0.1:6379; uses its own database
`oms_bench_last_unit` and Redis db 5 (the fan-out jobs the allocations enqueue land there; no worker runs),
both wiped at the start.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    bench_env,
    flush_redis,
    manage,
    percentile,
    reset_mysql_database,
    wait_for_idle_database,
)

DATABASE_URL = "mysql://root@127.0.0.1:3306/oms_bench_last_unit"
REDIS_URL = "redis://127.0.0.1:6379/5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--buyers", type=int, default=8, help="concurrent orders per trial, one thread each")
    args = parser.parse_args()

    env = bench_env(DATABASE_URL, REDIS_URL)
    reset_mysql_database(DATABASE_URL)
    flush_redis(REDIS_URL)
    manage(env, "migrate", "--noinput")
    os.environ.update(env)
    import django

    django.setup()

    from django.db import connection

    from channels_adapters.base import ChannelLine
    from inventory.channels import channel_configure
    from inventory.models import Allocation, Location, Product, StockLevel, Variant
    from inventory.services import stock_receive
    from oms.orders.models import HoldReason, OrderHold
    from oms.orders.services import order_ingest
    from tests.factories import channel_order

    channel, _ = channel_configure(
        kind="shopify",
        slug="bench-last-unit",
        name="Bench last unit",
        options={"shop_domain": "bench-last-unit.myshopify.com", "access_token": "shpat_bench"},
    )
    main_location, _ = Location.objects.get_or_create(code="main", defaults={"name": "Main"})
    print(f"waited {wait_for_idle_database():.0f} s for the database to go idle")

    buyers = args.buyers
    start = threading.Barrier(buyers + 1)
    done = threading.Barrier(buyers + 1)
    trial_orders: list[Any] = [None] * buyers  # the current trial's ChannelOrder per buyer
    outcome: list[tuple[float, str]] = [(0.0, "")] * buyers  # (seconds, error) per buyer
    latencies: list[float] = []

    def buyer(k: int) -> None:
        try:
            for _ in range(args.trials):
                start.wait()
                co = trial_orders[k]
                began = time.perf_counter()
                error = ""
                try:
                    order_ingest(channel=channel, co=co, source="bench")
                except Exception as exc:  # counted and printed, the trial goes on
                    error = f"{type(exc).__name__}: {exc}"[:200]
                outcome[k] = (time.perf_counter() - began, error)
                done.wait()
        finally:
            connection.close()

    threads = [threading.Thread(target=buyer, args=(k,), daemon=True) for k in range(buyers)]
    for t in threads:
        t.start()

    oversells = undersells = 0
    held: Counter[int] = Counter()  # orders held insufficient_stock per trial -> trials
    errors: Counter[str] = Counter()
    began = time.perf_counter()
    for trial in range(args.trials):
        sku = f"LAST-{trial:05d}"
        variant = Variant.objects.create(product=Product.objects.create(title=sku), sku=sku)
        stock_receive(variant=variant, location=main_location, quantity=1, actor=None, note="the last one")
        for k in range(buyers):
            line = ChannelLine(external_id=f"{trial}-{k}", sku=sku, title=sku, quantity=1, unit_price=Decimal("10"))
            trial_orders[k] = channel_order(external_id=f"lu-{trial}-{k}", number=f"#LU{trial}-{k}", lines=(line,))
        start.wait()
        done.wait()
        for seconds, error in outcome:
            latencies.append(seconds * 1000)
            if error:
                errors[error] += 1
        allocated = sum(Allocation.objects.filter(variant=variant).values_list("quantity", flat=True))
        level = StockLevel.objects.get(variant=variant, location=main_location)
        if allocated > 1 or level.allocated > level.on_hand or level.allocated > 1:
            oversells += 1
        elif allocated == 0:
            undersells += 1
        held[
            OrderHold.objects.filter(
                order__channel=channel,
                order__external_id__startswith=f"lu-{trial}-",
                reason=HoldReason.INSUFFICIENT_STOCK,
            ).count()
        ] += 1
    elapsed = time.perf_counter() - began
    for t in threads:
        t.join(timeout=10)
    flush_redis(REDIS_URL)

    print(f"trials        {args.trials} x {buyers} concurrent buyers of 1 unit, {elapsed:.1f} s")
    print(f"oversells     {oversells} (target 0: {'met' if oversells == 0 else 'NOT met'})")
    print(f"undersells    {undersells} (trials where no buyer got the unit)")
    print(f"held insufficient_stock per trial {dict(sorted(held.items()))} (expected {buyers - 1} in every trial)")
    print(f"errors        {sum(errors.values())} {dict(errors.most_common(3)) if errors else ''}")
    print(
        f"ingest latency p50 {percentile(latencies, 50):.1f} ms  p95 {percentile(latencies, 95):.1f} ms  "
        f"p99 {percentile(latencies, 99):.1f} ms  max {max(latencies):.1f} ms"
    )


if __name__ == "__main__":
    main()
