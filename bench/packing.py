"""Packing queue under load: 10 packers pressing "next order" against gunicorn with 10,000 ready orders.

Each simulated packer logs in, starts at a random moment within its first think time, then loops: POST
/dispatch/pack/next/ (the claim: SKIP LOCKED on the queue index), holds the order for a moment (`--think`,
uniform between 0.5x and 1.5x; a real pack takes a minute), then puts it back (POST .../release/), as a packer
who finds an item missing would. The released order returns to the head of the queue, so every claim competes
with the other packers for the same first rows: the worst case for the lock, on a queue index 10,000 rows
deep. `--think 0` is a stress test: ten clients in a closed loop with no pause, which measures the server's
queueing rather than a packer's wait.

Prints claims/s, claim latency p50/p95/p99 (target p95 <= 50 ms) and double claims (target 0): two packers
holding one order at the same time, checked from the claims the packers saw and again from the database's
pack sessions. Usage:

    .venv/bin/python bench/packing.py [--orders 10000] [--packers 10] [--seconds 20] [--think 1.0]

Needs MariaDB on 127.0.0.1:3306 (root, no password) and Redis on 127.0.0.1:6379; uses its own database
`oms_bench_packing` and Redis db 4, both wiped at the start.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import re
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from bench._harness import (
    bench_env,
    flush_redis,
    gunicorn,
    manage,
    percentile,
    reset_mysql_database,
    wait_for_idle_database,
)

DATABASE_URL = "mysql://root@127.0.0.1:3306/oms_bench_packing"
REDIS_URL = "redis://127.0.0.1:6379/4"
PASSWORD = "bench-packer-password"


def seed(orders: int, packers: int) -> None:
    """Ready orders straight into the tables (intake is measured elsewhere) and the packers' accounts."""
    import random
    from datetime import timedelta

    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from oms.core.models import SalesChannel
    from oms.orders.models import Order, OrderStatus, PaymentStatus, ServiceLevel

    channel = SalesChannel.objects.create(slug="bench-pack", name="Bench", kind="shopify", active=True)
    rng = random.Random(11)
    now = timezone.now()
    today = timezone.localdate()
    rows = [
        Order(
            channel=channel,
            external_id=str(9_000_000 + i),
            number=f"#P{i}",
            status=OrderStatus.READY,
            payment_status=PaymentStatus.PAID,
            currency="USD",
            subtotal=10,
            total_tax=0,
            shipping_total=0,
            discount_total=0,
            total=10,
            placed_at=now - timedelta(minutes=rng.randrange(1, 10_000)),
            channel_updated_at=now,
            ship_by=today + timedelta(days=rng.randrange(-1, 4)),
            service_level=rng.choice(list(ServiceLevel)),
        )
        for i in range(orders)
    ]
    Order.objects.bulk_create(rows, batch_size=2000)
    group = Group.objects.get(name="Packer")
    for n in range(packers):
        user = User.objects.create_user(username=f"bench-packer-{n}", password=PASSWORD)
        user.groups.add(group)


class Client:
    """One packer's keep-alive connection with its session and CSRF cookies."""

    def __init__(self, base: str) -> None:
        parsed = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> http.client.HTTPResponse:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), "Host": "127.0.0.1"}
        body = None
        if form is not None:
            form = {**form, "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")}
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = "http://127.0.0.1/"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        return response

    def login(self, username: str) -> None:
        self.request("GET", "/login/")
        response = self.request("POST", "/login/", {"username": username, "password": PASSWORD})
        if response.status != 302:
            raise SystemExit(f"login of {username} failed: {response.status}")


SESSION_PATH = re.compile(r"/dispatch/pack/(\d+)/$")


