"""Webhook intake under load: gunicorn on 127.0.0.1 against MariaDB and Redis, signed Shopify deliveries at a
fixed rate from a separate process; then RQ workers drain the inbox.

Prints deliveries/s, p50/p95/p99 acknowledgement latency, errors, duplicates answered, and orders stored once
after the drain (with the drain rate). Usage:

    .venv/bin/python bench/webhook_ingest.py [--rate 300] [--seconds 20] [--duplicates 0.05] [--workers 2]

Needs MariaDB on 127.0.0.1:3306 (root, no password) and Redis on 127.0.0.1:6379; uses its own database
`oms_bench_ingest` and Redis db 3, both wiped at the start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import time
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
from tests.emulators.shopify import order_payload, webhook_delivery

DATABASE_URL = "mysql://root@127.0.0.1:3306/oms_bench_ingest"
REDIS_URL = "redis://127.0.0.1:6379/3"
SECRET = "bench-webhook-secret"
SHOP = "bench-shop.myshopify.com"
PATH = "/webhooks/bench-shop/"


def build_deliveries(count: int, duplicate_share: float) -> list[tuple[dict[str, str], bytes]]:
    deliveries = []
    for i in range(count):
        payload = order_payload(id=7_000_000_000 + i, name=f"#B{i}", order_number=100_000 + i)
        deliveries.append(webhook_delivery("orders/create", payload, SECRET, shop_domain=SHOP))
    # Shopify redelivers: the same event id again, a new delivery id, the same body.
    every = int(1 / duplicate_share) if duplicate_share > 0 else 0
    if every:
        deliveries += [
            ({**h, "X-Shopify-Webhook-Id": f"redelivery-{n}"}, b) for n, (h, b) in enumerate(deliveries[::every])
        ]
    return deliveries


def _wire(host: str, headers: dict[str, str], body: bytes) -> bytes:
    """One delivery as the bytes of an HTTP/1.1 request, serialised before the clock starts."""
    lines = [f"POST {PATH} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[str, str]:
    """Send one request on a keep-alive connection; the status code and the answer's "status" field."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = head[9:12].decode()
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    answer = await reader.readexactly(length) if length else b""
    kind = json.loads(answer).get("status", "?") if status == "200" else "error"
    return status, kind


