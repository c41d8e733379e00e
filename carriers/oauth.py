"""OAuth 2.0 client-credentials tokens for carrier adapters (USPS, FedEx): kept until shortly before expiry.

Only the cache lives here; fetching a token is each carrier's business (USPS posts JSON, FedEx a form).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests

__all__ = ["TokenCache", "json_body"]


def json_body(response: requests.Response) -> Any:
    """The parsed JSON body, or None when there is none or it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


class TokenCache:
    """One access token, kept until `margin` seconds before it expires; thread-safe."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, margin: float = 60.0) -> None:
        self._clock = clock
        self._margin = margin
        self._lock = threading.RLock()  # a fetch may clear another cache, or this one
        self._token: str | None = None
        self._expires_at = 0.0

    def get(self, fetch: Callable[[], tuple[str, float]]) -> str:
        """The cached token, or a new one from `fetch() -> (token, lifetime in seconds)`."""
        with self._lock:
            now = self._clock()
            if self._token is not None and now < self._expires_at:
                return self._token
            token, lifetime = fetch()
            # A short-lived token is kept for half its life rather than not at all.
            self._expires_at = now + max(lifetime - self._margin, lifetime / 2)
            self._token = token
            return token

    def clear(self) -> None:
        with self._lock:
            self._token = None
            self._expires_at = 0.0
