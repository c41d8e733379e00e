"""Enqueueing jobs by dotted name after the current transaction commits.

With no Redis configured (settings.OMS_JOBS_INLINE) the job runs inline through RQ's synchronous mode on an
in-process fake Redis, so the embedded default needs no server. If Redis is down when a job should be
enqueued, the failure is logged and swallowed: the caller's rows are committed and a sweeper picks them up.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import django_rq
from django.conf import settings
from django.db import transaction
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _inline_connection() -> Any:
    import fakeredis

    return fakeredis.FakeRedis()


@lru_cache(maxsize=8)
def _connection(url: str) -> Redis:
    # One connection pool per process and URL: building one per enqueue costs a TCP handshake every time.
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)


def get_queue(name: str) -> Queue:
    if settings.OMS_JOBS_INLINE:
        return django_rq.get_queue(name, is_async=False, connection=_inline_connection())
    config = settings.RQ_QUEUES[name]
    if "URL" in config:
        return django_rq.get_queue(name, connection=_connection(config["URL"]))
    return django_rq.get_queue(name)


def enqueue_now(
    func: str,
    *args: Any,
    queue: str = "default",
    job_id: str | None = None,
    retry: Retry | None = None,
    at_front: bool = False,
    job_timeout: int | None = None,
) -> bool:
    """Enqueue at once; True when it was handed to the queue (or ran inline), False when Redis was unreachable."""
    try:
        get_queue(queue).enqueue(func, *args, job_id=job_id, retry=retry, at_front=at_front, job_timeout=job_timeout)
    except RedisError:
        logger.warning("could not enqueue %s%r on %s: Redis unreachable; a sweeper will retry", func, args, queue)
        return False
    return True


def enqueue_after_commit(func: str, *args: Any, queue: str = "default", **options: Any) -> None:
    """Enqueue `func` (a dotted path) with `args` once the surrounding transaction has committed."""
    transaction.on_commit(lambda: enqueue_now(func, *args, queue=queue, **options), robust=True)
