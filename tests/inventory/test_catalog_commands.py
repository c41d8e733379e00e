"""manage.py import_catalog and export_catalog: the same format and checks as the screen, errors as exit 1."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from inventory.models import StockLevel, StockMovement, Variant
from tests.factories import location, staff_user, stocked
from tests.inventory.catalog_files import csv_bytes, read_csv, row

pytestmark = pytest.mark.django_db


@pytest.fixture
def main(db):
    return location("main")


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_dry_run_prints_what_would_change_and_writes_nothing(tmp_path, main):
    path = tmp_path / "catalog.csv"
    path.write_bytes(csv_bytes([row("A-1", stock_main="4"), row("A-2")]))
    out, _ = run("import_catalog", str(path), "--dry-run")
    assert "Dry run, nothing changed" in out
    assert "2 variants created" in out
    assert not Variant.objects.exists()


def test_import_writes_and_records_the_user(tmp_path, main):
    user = staff_user("Manager", username="importer")
    path = tmp_path / "catalog.csv"
    path.write_bytes(csv_bytes([row("A-1", stock_main="4")]))
    out, _ = run("import_catalog", str(path), "--user", "importer")
    assert "Imported catalog.csv: 1 row read, 1 product created, 1 variant created" in out
    assert StockLevel.objects.get(variant__sku="A-1").on_hand == 4
    assert StockMovement.objects.get().actor == user


def test_row_errors_are_printed_and_nothing_is_imported(tmp_path, main):
    path = tmp_path / "catalog.csv"
    path.write_bytes(csv_bytes([row("A-1"), row("A-2", sale_price="cheap"), row("A-3", stock_main="-1")]))
    for extra in ([], ["--dry-run"]):
        err = io.StringIO()
        with pytest.raises(CommandError, match="2 errors; nothing was imported"):
            call_command("import_catalog", str(path), *extra, stderr=err)
        assert "row 3, sale_price: not a number: 'cheap'" in err.getvalue()
        assert "row 4, stock:main: stock must not be negative: -1" in err.getvalue()
    assert not Variant.objects.exists()


def test_bad_file_and_missing_file(tmp_path, main):
    path = tmp_path / "catalog.csv"
    path.write_bytes("product_title,sku\nCafé,A\n".encode("latin-1"))
    with pytest.raises(CommandError, match="not UTF-8"):
        run("import_catalog", str(path))
    with pytest.raises(CommandError, match="cannot read"):
        run("import_catalog", str(tmp_path / "nope.csv"))
    path.write_bytes(csv_bytes([row("A-1")]))
    with pytest.raises(CommandError, match="no user"):
        run("import_catalog", str(path), "--user", "ghost")


def test_export_csv_and_xlsx_import_back(tmp_path, main):
    from openpyxl import load_workbook

    stocked("MUG-BLUE", 3, at=main)
    csv_path, xlsx_path = tmp_path / "out.csv", tmp_path / "out.xlsx"
    out, _ = run("export_catalog", str(csv_path))
    assert "Exported 1 variants" in out
    run("export_catalog", str(xlsx_path))
    rows = read_csv(csv_path.read_text(encoding="utf-8"))
    assert rows[1][2] == "MUG-BLUE"
    assert rows[1][-1] == "3"
    assert list(load_workbook(xlsx_path).worksheets[0].iter_rows(values_only=True))[1][2] == "MUG-BLUE"
    before = StockMovement.objects.count()
    run("import_catalog", str(xlsx_path))
    run("import_catalog", str(csv_path))
    assert StockMovement.objects.count() == before
    with pytest.raises(CommandError, match=r"\.csv or \.xlsx"):
        run("export_catalog", str(tmp_path / "out.json"))


def test_the_command_exits_non_zero_on_errors(tmp_path):
    # The real process, as an operator runs it: exit status 1 and the errors on stderr.
    path = tmp_path / "catalog.csv"
    path.write_bytes(b"product_title,sku,weight_grams\nLamp,L-1,heavy\n")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(DJANGO_SETTINGS_MODULE="oms.settings.test", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=settings.BASE_DIR)  # noqa: S603
    done = subprocess.run(  # noqa: S603
        [*manage, "import_catalog", str(path), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )
    assert done.returncode == 1
    assert "row 2, weight_grams: not a whole number: 'heavy'" in done.stderr