def packer(base: str, n: int, seconds: float, think: float, start_at: float, out: mp.Queue) -> None:
    import random

    rng = random.Random(n)
    client = Client(base)
    client.login(f"bench-packer-{n}")
    latencies: list[float] = []
    sessions: list[int] = []
    errors = 0
    # Packers do not all press "next order" in the same millisecond: each starts somewhere within one think
    # time. (Started together, the ten first claims queued behind one another on the two cores: 70-95 ms.)
    first_at = start_at + (rng.uniform(0, think) if think > 0 else 0)
    while time.time() < first_at:
        time.sleep(0.005)
    deadline = start_at + seconds
    while time.time() < deadline:
        began = time.perf_counter()
        response = client.request("POST", "/dispatch/pack/next/", {})
        latencies.append(time.perf_counter() - began)
        match = SESSION_PATH.search(response.getheader("Location") or "")
        if response.status not in (302, 303) or match is None:
            if not errors:
                print(f"packer {n}: claim answered {response.status} {response.getheader('Location')}", flush=True)
            errors += 1
            continue
        session = int(match.group(1))
        sessions.append(session)
        if think > 0:
            time.sleep(rng.uniform(0.5 * think, 1.5 * think))
        released = client.request("POST", f"/dispatch/pack/{session}/release/", {"reason": "bench: item missing"})
        if released.status not in (302, 303):
            errors += 1
    out.put((n, latencies, sessions, errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--packers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds a packer holds an order")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker")
    args = parser.parse_args()

    env = bench_env(DATABASE_URL, REDIS_URL)
    reset_mysql_database(DATABASE_URL)
    flush_redis(REDIS_URL)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")  # production settings serve the pages' static files through a manifest
    os.environ.update(env)
    import django

    django.setup()
    seed(args.orders, args.packers)
    from django.db.models import Count

    from dispatch.models import PackSession

    waited = wait_for_idle_database()
    print(
        f"{args.orders} ready orders, {args.packers} packers holding each order ~{args.think:g} s, "
        f"{args.seconds:.0f} s (waited {waited:.0f} s for idle)"
    )
    with gunicorn(env, workers=args.web_workers, threads=args.web_threads) as base:
        out: mp.Queue = mp.Queue()
        start_at = time.time() + 3  # every packer logged in before the clock starts
        procs = [
            mp.Process(target=packer, args=(base, n, args.seconds, args.think, start_at, out))
            for n in range(args.packers)
        ]
        for p in procs:
            p.start()
        results = [out.get(timeout=args.seconds + 120) for _ in procs]
        for p in procs:
            p.join()

    latencies = sorted(x for _, lat, _, _ in results for x in lat)
    claims = sum(len(s) for _, _, s, _ in results)
    errors = sum(e for *_, e in results)
    seen = [s for _, _, ss, _ in results for s in ss]
    # Double claims: two open sessions of one order whose lifetimes overlap.
    sessions = list(PackSession.objects.filter(pk__in=seen).values_list("order_id", "started_at", "finished_at"))
    by_order: dict[int, list[tuple]] = {}
    for order_id, began, ended in sessions:
        by_order.setdefault(order_id, []).append((began, ended))
    doubles = 0
    for spans in by_order.values():
        spans.sort(key=lambda s: s[0])
        for (_, end_a), (start_b, _) in itertools.pairwise(spans):
            if end_a is None or start_b < end_a:
                doubles += 1
    still_open = (
        PackSession.objects.filter(outcome=PackSession.Outcome.OPEN)
        .values("order_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    print(f"claims        {claims} in {args.seconds:.0f} s: {claims / args.seconds:.0f} claims/s ({errors} errors)")
    print(
        f"claim latency p50 {percentile(latencies, 50) * 1000:.1f} ms  p95 {percentile(latencies, 95) * 1000:.1f} ms"
        f"  p99 {percentile(latencies, 99) * 1000:.1f} ms  max {latencies[-1] * 1000:.1f} ms"
    )
    firsts = sorted(lat[0] for _, lat, _, _ in results if lat)
    rest = sorted(x for _, lat, _, _ in results for x in lat[1:])
    print(
        f"  first claim of each packer p50 {percentile(firsts, 50) * 1000:.1f} ms  max {firsts[-1] * 1000:.1f} ms;"
        f" the others p95 {percentile(rest, 95) * 1000:.1f} ms  p99 {percentile(rest, 99) * 1000:.1f} ms"
    )
    print(f"double claims {doubles} (overlapping sessions of one order); orders with two open sessions: {still_open}")
    print(f"distinct orders handed out {len(by_order)}")


if __name__ == "__main__":
    main()
