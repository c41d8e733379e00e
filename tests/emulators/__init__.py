"""Emulators of the channels' and carriers' APIs: servers on 127.0.0.1 speaking each vendor's wire format.

`VirtualClock` lets a test run an adapter's waits (rate limits, backoff) and an emulator's bucket on one
simulated clock: pass `clock.sleep`/`clock.monotonic` to the adapter and `clock.monotonic` to the emulator.
"""

from __future__ import annotations

import threading


class VirtualClock:
    """A monotonic clock that only moves when something sleeps on it; records every sleep."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(seconds, 0.0)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    @property
    def slept(self) -> float:
        return sum(self.sleeps)
