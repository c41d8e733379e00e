"""The typed registry of channel adapters by kind: grep and mypy can follow it, string imports cannot."""

from __future__ import annotations

from channels_adapters.base import ChannelAdapter, ChannelConfig, RateLimiter
from channels_adapters.shopify import ShopifyAdapter

ADAPTERS: dict[str, type[ChannelAdapter]] = {
    ShopifyAdapter.kind: ShopifyAdapter,
}


class UnknownChannelKind(KeyError):
    pass


def adapter_class(kind: str) -> type[ChannelAdapter]:
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise UnknownChannelKind(f"no adapter for channel kind {kind!r}; known: {sorted(ADAPTERS)}") from None


def adapter_for(kind: str, config: ChannelConfig, *, limiter: RateLimiter | None = None) -> ChannelAdapter:
    """The adapter for one channel; pass the channel's shared `limiter` so all its callers pace together."""
    return adapter_class(kind)(config, limiter=limiter)


def kind_choices() -> list[tuple[str, str]]:
    return [(kind, cls.label) for kind, cls in sorted(ADAPTERS.items())]
