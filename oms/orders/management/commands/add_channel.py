"""manage.py add_channel KIND SLUG --name NAME [--option key=value ...]: create or update a sales channel."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels_adapters.registry import ADAPTERS, UnknownChannelKind, adapter_class
from inventory.channels import ChannelOptionError, channel_configure


class Command(BaseCommand):
    help = (
        "Create or update a sales channel. Secret options (tokens, webhook secrets) are stored encrypted; "
        "a new webhook_secret keeps the old one accepted until rotation ends. Example: add_channel shopify my-shop "
        '--name "My Shop" --option shop_domain=my-shop.myshopify.com --option access_token=shpat_... '
        "--option webhook_secret=..."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", help=f"one of: {', '.join(sorted(ADAPTERS))}")
        parser.add_argument("slug", help="the channel's slug, used in its webhook URL /webhooks/<slug>/")
        parser.add_argument("--name", required=True)
        parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--inactive", action="store_true", help="store the channel switched off")
        state.add_argument("--active", action="store_true", help="switch the channel on")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            cls = adapter_class(opts["kind"])
        except UnknownChannelKind as exc:
            raise CommandError(str(exc.args[0])) from None
        options: dict[str, str] = {}
        for item in opts["option"]:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise CommandError(f"--option takes key=value, got {item!r}")
            options[key.strip()] = value.strip()
        active = False if opts["inactive"] else (True if opts["active"] else None)
        try:
            channel, created = channel_configure(
                kind=cls.kind, slug=opts["slug"], name=opts["name"], options=options, active=active
            )
        except (ChannelOptionError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} {channel.kind} channel {channel.slug!r} ({channel.name})"))
        self.stdout.write(f"  API: {channel.api_base_url}")
        self.stdout.write(f"  Webhook URL path: /webhooks/{channel.slug}/")
        if channel.webhook_secret_previous:
            self.stdout.write("  The previous webhook secret is still accepted until rotation ends (admin action).")
