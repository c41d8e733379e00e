"""manage.py sync_orders SLUG [--since DATE]: run a channel's order backfill now, in this process."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from oms.core.models import SalesChannel
from oms.orders.models import SyncRun
from oms.orders.services import SyncAlreadyRunning, channel_sync_orders


def _parse_since(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(
                f"--since takes a date (2026-11-01) or a date-time (2026-11-01T08:00:00Z), got {value!r}"
            )
        parsed = datetime.combine(day, time.min)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


class Command(BaseCommand):
    help = "Pull a channel's orders updated since its saved cursor (or --since) and upsert them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--since", help="date or ISO date-time; default: the channel's saved cursor")

    def handle(self, *args: Any, **opts: Any) -> None:
        channel = SalesChannel.objects.filter(slug=opts["slug"]).first()
        if channel is None:
            raise CommandError(f"no channel with slug {opts['slug']!r}")
        if not channel.active:
            raise CommandError(f"channel {channel.slug!r} is inactive")
        since = _parse_since(opts["since"]) if opts["since"] else None
        try:
            run = channel_sync_orders(channel=channel, since=since, trigger="command")
        except SyncAlreadyRunning as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{channel.slug}: {run.get_status_display()} — {run.pages} page(s), {run.api_calls} call(s), "
            f"{run.records} record(s), {run.created} created, {run.updated} updated, {run.error_count} error(s)"
        )
        for error in run.errors:
            self.stderr.write(f"  {error}")
        if run.status == SyncRun.Status.FAILED:
            raise CommandError(f"backfill of {channel.slug} failed")
