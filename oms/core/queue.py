"""Enqueueing jobs by dotted name after the current transaction commits.

With no Redis configured (settings.OMS_JOBS_INLINE) the job runs inline through RQ's synchronous mode on an
in-process fake Redis, so the embedded default needs no server. If Redis is down when a job should be
enqueued, the failure is logged and swallowed: the caller's rows are committed and a sweeper picks them up.
"""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import django_rq
from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
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


# ---------------------------------------------------------------------------------------------------------
# Work lists: ids handed from the request path to a worker with one Redis round trip


@dataclass(frozen=True, slots=True)
class WorkList:
    """Ids waiting for one handler, drained in batches by at most `drainers` jobs at a time.

    Pushing an id costs one pipelined LPUSH + SET NX; an RQ job is enqueued only when no drainer holds slot 0.
    A drainer holds its slot key while it works (renewed every batch), so at most `drainers` run at once, and
    slot 0 starts slot 1 and so on when the backlog is more than one batch deep. An id popped by a drainer
    that then died is not lost: the rows it stands for are still pending in the database, and the owner's
    sweeper re-enqueues whatever waited too long. The handler must therefore be idempotent.
    """

    name: str
    handler: str  # dotted path of a function taking one int id
    queue: str = "default"
    drainers: int = 2
    batch: int = 25
    lease_seconds: int = 120
    max_seconds: float = 60.0  # a drainer hands over to a fresh job after this long, so no job runs forever
    yield_to: tuple[str, ...] = ("high",)  # queues whose waiting jobs make a drainer hand over between batches

    @property
    def key(self) -> str:
        return f"oms:worklist:{self.name}"

    def slot_key(self, slot: int) -> str:
        return f"oms:worklist:{self.name}:drainer:{slot}"


WORKLISTS: dict[str, WorkList] = {}
DRAIN_JOB = "oms.core.queue.worklist_drain"


def worklist_register(worklist: WorkList) -> WorkList:
    WORKLISTS[worklist.name] = worklist
    return worklist


def _worklist_connection(worklist: WorkList) -> Redis:
    return get_queue(worklist.queue).connection


def _start_drainer(worklist: WorkList, slot: int) -> bool:
    return enqueue_now(
        DRAIN_JOB, worklist.name, slot, queue=worklist.queue, job_timeout=int(worklist.max_seconds * 5) + 60
    )


def worklist_push(worklist: WorkList, *ids: int) -> bool:
    """Hand ids to the work list's drainers; True when handed over (or run inline), False when Redis is down."""
    if settings.OMS_JOBS_INLINE:
        for item in ids:
            enqueue_now(worklist.handler, item, queue=worklist.queue)
        return True
    try:
        pipe = _worklist_connection(worklist).pipeline(transaction=True)
        pipe.lpush(worklist.key, *ids)
        pipe.set(worklist.slot_key(0), 1, nx=True, ex=worklist.lease_seconds)
        _, claimed = pipe.execute()
    except RedisError:
        logger.warning("could not push %r to %s: Redis unreachable; a sweeper will retry", ids, worklist.name)
        return False
    if not claimed or _start_drainer(worklist, 0):
        return True
    with suppress(RedisError):  # let the next push try to start a drainer, not only the sweeper
        _worklist_connection(worklist).delete(worklist.slot_key(0))
    return False


def worklist_push_after_commit(worklist: WorkList, *ids: int) -> None:
    transaction.on_commit(lambda: worklist_push(worklist, *ids), robust=True)


def _more_urgent_work(worklist: WorkList) -> bool:
    return any(get_queue(name).count for name in worklist.yield_to if name != worklist.queue)


def worklist_drain(name: str, slot: int = 0) -> int:
    """The drainer job: pop batches and call the handler on each id until the list is empty. Returns how many."""
    worklist = WORKLISTS[name]
    handler = import_string(worklist.handler)
    conn = _worklist_connection(worklist)
    slot_key = worklist.slot_key(slot)
    started = time.monotonic()
    done = 0
    while True:
        if done and (time.monotonic() - started > worklist.max_seconds or _more_urgent_work(worklist)):
            # Hand over to a fresh job (behind the urgent ones) rather than run for ever.
            conn.delete(slot_key)
            claimed = conn.llen(worklist.key) and conn.set(slot_key, 1, nx=True, ex=worklist.lease_seconds)
            if claimed and not _start_drainer(worklist, slot):
                conn.delete(slot_key)
            return done
        raw = conn.rpop(worklist.key, worklist.batch)
        if not raw:
            conn.delete(slot_key)
            # A push between our last pop and the delete saw the slot taken and started nobody: look again.
            if conn.llen(worklist.key) and conn.set(slot_key, 1, nx=True, ex=worklist.lease_seconds):
                continue
            return done
        conn.expire(slot_key, worklist.lease_seconds)
        if slot + 1 < worklist.drainers and conn.llen(worklist.key) > worklist.batch:
            helper_key = worklist.slot_key(slot + 1)
            if conn.set(helper_key, 1, nx=True, ex=worklist.lease_seconds) and not _start_drainer(worklist, slot + 1):
                conn.delete(helper_key)
        for item in raw:
            try:
                handler(int(item))
            except Exception:  # the handler records its own failure on its row; the owner's sweeper retries
                logger.exception("%s: handler failed on %s", name, item)
            done += 1
