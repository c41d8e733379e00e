"""manage.py import_catalog FILE [--dry-run]: check a catalog file and import it, in this process, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory.catalog_format import CatalogFileError, open_catalog
from inventory.services_catalog import CatalogImportError, RowError, catalog_check, catalog_import, summary_text

MAX_PRINTED_ERRORS = 500


class Command(BaseCommand):
    help = (
        "Import products, variants, bundles and stock from a .csv or .xlsx catalog file (the format of the Catalog "
        "import screen and of export_catalog). Prints every row error and exits 1 if there is any; nothing is "
        "imported then."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="a .csv (UTF-8) or .xlsx file")
        parser.add_argument("--dry-run", action="store_true", help="check the file and say what would change")
        parser.add_argument("--user", help="username recorded as the actor in the ledger (default: the command)")

    def handle(self, *args: Any, **opts: Any) -> None:
        path = Path(opts["file"])
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        try:
            catalog = open_catalog(content, path.name)
        except CatalogFileError as exc:
            raise CommandError(str(exc)) from None
        actor = None
        if opts["user"]:
            actor = get_user_model().objects.filter(username=opts["user"]).first()
            if actor is None:
                raise CommandError(f"no user {opts['user']!r}")
        verbose = opts["verbosity"] >= 2

        def progress(label: str, share: float) -> None:
            if verbose:
                self.stderr.write(f"{share:6.1%} {label}")

        try:
            if opts["dry_run"]:
                plan = catalog_check(catalog=catalog, progress=progress)
                if not plan.ok:
                    self._fail(plan.errors)
                self.stdout.write(f"Dry run, nothing changed. Importing would give: {summary_text(plan.summary())}.")
                return
            plan = catalog_import(
                catalog=catalog, actor=actor, reference=f"catalog-import:{path.name}"[:100], progress=progress
            )
        except CatalogFileError as exc:
            raise CommandError(str(exc)) from None
        except CatalogImportError as exc:
            self._fail(exc.errors)
        self.stdout.write(self.style.SUCCESS(f"Imported {path.name}: {summary_text(plan.summary())}."))

    def _fail(self, errors: list[RowError]) -> NoReturn:
        for error in errors[:MAX_PRINTED_ERRORS]:
            self.stderr.write(str(error))
        if len(errors) > MAX_PRINTED_ERRORS:
            self.stderr.write(f"... and {len(errors) - MAX_PRINTED_ERRORS} more")
        raise CommandError(f"{len(errors)} error{'s' if len(errors) != 1 else ''}; nothing was imported")
