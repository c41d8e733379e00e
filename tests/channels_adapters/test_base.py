"""The contract's own machinery: LocalBucket, the in-process RateLimiter every adapter defaults to."""

from __future__ import annotations

import threading

import pytest

from channels_adapters.base import PACE_MARGIN, LocalBucket, RateLimiter
from tests.emulators import VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def test_local_bucket_is_a_rate_limiter() -> None:
    assert isinstance(LocalBucket(), RateLimiter)


def test_until_the_channel_reports_nothing_waits(clock: VirtualClock) -> None:
    bucket = LocalBucket(clock=clock.monotonic)

    assert [bucket.reserve(500) for _ in range(10)] == [0.0] * 10
    assert bucket.available is None


def test_the_first_report_counts_what_was_let_through_before_it(clock: VirtualClock) -> None:
    bucket = LocalBucket(clock=clock.monotonic)
    bucket.reserve(16)
    bucket.reserve(16)
    bucket.refund(1)  # the first call cost 15

    bucket.observe(available=34, maximum=50, restore_rate=10)

    # Whether the report had seen the second call or not, the bucket assumes it had not.
    assert bucket.available == 34 - 31


def test_a_known_bucket_makes_callers_queue_for_points(clock: VirtualClock) -> None:
    bucket = LocalBucket(maximum=100, restore_rate=10, clock=clock.monotonic)

    waits = [bucket.reserve(40) for _ in range(4)]

    assert waits == [0.0, 0.0, pytest.approx(2.0 + PACE_MARGIN), pytest.approx(6.0 + PACE_MARGIN)]
    assert bucket.available == pytest.approx(-60)


def test_the_bucket_leaks_back_up_to_its_maximum(clock: VirtualClock) -> None:
    bucket = LocalBucket(maximum=100, restore_rate=10, clock=clock.monotonic)
    bucket.reserve(100)

    clock.advance(3)
    assert bucket.available == pytest.approx(30)
    clock.advance(60)
    assert bucket.available == pytest.approx(100)


def test_a_report_lowers_the_level_but_never_raises_it(clock: VirtualClock) -> None:
    bucket = LocalBucket(maximum=100, restore_rate=10, clock=clock.monotonic)
    bucket.reserve(30)  # in flight: the channel has not seen it yet

    bucket.observe(available=100, maximum=100, restore_rate=10)
    assert bucket.available == pytest.approx(70)
    bucket.observe(available=20, maximum=100, restore_rate=10)  # someone else spent it
    assert bucket.available == pytest.approx(20)


def test_a_refund_gives_back_what_was_not_charged(clock: VirtualClock) -> None:
    bucket = LocalBucket(maximum=100, restore_rate=10, clock=clock.monotonic)
    bucket.reserve(90)

    bucket.refund(60)
    bucket.refund(-5)  # ignored

    assert bucket.available == pytest.approx(70)


def test_a_penalty_holds_everyone_back(clock: VirtualClock) -> None:
    bucket = LocalBucket(maximum=100, restore_rate=10, clock=clock.monotonic)

    bucket.penalize(4)
    clock.advance(1)

    assert bucket.reserve(10) == pytest.approx(3)
    assert bucket.reserve(0) == pytest.approx(3)
    assert bucket.reserve(100) == pytest.approx(3), "10 points short: 1 s, within the penalty"
    assert bucket.reserve(100) == pytest.approx(110 / 10 + PACE_MARGIN), "110 points short: longer than it"
    clock.advance(3)
    bucket.penalize(1)
    bucket.penalize(0.5)  # a shorter penalty does not shorten a longer one
    assert bucket.reserve(0) == pytest.approx(1)


def test_a_call_dearer_than_the_bucket_still_gets_a_turn(clock: VirtualClock) -> None:
    bucket = LocalBucket(maximum=100, restore_rate=10, clock=clock.monotonic)
    bucket.reserve(100)

    assert bucket.reserve(5000) == pytest.approx(10 + PACE_MARGIN)


def test_threads_get_distinct_turns(clock: VirtualClock) -> None:
    bucket = LocalBucket(maximum=100, restore_rate=100, clock=clock.monotonic)
    bucket.reserve(100)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        wait = bucket.reserve(10)
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(waits) == pytest.approx([(n + 1) * 0.1 + PACE_MARGIN for n in range(50)])
