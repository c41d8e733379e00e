"""A small client for Shopify's GraphQL Admin API over requests, paced by Shopify's calculated query cost.

It speaks HTTP and GraphQL errors only; what a query means is the adapter's business. Its retries are safe
for queries; a mutation must carry its own idempotency key (`@idempotent`) before it goes through `execute`.
Pacing goes through a RateLimiter (channels_adapters.base), which may be shared with other clients of the app.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from channels_adapters.base import (
    PACE_MARGIN,
    AuthenticationFailed,
    ChannelError,
    LocalBucket,
    RateLimiter,
    Throttled,
)

__all__ = ["PACE_MARGIN", "QueryCost", "QueryCostExceeded", "ShopifyGraphQLClient", "ThrottleStatus"]

USER_AGENT = "oms-shopify-adapter/1.0 (+requests)"
DEFAULT_RETRY_AFTER = 2.0  # seconds, when a 429 comes without a usable Retry-After
THROTTLE_JITTER = 0.25  # at most this many seconds added to a computed throttle wait, so workers spread out


class QueryCostExceeded(ChannelError):
    """The query asks for more than Shopify's single-query cost limit: ask for fewer objects per page."""

    retryable = False

    def __init__(self, message: str, *, cost: float | None, max_cost: float | None) -> None:
        super().__init__(message)
        self.cost = cost
        self.max_cost = max_cost


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    """The app's cost bucket as Shopify last reported it, and when (on the client's clock) we learnt it."""

    maximum_available: float
    currently_available: float
    restore_rate: float
    observed_at: float


@dataclass(frozen=True, slots=True)
class QueryCost:
    requested: float | None
    actual: float | None
    throttle: ThrottleStatus | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _error_messages(errors: Any) -> list[str]:
    if isinstance(errors, str):
        return [errors]
    if isinstance(errors, Mapping):
        return [f"{key}: {value}" for key, value in errors.items()]
    if isinstance(errors, list):
        messages = []
        for error in errors:
            if isinstance(error, Mapping):
                messages.append(str(error.get("message") or error))
            else:
                messages.append(str(error))
        return messages
    return [str(errors)]


def _error_codes(errors: Any) -> set[str]:
    codes: set[str] = set()
    if isinstance(errors, list):
        for error in errors:
            if isinstance(error, Mapping):
                extensions = error.get("extensions")
                if isinstance(extensions, Mapping) and isinstance(extensions.get("code"), str):
                    codes.add(extensions["code"])
    return codes


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: Shopify sends seconds, so fall back to the default
    return max(0.0, seconds)


