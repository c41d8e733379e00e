"""Work lists against a real Redis: every pushed id is handled exactly once, whoever drains it."""

from __future__ import annotations

import pytest
from rq import SimpleWorker

from oms.core.queue import WORKLISTS, WorkList, get_queue, worklist_drain, worklist_push, worklist_register

HANDLED: list[int] = []


def record(item: int) -> None:
    if item == 13:
        raise RuntimeError("unlucky")
    HANDLED.append(item)


LIST = worklist_register(WorkList(name="test-list", handler="tests.oms.core.test_worklist.record", batch=10))


@pytest.fixture
def redis_queues(settings, redis_url):
    url = redis_url.rsplit("/", 1)[0] + "/13"
    settings.OMS_JOBS_INLINE = False
    settings.RQ_QUEUES = {name: {"URL": url} for name in ("high", "default", "low")}
    queue = get_queue("default")
    queue.connection.flushdb()
    HANDLED.clear()
    yield queue
    queue.connection.flushdb()


def test_pushes_start_one_drainer_and_a_worker_handles_every_id_once(redis_queues):
    for item in range(1, 31):
        assert worklist_push(LIST, item)
    assert redis_queues.count == 1  # one drainer job, not thirty
    assert redis_queues.connection.llen(LIST.key) == 30
    SimpleWorker([redis_queues], connection=redis_queues.connection).work(burst=True)
    assert sorted(HANDLED) == [i for i in range(1, 31) if i != 13]  # a failing id does not stop the others
    assert redis_queues.connection.llen(LIST.key) == 0
    assert not redis_queues.connection.exists(LIST.slot_key(0), LIST.slot_key(1))


def test_a_push_while_the_drainer_holds_its_slot_is_picked_up_by_that_drainer(redis_queues):
    conn = redis_queues.connection
    conn.set(LIST.slot_key(0), 1)  # a drainer is running
    worklist_push(LIST, 1, 2, 3)
    assert redis_queues.count == 0  # nobody new started
    assert worklist_drain(LIST.name, 0) == 3
    assert sorted(HANDLED) == [1, 2, 3]
    assert not conn.exists(LIST.slot_key(0))


def test_a_deep_backlog_starts_a_second_drainer(redis_queues):
    conn = redis_queues.connection
    conn.set(LIST.slot_key(0), 1)
    worklist_push(LIST, *range(100, 150))
    assert worklist_drain(LIST.name, 0) == 50
    assert redis_queues.count == 1  # slot 1 was asked for while the backlog was deep
    SimpleWorker([redis_queues], connection=redis_queues.connection).work(burst=True)
    assert sorted(HANDLED) == list(range(100, 150))  # each once: the helper found what was left, or nothing
    assert not conn.exists(LIST.slot_key(0), LIST.slot_key(1))


def test_a_drainer_out_of_time_hands_over_to_a_fresh_job(redis_queues, monkeypatch):
    conn = redis_queues.connection
    short = WorkList(name="test-list", handler=LIST.handler, batch=10, drainers=1, max_seconds=0.0)
    monkeypatch.setitem(WORKLISTS, "test-list", short)
    conn.set(short.slot_key(0), 1)
    worklist_push(short, *range(200, 225))
    assert worklist_drain(short.name, 0) == 10  # one batch, then hand over
    assert redis_queues.count == 1
    assert conn.exists(short.slot_key(0))
    SimpleWorker([redis_queues], connection=redis_queues.connection).work(burst=True)
    assert sorted(HANDLED) == list(range(200, 225))
    assert conn.llen(short.key) == 0


def test_redis_down_reports_false(settings):
    settings.OMS_JOBS_INLINE = False
    settings.RQ_QUEUES = {name: {"URL": "redis://127.0.0.1:1/0"} for name in ("high", "default", "low")}
    assert worklist_push(LIST, 1) is False


def test_inline_mode_runs_the_handler_at_once(settings):
    settings.OMS_JOBS_INLINE = True
    HANDLED.clear()
    assert worklist_push(LIST, 7, 8)
    assert HANDLED == [7, 8]


def test_a_drainer_hands_over_when_urgent_jobs_wait(redis_queues):
    conn = redis_queues.connection
    conn.set(LIST.slot_key(0), 1)
    worklist_push(LIST, *range(300, 330))
    get_queue("high").enqueue("tests.oms.core.test_worklist.record", 1)  # a stock push waiting
    assert worklist_drain(LIST.name, 0) == 10  # one batch, then make way
    assert redis_queues.count == 2  # its successor (and the helper slot 1) wait behind the urgent job
    get_queue("high").empty()
    SimpleWorker([redis_queues], connection=redis_queues.connection).work(burst=True)
    assert sorted(HANDLED) == list(range(300, 330))
