"""manage.py reconcile SLUG: reconcile a channel's stock with the master now, in this process.

Prints the run's summary and each mismatch it found. Exit status, as diff(1) has it: 0 the channel agrees
with the master (nothing left open), 1 mismatches are left open for staff, 2 the run could not be made (no
such channel, inactive, already running, or the channel failed).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.models import ReconcileRun, StockMismatch
from inventory.services_reconcile import ReconcileAlreadyRunning, channel_reconcile
from oms.core.models import SalesChannel

SUMMARY_COUNTS = (
    ("linked", "linked by SKU"),
    ("relinked", "moved to a new item"),
    ("new", "new"),
    ("still_open", "still open"),
    ("gone", "gone"),
    ("corrected", "corrected"),
    ("accepted", "accepted"),
    ("refused_count", "not accepted"),
    ("pending_skipped", "explained by a pending push"),
    ("recent_skipped", "changed on the channel moments ago"),
    ("paused_skipped", "paused"),
    ("dismissed_skipped", "dismissed before"),
    ("unlisted_variants", "active SKUs never listed here"),
)


class Command(BaseCommand):
    help = "Reconcile a channel's stock and SKUs with the master now (exit 0: agrees, 1: mismatches open, 2: failed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")

    def handle(self, *args: Any, **opts: Any) -> None:
        channel = SalesChannel.objects.filter(slug=opts["slug"]).first()
        if channel is None:
            raise CommandError(f"no channel with slug {opts['slug']!r}", returncode=2)
        if not channel.active:
            raise CommandError(f"channel {channel.slug!r} is inactive", returncode=2)
        try:
            run = channel_reconcile(channel=channel, trigger="command")
        except ReconcileAlreadyRunning as exc:
            raise CommandError(str(exc), returncode=2) from None
        summary = run.summary
        self.stdout.write(
            f"{channel.slug}: {run.get_status_display()} — {summary.get('items', run.listings_seen)} item(s) in "
            f"{run.pages} page(s), {run.mismatches} mismatch(es), {run.corrected} corrected or accepted; "
            f"{summary.get('seconds', 0):.1f} s, of which {summary.get('api_seconds', 0):.1f} s the channel's API"
        )
        if run.status == ReconcileRun.Status.FAILED:
            raise CommandError(f"reconcile of {channel.slug} failed: {run.error}", returncode=2)
        counts = [f"{summary[name]} {label}" for name, label in SUMMARY_COUNTS if summary.get(name)]
        if counts:
            self.stdout.write("  " + "; ".join(counts))
        for name, label in (("linked_skus", "linked"), ("sku_conflict_skus", "SKU conflicts")):
            if summary.get(name):
                self.stdout.write(f"  {label}: {', '.join(summary[name])}")
        for refusal in summary.get("refused", []):
            self.stdout.write(f"  not accepted {refusal['sku']}: {refusal['reason']}")
        for mismatch in StockMismatch.objects.filter(run=run).order_by("kind", "sku", "pk"):
            self.stdout.write(f"  {_line(mismatch)}")
        left_open = StockMismatch.objects.filter(channel=channel, resolution=StockMismatch.Resolution.OPEN).count()
        if left_open:
            raise CommandError(f"{left_open} mismatch(es) open on {channel.slug}", returncode=1)


def _line(mismatch: StockMismatch) -> str:
    state = mismatch.get_resolution_display().lower() if mismatch.resolution else "open"
    quantities = ""
    if mismatch.master_quantity is not None or mismatch.channel_quantity is not None:
        pushed = mismatch.last_pushed_quantity
        quantities = f" master {_n(mismatch.master_quantity)}, channel {_n(mismatch.channel_quantity)}" + (
            f", last pushed {pushed}" if pushed is not None else ""
        )
    ident = mismatch.sku or "(no SKU)"
    ext = f" [{mismatch.external_id}]" if mismatch.external_id else ""
    note = f" — {mismatch.note}" if mismatch.note else ""
    return f"{mismatch.kind:<14} {ident}{ext}{quantities} ({state}){note}"


def _n(value: int | None) -> str:
    return "—" if value is None else str(value)