class ShopifyGraphQLClient:
    """POSTs to `/admin/api/{version}/graphql.json`, pacing by cost and retrying what is worth retrying.

    Before each call it reserves the call's cost (the caller's estimate, else what Shopify priced the same query
    at last time) from `limiter`, waits as long as the limiter says, and afterwards reports what Shopify said
    of its bucket; a THROTTLED answer or a 429 penalises every client sharing the limiter.

    `sleep` and `clock` are injectable so that tests can record waits instead of waiting; `calls` counts every
    HTTP attempt (throttled and failed ones included), for OrderPage.calls and the benchmarks.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        access_token: str,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_throttle_retries: int = 6,
        max_transient_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        rng: random.Random | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._access_token = access_token
        self._timeout = timeout
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self.max_throttle_retries = max_throttle_retries
        self.max_transient_retries = max_transient_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.calls = 0
        self.last_cost: QueryCost | None = None
        self._limiter: RateLimiter = limiter if limiter is not None else LocalBucket(clock=clock)
        self._bucket: ThrottleStatus | None = None
        self._query_costs: dict[str, float] = {}  # last requestedQueryCost per query text

    # ---------------------------------------------------------------------------------------------- public

    def execute(
        self, query: str, variables: Mapping[str, Any] | None = None, *, expected_cost: float | None = None
    ) -> dict[str, Any]:
        """Run one GraphQL operation and return its `data`; raise a ChannelError subclass on failure."""
        body: dict[str, Any] = {"query": query}
        if variables:
            body["variables"] = dict(variables)
        headers = {
            "X-Shopify-Access-Token": self._access_token,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        throttled = 0
        transient = 0
        while True:
            reserved = expected_cost if expected_cost is not None else self._query_costs.get(query, 0.0)
            self._do_sleep(self._limiter.reserve(reserved))
            self.calls += 1
            try:
                response = self._session.post(self.endpoint, json=body, headers=headers, timeout=self._timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if not isinstance(exc, requests.ReadTimeout):
                    self._limiter.refund(reserved)  # never reached Shopify (a read timeout may have run)
                transient = self._back_off(transient, f"could not reach Shopify at {self.endpoint}: {exc}")
                continue

            status = response.status_code
            if status in (401, 403):
                raise AuthenticationFailed(
                    f"Shopify refused the access token (HTTP {status}): {self._response_errors(response)}"
                )
            if status == 429:
                self._limiter.refund(reserved)  # refused before running: nothing was charged
                wait = _retry_after(response.headers.get("Retry-After")) or DEFAULT_RETRY_AFTER
                throttled = self._wait_throttled(throttled, wait, "Shopify answered 429 Too Many Requests")
                continue
            if status >= 500:
                self._limiter.refund(reserved)
                transient = self._back_off(
                    transient, f"Shopify answered HTTP {status}: {self._response_errors(response)}"
                )
                continue
            if status != 200:
                raise ChannelError(
                    f"Shopify answered HTTP {status}: {self._response_errors(response)}", retryable=False
                )
            try:
                payload = response.json()
            except ValueError:
                transient = self._back_off(transient, "Shopify answered 200 with a body that is not JSON")
                continue
            if not isinstance(payload, dict):
                raise ChannelError("Shopify answered 200 with JSON that is not an object", retryable=False)

            errors = payload.get("errors")
            codes = _error_codes(errors) if errors else set()
            cost = self._observe_cost(query, payload, reserved, charged="THROTTLED" not in codes)
            if errors and cost is None:
                self._limiter.refund(reserved)  # refused without a price (bad query, too costly): not run
            if errors:
                messages = "; ".join(_error_messages(errors))
                if "THROTTLED" in codes:
                    throttled = self._wait_throttled(
                        throttled,
                        self._throttle_wait(cost, expected_cost),
                        f"Shopify throttled the query: {messages}",
                    )
                    continue
                if "INTERNAL_SERVER_ERROR" in codes:
                    transient = self._back_off(transient, f"Shopify had an internal error: {messages}")
                    continue
                if "MAX_COST_EXCEEDED" in codes:
                    raise QueryCostExceeded(
                        f"Shopify refused the query as too costly: {messages}",
                        cost=self._max_cost_detail(errors, "cost"),
                        max_cost=self._max_cost_detail(errors, "maxCost"),
                    )
                if "ACCESS_DENIED" in codes:
                    raise ChannelError(f"the Shopify app lacks an access scope: {messages}", retryable=False)
                raise ChannelError(f"Shopify GraphQL error: {messages}", retryable=False)
            data = payload.get("data")
            if not isinstance(data, dict):
                raise ChannelError("Shopify answered without `data` and without `errors`", retryable=False)
            return data

    @property
    def throttle_status(self) -> ThrottleStatus | None:
        return self._bucket

    def close(self) -> None:
        self._session.close()

    # ------------------------------------------------------------------------------------------- pacing

    def _throttle_wait(self, cost: QueryCost | None, expected_cost: float | None) -> float:
        bucket = cost.throttle if cost else None
        requested = (cost.requested if cost else None) or expected_cost
        if bucket is None or bucket.restore_rate <= 0:
            return DEFAULT_RETRY_AFTER
        if requested is None:
            requested = bucket.maximum_available
        if requested > bucket.maximum_available:
            raise ChannelError(
                f"the query costs {requested:g} points but the bucket holds at most "
                f"{bucket.maximum_available:g}: it can never run; ask for fewer objects",
                retryable=False,
            )
        deficit = max(requested - bucket.currently_available, 0.0)
        return deficit / bucket.restore_rate + self._rng.uniform(0.0, THROTTLE_JITTER)

    def _wait_throttled(self, attempts: int, wait: float, message: str) -> int:
        """Give up, or make everyone sharing the limiter hold off; the next reserve() then says how long."""
        if attempts >= self.max_throttle_retries:
            raise Throttled(f"{message} (gave up after {attempts + 1} tries)", retry_after=wait)
        self._limiter.penalize(wait)
        return attempts + 1

    def _back_off(self, attempts: int, message: str) -> int:
        """Exponential backoff with "equal jitter" (half fixed, half random) for transient failures."""
        if attempts >= self.max_transient_retries:
            raise ChannelError(f"{message} (gave up after {attempts + 1} tries)", retryable=True)
        ceiling = min(self.backoff_cap, self.backoff_base * (2**attempts))
        self._do_sleep(ceiling / 2 + self._rng.uniform(0.0, ceiling / 2))
        return attempts + 1

    def _do_sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self._sleep(seconds)

    # ------------------------------------------------------------------------------------------ parsing

    def _observe_cost(
        self, query: str, payload: Mapping[str, Any], reserved: float, *, charged: bool
    ) -> QueryCost | None:
        """Learn the query's price, give back what was reserved but not charged, and report the bucket."""
        extensions = payload.get("extensions")
        cost = extensions.get("cost") if isinstance(extensions, Mapping) else None
        if not isinstance(cost, Mapping):
            return None
        requested = _number(cost.get("requestedQueryCost"))
        actual = _number(cost.get("actualQueryCost"))
        # Shopify charges the actual cost of a call it ran, nothing for one it throttled.
        spent = (actual if actual is not None else requested) if charged else 0.0
        if spent is not None and reserved > spent:
            self._limiter.refund(reserved - spent)
        status = cost.get("throttleStatus")
        bucket: ThrottleStatus | None = None
        if isinstance(status, Mapping):
            maximum = _number(status.get("maximumAvailable"))
            available = _number(status.get("currentlyAvailable"))
            rate = _number(status.get("restoreRate"))
            if maximum is not None and available is not None and rate is not None:
                bucket = ThrottleStatus(maximum, available, rate, self._clock())
                self._bucket = bucket
                self._limiter.observe(available=available, maximum=maximum, restore_rate=rate)
        if requested is not None:
            self._query_costs[query] = requested
        self.last_cost = QueryCost(requested, actual, bucket)
        return self.last_cost

    @staticmethod
    def _max_cost_detail(errors: Any, key: str) -> float | None:
        if isinstance(errors, list):
            for error in errors:
                extensions = error.get("extensions") if isinstance(error, Mapping) else None
                if isinstance(extensions, Mapping) and key in extensions:
                    return _number(extensions[key])
        return None

    @staticmethod
    def _response_errors(response: requests.Response) -> str:
        try:
            payload = response.json()
        except ValueError:
            text = response.text.strip()
            return text[:200] or response.reason or "no body"
        if isinstance(payload, Mapping) and "errors" in payload:
            return "; ".join(_error_messages(payload["errors"]))
        return str(payload)[:200]
