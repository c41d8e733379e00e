"""manage.py import_channel_catalog SLUG [--create-missing]: link a channel's items to master SKUs as listings.

Prints what matched, what was created, and the SKUs that did not match (with duplicates and items without a
SKU). Exit status 0 when the import ran (whatever it could not match is listed), 2 when it could not run.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels_adapters.base import ChannelError
from inventory.services_reconcile import ReconcileAlreadyRunning, import_channel_catalog
from oms.core.models import SalesChannel


class Command(BaseCommand):
    help = "Link a channel's products to master variants by SKU (creating or updating its listings)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--create-missing",
            action="store_true",
            help="create products and variants (without stock) for SKUs the master does not have",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        channel = SalesChannel.objects.filter(slug=opts["slug"]).first()
        if channel is None:
            raise CommandError(f"no channel with slug {opts['slug']!r}", returncode=2)
        try:
            report = import_channel_catalog(channel=channel, create_missing=opts["create_missing"])
        except (ReconcileAlreadyRunning, ChannelError) as exc:
            raise CommandError(f"import of {channel.slug} failed: {exc}", returncode=2) from None
        self.stdout.write(
            f"{channel.slug}: {report.items} item(s) in {report.pages} page(s); matched {report.matched} "
            f"({report.listings_created} listing(s) created, {report.listings_updated} updated); "
            f"created {report.variants_created} variant(s) in {report.products_created} product(s); "
            f"unmatched {0 if opts['create_missing'] else len(report.unmatched)}; "
            f"duplicated SKUs {len(report.duplicates)}; without SKU {len(report.no_sku)}"
        )
        if report.created_skus:
            self.stdout.write(f"  created: {', '.join(report.created_skus)}")
        if report.unmatched and not opts["create_missing"]:
            self.stdout.write(f"  unmatched (not in the master): {', '.join(report.unmatched)}")
        for sku, ids in sorted(report.duplicates.items()):
            self.stdout.write(f"  duplicated {sku}: {', '.join(ids)}")
        for item in report.no_sku:
            self.stdout.write(f"  no SKU: {item}")
        for conflict in report.conflicts:
            self.stdout.write(f"  not linked: {conflict}")
