"""The bridge between stored channels and their adapters: build a ChannelConfig, get the adapter, configure.

Lives in oms.orders (not oms.core) because the core may not import the adapters.
"""

from __future__ import annotations

from collections.abc import Mapping

from channels_adapters.base import ChannelAdapter, ChannelConfig
from channels_adapters.registry import adapter_class, adapter_for
from oms.core.models import SalesChannel
from oms.core.services import Actor, channel_save


def channel_config(channel: SalesChannel) -> ChannelConfig:
    return ChannelConfig(
        slug=channel.slug,
        api_base_url=channel.api_base_url,
        credentials=dict(channel.credentials),
        webhook_secrets=tuple(channel.webhook_secrets()),
        options=dict(channel.options),
    )


def adapter_for_channel(channel: SalesChannel) -> ChannelAdapter:
    return adapter_for(channel.kind, channel_config(channel))


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
