"""Catalog import of 33,000 variants from CSV against MariaDB, through the same path as the staff screen: the
upload is stored, the dry-run job checks it, the confirmed import job writes it (one transaction), progress in
the cache.

Two passes: a fresh catalog (everything created: products, variants, bundles, stock at two locations), then the
same SKUs again with every price and every stock figure changed (the update path). Prints, per pass, the dry run's
and the import's time, rows/s and SQL statements.

    .venv/bin/python bench/catalog_import.py [--variants 33000] [--worker]

Jobs run in this process by default (as with no REDIS_URL), so statements are counted exactly. `--worker` runs
them in a real RQ worker on queue "low" over Redis db 5 (as in production), polls the progress the screen shows,
and counts statements from MariaDB's own counters.

Needs MariaDB on 127.0.0.1:3306 (root, no password); uses its own database `oms_bench_import`, wiped at the start.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import bench_env, flush_redis, reset_mysql_database, rq_workers, wait_for_idle_database

DATABASE_URL = "mysql://root@127.0.0.1:3306/oms_bench_import"
REDIS_URL = "redis://127.0.0.1:6379/5"
LOCATIONS = ("main", "backroom")
BUNDLE_SHARE = 0.01


def build_csv(variants: int, *, seed: int, price_bump: str = "0") -> bytes:
    """A realistic catalog: products of 1-5 variants, 1 % bundles of two components, stock at two locations.
    The SKUs and products depend on nothing; prices, weights and stock on `seed`."""
    shape = random.Random(0)
    rng = random.Random(seed)
    header = [
        "product_title",
        "vendor",
        "sku",
        "barcode",
        "variant_title",
        "weight_grams",
        "hs_code",
        "cost_price",
        "sale_price",
        "low_stock_threshold",
        "active",
        "bundle_components",
        *(f"stock:{code}" for code in LOCATIONS),
    ]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    bundles = int(variants * BUNDLE_SHARE)
    plain = variants - bundles
    skus: list[str] = []
    n = 0
    product = 0
    sizes = ("XS", "S", "M", "L", "XL")
    while n < plain:
        product += 1
        for size in sizes[: min(shape.randint(1, 5), plain - n)]:
            n += 1
            sku = f"P{product:05d}-{size}"
            skus.append(sku)
            cost = rng.randint(100, 5000)
            writer.writerow(
                [
                    f"Product {product:05d}",
                    f"Vendor {product % 40:02d}",
                    sku,
                    f"{4000000000000 + n:013d}",
                    size,
                    rng.randint(50, 3000),
                    "6109.10",
                    f"{cost / 100 + float(price_bump):.2f}",
                    f"{cost * 2.5 / 100 + float(price_bump):.2f}",
                    rng.choice((0, 2, 5)),
                    "true",
                    "",
                    rng.randint(0, 200),
                    rng.randint(0, 50),
                ]
            )
    for b in range(bundles):
        first, second = shape.sample(skus, 2)
        writer.writerow(
            [
                f"Gift set {b:04d}",
                "Bundles",
                f"KIT-{b:04d}",
                "",
                "",
                "",
                "",
                "",
                f"{rng.randint(2000, 9000) / 100 + float(price_bump):.2f}",
                0,
                "true",
                f"{first}*{shape.randint(1, 3)};{second}*1",
                "",
                "",
            ]
        )
    return out.getvalue().encode()


def mariadb_statements() -> int:
    import MySQLdb

    conn = MySQLdb.connect(host="127.0.0.1", user="root", port=3306)
    cur = conn.cursor()
    cur.execute("SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_select','Com_insert','Com_update','Com_delete')")
    total = sum(int(value) for _, value in cur.fetchall())
    conn.close()
    return total


def run_pass(label: str, data: bytes, *, worker: bool, env: dict[str, str]) -> None:
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from inventory.catalog_format import open_catalog
    from inventory.models import CatalogImport
    from inventory.services_catalog import catalog_import_confirm, catalog_import_create, progress_key

    catalog = open_catalog(data, f"{label}.csv")
    rows = sum(1 for _ in catalog.rows())
    print(f"\n{label}: {rows:,} variants, {len(data) / 1e6:.1f} MB CSV")

    def wait(record_id: int, until: set[str], began: float) -> CatalogImport:
        shown = ""
        while True:
            record = CatalogImport.objects.get(pk=record_id)
            if record.status in until:
                return record
            progress = cache.get(progress_key(record_id)) or {}
            now = f"{progress.get('percent', 0):3d} %  {progress.get('label', '')}"
            if now != shown:
                print(f"  {time.perf_counter() - began:5.1f} s  {now}")
                shown = now
            time.sleep(0.5)

    def step(name: str, start, until: set[str]) -> CatalogImport:
        statements = mariadb_statements()
        began = time.perf_counter()
        if worker:
            record_id = start()  # enqueued first: a burst worker stops as soon as its queue is empty
            with rq_workers(env, 1, queues=("low",)):
                record = wait(record_id, until, began)
            queries = mariadb_statements() - statements
        else:
            with CaptureQueriesContext(connection) as captured:
                record = CatalogImport.objects.get(pk=start())
            queries = len(captured.captured_queries)
        elapsed = time.perf_counter() - began
        print(
            f"  {name:8s} {elapsed:6.1f} s  {rows / elapsed:8,.0f} rows/s  {queries:7,} SQL statements  -> "
            f"{record.status}; {record.summary}"
        )
        if record.errors:
            print(f"  errors: {record.errors[:5]}")
        return record

    record = step(
        "dry run",
        lambda: catalog_import_create(file_name=f"{label}.csv", content=data, file_format="csv", actor=None).pk,
        {CatalogImport.Status.CHECKED, CatalogImport.Status.INVALID},
    )
    if record.status != CatalogImport.Status.CHECKED:
        raise SystemExit("the dry run found errors")
    step(
        "import",
        lambda: catalog_import_confirm(catalog_import=record, actor=None).pk,
        {CatalogImport.Status.DONE, CatalogImport.Status.FAILED},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=33_000)
    parser.add_argument("--worker", action="store_true", help="run the jobs in an RQ worker over Redis")
    args = parser.parse_args()

    reset_mysql_database(DATABASE_URL)
    env = bench_env(DATABASE_URL, REDIS_URL if args.worker else "")
    if args.worker:
        flush_redis(REDIS_URL)
    os.environ.update(env)
    if not args.worker:
        os.environ.pop("REDIS_URL", None)

    import django

    django.setup()
    from django.core.management import call_command

    from inventory.models import Location, StockLevel, StockMovement

    call_command("migrate", verbosity=0)
    for priority, code in enumerate(LOCATIONS):
        Location.objects.create(code=code, name=code.title(), priority=priority)
    waited = wait_for_idle_database()
    print(f"MariaDB idle after {waited:.0f} s; jobs {'in an RQ worker' if args.worker else 'in this process'}")

    run_pass("fresh", build_csv(args.variants, seed=1), worker=args.worker, env=env)
    wait_for_idle_database()
    run_pass("update", build_csv(args.variants, seed=2, price_bump="1"), worker=args.worker, env=env)

    from django.db.models import Sum

    levels = StockLevel.objects.aggregate(s=Sum("on_hand"))["s"]
    ledger = StockMovement.objects.aggregate(s=Sum("delta_on_hand"))["s"]
    print(f"\non hand in levels {levels:,}, in the ledger {ledger:,}: {'equal' if levels == ledger else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