async def _load(base: str, deliveries: list, warmup: list, rate: float, connections: int) -> dict:
    """Open loop: delivery i is due at start + i/rate; its latency counts from when it was due, so a backlog shows.

    One process, one thread, an event loop over `connections` keep-alive connections, every request serialised
    in advance: the load generator shares the two cores with the server, so it must cost as little as possible.
    Each connection first sends a share of `warmup` (untimed), so that every gunicorn thread has its database
    connection and every module is imported before the clock starts.
    """
    host, port = base.removeprefix("http://").split(":")
    requests = [_wire(f"{host}:{port}", h, b) for h, b in deliveries]
    warm = [_wire(f"{host}:{port}", h, b) for h, b in warmup]
    latencies: list[float] = []
    due_at: list[float] = []
    statuses: dict[str, int] = {}
    bodies: dict[str, int] = {}
    ready = asyncio.Barrier(connections)
    clock = {"start": 0.0}

    async def connection(k: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for request in warm[k + connections :: connections]:
            await _exchange(reader, writer, request)
        await ready.wait()
        if not clock["start"]:  # the first connection past the barrier sets the clock for all
            clock["start"] = time.perf_counter() + 0.2
        start = clock["start"]
        for i in range(k, len(requests), connections):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                status, kind = await _exchange(reader, writer, requests[i])
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                status, kind = type(exc).__name__, "error"
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
            latencies.append(time.perf_counter() - due)
            due_at.append(due - start)
            statuses[status] = statuses.get(status, 0) + 1
            bodies[kind] = bodies.get(kind, 0) + 1
        writer.close()

    # Connect one at a time, each with an answered request before the next: opened all at once, most
    # connections land on whichever gunicorn worker wakes first, and stay there.
    opened = []
    for k in range(connections):
        reader, writer = await asyncio.open_connection(host, int(port))
        await _exchange(reader, writer, warm[k])
        opened.append((reader, writer))
    await asyncio.gather(*(connection(k, r, w) for k, (r, w) in enumerate(opened)))
    elapsed = time.perf_counter() - clock["start"]
    return {"latencies": latencies, "due_at": due_at, "statuses": statuses, "bodies": bodies, "elapsed": elapsed}


def load(base: str, deliveries: list, warmup: list, rate: float, connections: int, out: mp.Queue) -> None:
    out.put(asyncio.run(_load(base, deliveries, warmup, rate, connections)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300, help="deliveries per second to offer")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--duplicates", type=float, default=0.05, help="share of deliveries sent twice")
    parser.add_argument("--connections", type=int, default=24, help="client keep-alive connections")
    parser.add_argument("--workers", type=int, default=2, help="RQ workers that drain the inbox")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker")
    args = parser.parse_args()

    env = bench_env(DATABASE_URL, REDIS_URL)
    reset_mysql_database(DATABASE_URL)
    flush_redis(REDIS_URL)
    manage(env, "migrate", "--noinput")
    manage(
        env,
        "add_channel",
        "shopify",
        "bench-shop",
        "--name",
        "Bench shop",
        "--option",
        f"shop_domain={SHOP}",
        "--option",
        "access_token=shpat_bench",
        "--option",
        f"webhook_secret={SECRET}",
        "--option",
        "api_base_url=http://127.0.0.1:9",
    )
    print(f"waited {wait_for_idle_database():.0f} s for the database to go idle")
    unique = int(args.rate * args.seconds)
    deliveries = build_deliveries(unique, args.duplicates)
    warmup = [
        webhook_delivery("orders/create", order_payload(id=8_000_000_000 + i, name=f"#W{i}"), SECRET, shop_domain=SHOP)
        for i in range(args.connections * 10)
    ]
    # Spread the redeliveries through the run rather than at its end.
    deliveries.sort(key=lambda d: d[0]["X-Shopify-Triggered-At"])

    print(
        f"offering {len(deliveries)} deliveries ({unique} unique orders) at {args.rate:.0f}/s "
        f"over {len(deliveries) / args.rate:.1f} s, {args.connections} connections"
    )
    with gunicorn(env, workers=args.web_workers, threads=args.web_threads) as base:
        out: mp.Queue = mp.Queue()
        proc = mp.Process(target=load, args=(base, deliveries, warmup, args.rate, args.connections, out))
        proc.start()
        result = out.get()
        proc.join()

    lat_ms = [x * 1000 for x in result["latencies"]]
    print(f"achieved      {len(lat_ms) / result['elapsed']:.0f} deliveries/s over {result['elapsed']:.1f} s")
    print(
        f"ack latency   p50 {percentile(lat_ms, 50):.1f} ms  p95 {percentile(lat_ms, 95):.1f} ms  "
        f"p99 {percentile(lat_ms, 99):.1f} ms  max {max(lat_ms):.1f} ms"
    )
    per_second: dict[int, list[float]] = {}
    for due, ms in zip(result["due_at"], lat_ms, strict=True):
        per_second.setdefault(int(due), []).append(ms)
    worst = max(per_second, key=lambda s: percentile(per_second[s], 99))
    slow = sorted(s for s, v in per_second.items() if percentile(v, 99) > 50)
    print(
        f"by second     worst p99 {percentile(per_second[worst], 99):.1f} ms in second {worst}; "
        f"seconds with p99 > 50 ms: {len(slow)} of {len(per_second)} {slow if slow else ''}"
    )
    print(f"HTTP statuses {result['statuses']}; answers {result['bodies']}")
    errors = sum(v for k, v in result["statuses"].items() if k != "200")
    print(f"errors        {errors}")

    t0 = time.perf_counter()
    with rq_workers(env, args.workers):
        pass
    drain = time.perf_counter() - t0
    counts = json.loads(
        manage(
            env,
            "shell",
            "-c",
            (
                "import json; from oms.orders.models import Order; from oms.core.models import InboundEvent as E; "
                "from django.db.models import Count; "
                "print(json.dumps({'orders': Order.objects.count(), "
                "'distinct': Order.objects.values('external_id').distinct().count(), "
                "'events': dict(E.objects.values_list('status').annotate(n=Count('id')))}))"
            ),
        )
        .strip()
        .splitlines()[-1]
    )
    print(
        f"drained       {counts['events']} inbox events in {drain:.1f} s with {args.workers} workers "
        f"({unique / drain:.0f} orders/s, process start-up included)"
    )
    expected = unique + len(warmup)
    ok = counts["orders"] == counts["distinct"] == expected
    print(
        f"orders stored {counts['orders']} (expected {expected} incl. {len(warmup)} warm-up, "
        f"each once: {'yes' if ok else 'NO'})"
    )


if __name__ == "__main__":
    main()
