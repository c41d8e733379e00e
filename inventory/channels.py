"""The bridge between stored channels and their adapters: build a ChannelConfig, get the adapter with the
channel's shared rate limiter, configure a channel.

Lives in the lowest layer that may import the adapters (the core may not), so that stock fan-out and order
intake both reach it.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from channels_adapters.base import ChannelAdapter, ChannelConfig, LocalBucket
from channels_adapters.registry import adapter_class, adapter_for
from oms.core.models import SalesChannel
from oms.core.queue import get_queue
from oms.core.services import Actor, channel_save

T = TypeVar("T")


def channel_config(channel: SalesChannel) -> ChannelConfig:
    return ChannelConfig(
        slug=channel.slug,
        api_base_url=channel.api_base_url,
        credentials=dict(channel.credentials),
        webhook_secrets=tuple(channel.webhook_secrets()),
        options=dict(channel.options),
    )


def adapter_for_channel(channel: SalesChannel) -> ChannelAdapter:
    """The channel's adapter, paced by the limiter every worker shares for this channel."""
    return adapter_for(channel.kind, channel_config(channel), limiter=SharedBucket(f"channel:{channel.pk}"))


class SharedBucket:
    """A RateLimiter shared by every worker process: LocalBucket's arithmetic on state kept in Redis.

    Each operation takes a short Redis lock, loads the bucket, applies the operation and saves it. With no
    Redis (the embedded default: one process, jobs inline) the state lives in the Django cache under a
    cache lock. The wall clock is used, since the state crosses processes.
    """

    _FIELDS = ("_maximum", "_rate", "_level", "_unseen", "_at", "_not_before")
    TTL = 3600

    def __init__(self, name: str) -> None:
        self.key = f"oms:ratelimit:{name}"

    @contextmanager
    def _state(self) -> Iterator[LocalBucket]:
        with self._lock():
            raw = self._get()
            bucket = LocalBucket(clock=time.time)
            if raw:
                for name, value in json.loads(raw).items():
                    setattr(bucket, name, -math.inf if value is None and name == "_not_before" else value)
            yield bucket
            state = {name: getattr(bucket, name) for name in self._FIELDS}
            if state["_not_before"] == -math.inf:
                state["_not_before"] = None
            self._set(json.dumps(state))

    def _redis(self) -> Any:
        return None if settings.OMS_JOBS_INLINE else get_queue("high").connection

    @contextmanager
    def _lock(self) -> Iterator[None]:
        conn = self._redis()
        if conn is not None:
            with conn.lock(f"{self.key}:lock", timeout=5, blocking_timeout=10):
                yield
            return
        token, lock_key = uuid.uuid4().hex, f"{self.key}:lock"
        deadline = time.monotonic() + 10
        while not cache.add(lock_key, token, timeout=5):
            if time.monotonic() > deadline:
                break  # a holder that died: its lock expires; pacing is best effort, never a deadlock
            time.sleep(0.005)
        try:
            yield
        finally:
            if cache.get(lock_key) == token:
                cache.delete(lock_key)

    def _get(self) -> str | None:
        conn = self._redis()
        if conn is None:
            return cache.get(self.key)
        value = conn.get(self.key)
        return value.decode() if value else None

    def _set(self, value: str) -> None:
        conn = self._redis()
        if conn is None:
            cache.set(self.key, value, timeout=self.TTL)
        else:
            conn.set(self.key, value, ex=self.TTL)

    def _apply(self, op: Callable[[LocalBucket], T], fallback: T) -> T:
        try:
            with self._state() as bucket:
                return op(bucket)
        except RedisError:
            return fallback  # Redis down: the channel's own throttling answers still slow us down

    def reserve(self, cost: float) -> float:
        return self._apply(lambda b: b.reserve(cost), 0.0)

    def refund(self, points: float) -> None:
        self._apply(lambda b: b.refund(points), None)

    def observe(self, *, available: float, maximum: float, restore_rate: float) -> None:
        self._apply(lambda b: b.observe(available=available, maximum=maximum, restore_rate=restore_rate), None)

    def penalize(self, seconds: float) -> None:
        self._apply(lambda b: b.penalize(seconds), None)


class ChannelOptionError(ValueError):
    pass


def channel_configure(
    *,
    kind: str,
    slug: str,
    name: str,
    options: Mapping[str, str],
    active: bool | None = None,
    actor: Actor = None,
) -> tuple[SalesChannel, bool]:
    """Create or update a channel from `key=value` options: secrets are split out and encrypted."""
    cls = adapter_class(kind)
    unknown = sorted(set(options) - set(cls.options))
    if unknown:
        raise ChannelOptionError(
            f"unknown option(s) for {kind}: {', '.join(unknown)}; allowed: {', '.join(sorted(cls.options))}"
        )
    plain = {k: v for k, v in options.items() if k not in cls.secret_options and k != "api_base_url"}
    secrets = {k: v for k, v in options.items() if k in cls.secret_options and k != "webhook_secret"}
    base_url = ""
    new = not SalesChannel.objects.filter(slug=slug).exists()
    if new or "api_base_url" in options or cls.address_options & set(options):
        try:
            base_url = cls.api_base_url_for(options)
        except KeyError as exc:
            raise ChannelOptionError(f"option {exc.args[0]} is required for a new {kind} channel") from None
        if not base_url:
            raise ChannelOptionError(f"{kind} needs an API address: give api_base_url")
    return channel_save(
        kind=kind,
        slug=slug,
        name=name,
        api_base_url=base_url,
        options=plain,
        credentials=secrets,
        webhook_secret=options.get("webhook_secret"),
        active=active,
        actor=actor,
    )
