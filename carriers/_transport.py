"""HTTP plumbing for the carrier adapters that speak plain HTTP (DPD, GLS, Packeta): one place for the rules.

- Every call has a timeout (the account's `CarrierConfig.timeout`).
- A *safe* call (tracking, a token, downloading the label of a parcel that exists, a look-up) is retried on a
  connection error, a timeout or a 5xx, with exponential backoff and "equal jitter", a few times.
- An *unsafe* call (one that books a shipment or cancels one) is sent once: a timeout or a 5xx leaves its
  outcome unknown, so it raises CarrierUnavailable and the OMS decides what to do (see carriers/base.py).
- A 429 raises CarrierUnavailable with the carrier's Retry-After (seconds or an HTTP date), retried by nobody
  here: the OMS's queue waits that long.
- `CarrierUnavailable.request_sent` is False when no attempt of the call reached the carrier (every one was
  refused before connecting, or throttled with a 429): the OMS then knows nothing was booked.

What a 4xx means is the adapter's business: `request` hands back every response below 500 except 429.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from carriers.base import CarrierUnavailable

USER_AGENT = "oms-carrier-adapter/1.0 (+requests)"


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date (RFC 9110); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


class Transport:
    """A requests.Session with the carrier rules above; `calls` counts every HTTP attempt."""

    def __init__(
        self,
        *,
        carrier: str,
        timeout: float,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
    ) -> None:
        self.carrier = carrier
        self.timeout = timeout
        self.session = session or requests.Session()
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.calls = 0

    def request(
        self,
        method: str,
        url: str,
        *,
        safe: bool,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request (retrying a safe one); raise CarrierUnavailable for outages and throttles."""
        sent_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        attempt = 0
        reached = False  # whether any attempt so far may have got to the carrier (CarrierUnavailable.request_sent)
        while True:
            self.calls += 1
            try:
                response = self.session.request(method, url, headers=sent_headers, timeout=self.timeout, **kwargs)
            except (requests.Timeout, requests.ConnectionError) as exc:
                # A connect timeout is both; either way, one that never connected never reached the carrier.
                reached = reached or not _never_connected(exc)
                if isinstance(exc, requests.Timeout):
                    problem = f"{self.carrier} did not answer within {self.timeout:g} s ({exc.__class__.__name__})"
                else:
                    problem = f"could not reach {self.carrier} at {url}: {exc.__class__.__name__}"
                if safe and attempt < self.max_retries:
                    attempt = self._back_off(attempt)
                    continue
                if not reached:
                    tries = f" (gave up after {attempt + 1} tries)" if safe else ""
                    raise CarrierUnavailable(
                        f"{problem}{tries}; the request never reached {self.carrier}", request_sent=False
                    ) from exc
                raise CarrierUnavailable(self._unknown(problem, safe)) from exc

            status = response.status_code
            if status == 429:  # refused before any work: only an earlier try of this call may have done some
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                raise CarrierUnavailable(
                    f"{self.carrier} is throttling this account (HTTP 429); try again"
                    + (f" in {wait:g} s" if wait is not None else " later"),
                    retry_after=wait,
                    request_sent=reached,
                )
            reached = True
            if status >= 500:
                problem = f"{self.carrier} answered HTTP {status}: {_snippet(response)}"
                if safe and attempt < self.max_retries:
                    attempt = self._back_off(attempt)
                    continue
                raise CarrierUnavailable(self._unknown(problem, safe))
            return response

    def close(self) -> None:
        self.session.close()

    def _unknown(self, problem: str, safe: bool) -> str:
        if safe:
            return f"{problem} (gave up after {self.max_retries + 1} tries)"
        return f"{problem}; whether {self.carrier} acted on the request is unknown, so it was not sent again"

    def _back_off(self, attempt: int) -> int:
        ceiling = min(self.backoff_cap, self.backoff_base * (2**attempt))
        self._sleep(ceiling / 2 + self._rng.uniform(0.0, ceiling / 2))
        return attempt + 1


def _never_connected(exc: BaseException) -> bool:
    """True when no connection was made at all (refused, unresolvable host, connect timeout)."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError | ConnectTimeoutError | requests.ConnectTimeout):
            return True
        if isinstance(current, BaseException):
            pending.extend(current.args)
            pending.append(getattr(current, "reason", None))
            pending.append(current.__cause__)
    return False


def _snippet(response: requests.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:200] or response.reason or "no body"
