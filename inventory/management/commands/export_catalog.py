"""manage.py export_catalog FILE: the whole catalog in the import's format, .csv or .xlsx by the file's extension."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.catalog_format import csv_stream, xlsx_write
from inventory.selectors_catalog import catalog_export_header, catalog_export_locations, catalog_export_rows


class Command(BaseCommand):
    help = "Export products, variants, bundles and on-hand stock per location to FILE (.csv or .xlsx)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="where to write: a name ending in .csv or .xlsx ('-' writes CSV to stdout)")

    def handle(self, *args: Any, **opts: Any) -> None:
        target = opts["file"]
        locations = catalog_export_locations()
        header = catalog_export_header(locations)
        rows = catalog_export_rows(locations=locations)
        count = 0

        def counted() -> Any:
            nonlocal count
            for row in rows:
                count += 1
                yield row

        if target == "-":
            for chunk in csv_stream(header, counted()):
                self.stdout.write(chunk, ending="")
            return
        path = Path(target)
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".xlsx"):
            raise CommandError("the file name must end in .csv or .xlsx")
        try:
            if suffix == ".csv":
                with path.open("w", encoding="utf-8", newline="") as out:
                    out.writelines(csv_stream(header, counted()))
            else:
                with path.open("wb") as binary:
                    xlsx_write(header, counted(), binary)
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror}") from None
        self.stdout.write(self.style.SUCCESS(f"Exported {count} variants to {path}."))
