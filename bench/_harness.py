"""Shared pieces of the benchmarks: a throwaway MariaDB database, gunicorn, RQ workers, percentiles.

Benchmarks print figures; they never pass or fail on timing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
WORKER_CLASS = "rq.worker.SimpleWorker"


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_env(database_url: str, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="oms.settings.production",
        SECRET_KEY="bench-only-" + "x" * 60,
        FIELD_ENCRYPTION_KEYS="YmVuY2gtb25seS1rZXktMDEyMzQ1Njc4OWFiY2RlZmc=",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return out.stdout


def reset_mysql_database(database_url: str) -> None:
    """Drop and create the benchmark's own database (never the app's)."""
    import MySQLdb  # mysqlclient

    name = database_url.rsplit("/", 1)[1]
    if not name.startswith("oms_bench"):
        raise SystemExit(f"refusing to reset {name!r}: benchmark databases are named oms_bench*")
    conn = MySQLdb.connect(host="127.0.0.1", user="root", port=3306)
    cur = conn.cursor()
    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    conn.close()


def wait_for_idle_database(*, max_wait: float = 180.0, busy_share: float = 0.05) -> float:
    """Wait until mariadbd/mysqld uses under `busy_share` of a core, so a run does not measure the purge and
    page flushing an earlier run (or its drain) left behind. Returns the seconds waited."""
    pids = subprocess.run(["pidof", "mariadbd", "mysqld"], capture_output=True, text=True).stdout.split()
    if not pids:
        return 0.0
    stat = Path(f"/proc/{pids[0]}/stat")
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_seconds() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    began = time.monotonic()
    while time.monotonic() - began < max_wait:
        before = cpu_seconds()
        time.sleep(2)
        if (cpu_seconds() - before) / 2 < busy_share:
            break
    return time.monotonic() - began


def flush_redis(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()


@contextlib.contextmanager
def gunicorn(env: dict[str, str], *, workers: int = 4, threads: int = 4) -> Iterator[str]:
    # Production settings keep a manifest of static files: on a fresh clone, without it, every page that links a
    # stylesheet answers 500 (bench/packing.py's sign-in page did, unnoticed) and WhiteNoise warns at start-up.
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    port = free_port()
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "oms.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/healthz/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("gunicorn did not start")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@contextlib.contextmanager
def rq_workers(
    env: dict[str, str], count: int, queues: tuple[str, ...] = ("default",), *, burst: bool = True
) -> Iterator[None]:
    """`count` workers of the kind deployments run (no fork per job); their logs go to bench/results/.

    Burst workers drain the queues and the block waits for them to finish; long-running ones (burst=False)
    serve while the block runs and are stopped (SIGTERM) when it ends."""
    log_dir = ROOT / "bench" / "results"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for n in range(count):
        with open(log_dir / f"worker-{n}.log", "w") as log:
            procs.append(
                subprocess.Popen(
                    [
                        PYTHON,
                        "manage.py",
                        "rqworker",
                        *queues,
                        *(["--burst"] if burst else []),
                        "--worker-class",
                        WORKER_CLASS,
                    ],
                    cwd=ROOT,
                    env=env,
                    start_new_session=True,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        yield
        if burst:
            for p in procs:
                p.wait(timeout=3600)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=30)
