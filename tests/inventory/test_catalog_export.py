"""The catalog export as a job: POST -> CatalogExport + audit row -> the job (inline here) writes the file into the
default storage (local media in a temporary directory) -> the page shows the download -> the file; failures,
the progress the page polls, and the daily prune."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from inventory import jobs_catalog
from inventory.models import CatalogExport
from inventory.selectors_catalog import export_progress_key
from inventory.services_catalog_export import catalog_export_create
from oms.core.models import AuditEntry
from tests.factories import location, staff_user, stocked
from tests.inventory.catalog_files import HEADER, read_csv
from tests.s3 import BUCKET

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(autouse=True)
def media(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def main(db):
    return location("main")


@pytest.fixture
def manager(main):
    return staff_user("Manager")


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


def start_export(client, fmt: str = "xlsx"):
    return client.post(reverse("inventory:catalog-export", args=[fmt]))


def read_xlsx(data: bytes) -> list[tuple]:
    from openpyxl import load_workbook

    return list(load_workbook(io.BytesIO(data)).worksheets[0].iter_rows(values_only=True))


def test_export_xlsx_runs_as_a_job_and_the_file_matches_the_catalog(
    manager_client, manager, main, django_capture_on_commit_callbacks
):
    from openpyxl import load_workbook

    stocked(
        "MUG-BLUE",
        7,
        at=main,
        product_title="=cmd",
        barcode="0012345",
        weight_grams=250,
        sale_price=Decimal("12.50"),
        low_stock_threshold=2,
    )
    stocked("LAMP-1", 0, at=main, product_title="Lamp", title="Large", active=False)

    with django_capture_on_commit_callbacks(execute=True):
        response = start_export(manager_client)

    record = CatalogExport.objects.get()
    assert response.status_code == 303
    assert response["Location"] == reverse("inventory:catalog-export-detail", args=[record.pk])
    assert (record.status, record.rows, record.file_format) == (CatalogExport.Status.DONE, 2, "xlsx")
    assert record.created_by == manager
    assert record.started_at is not None
    assert record.finished_at is not None
    assert record.error == ""
    assert record.file.name.startswith("exports/catalog/")
    assert record.file.name.endswith(".xlsx")
    # Who asked for the whole catalog is on the audit trail.
    audit = AuditEntry.objects.get(verb="catalog.export")
    assert (audit.actor, audit.object_id, audit.after) == (manager, str(record.pk), {"file_format": "xlsx"})

    with default_storage.open(record.file.name, "rb") as stored:
        data = stored.read()
    rows = read_xlsx(data)
    assert list(rows[0]) == HEADER  # the import's own columns, so the file can be edited and imported back
    by_sku = {r[2]: r for r in rows[1:]}
    assert set(by_sku) == {"MUG-BLUE", "LAMP-1"}
    assert by_sku["MUG-BLUE"] == ("'=cmd", None, "MUG-BLUE", "0012345", None, 250, None, None, 12.5, 2, "true", None, 7)
    assert by_sku["LAMP-1"] == ("Lamp", None, "LAMP-1", None, "Large", None, None, None, None, 0, "false", None, 0)
    # The formula-looking title is text, never a formula.
    cells = {r[2].value: r for r in load_workbook(io.BytesIO(data)).worksheets[0].iter_rows(min_row=2)}
    assert cells["MUG-BLUE"][0].data_type == "s"

    # The page (and its polled partial) show the download once the job is done, and stop polling.
    page = manager_client.get(response["Location"]).content.decode()
    download_url = reverse("inventory:catalog-export-download", args=[record.pk])
    assert download_url in page
    assert 'hx-trigger="every 1s"' not in page
    assert "2 variants exported" in page
    status = manager_client.get(reverse("inventory:catalog-export-status", args=[record.pk]), **HX)
    assert download_url in status.content.decode()

    download = manager_client.get(download_url)
    assert download.status_code == 200
    assert download["Content-Type"] == XLSX
    assert download["Content-Disposition"].startswith('attachment; filename="catalog-')
    assert download["Content-Disposition"].endswith('.xlsx"')
    assert download["Cache-Control"] == "no-store"
    assert b"".join(download.streaming_content) == data
    taken = AuditEntry.objects.get(verb="catalog.export_download")
    assert (taken.actor, taken.object_id) == (manager, str(record.pk))
    assert manager_client.head(download_url).status_code == 200  # a HEAD takes no file: not a download
    assert AuditEntry.objects.filter(verb="catalog.export_download").count() == 1

    # The import page lists it, with who asked and the download.
    listing = manager_client.get(reverse("inventory:catalog-import")).content.decode()
    assert 'id="catalog-exports"' in listing
    assert download_url in listing
    assert manager.get_username() in listing


def test_export_csv_as_a_job_too(manager_client, main, django_capture_on_commit_callbacks):
    stocked("MUG-BLUE", 3, at=main, product_title="-Mug")
    with django_capture_on_commit_callbacks(execute=True):
        start_export(manager_client, "csv")
    record = CatalogExport.objects.get()
    assert (record.status, record.rows) == (CatalogExport.Status.DONE, 1)
    download = manager_client.get(reverse("inventory:catalog-export-download", args=[record.pk]))
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    rows = read_csv(b"".join(download.streaming_content).decode("utf-8"))
    assert rows[1][0] == "'-Mug"
    assert rows[1][2] == "MUG-BLUE"
    assert rows[1][-1] == "3"


def test_the_page_polls_with_the_rows_written_until_the_job_is_done(manager_client, manager, main):
    stocked("A-1", 1, at=main)
    record = catalog_export_create(file_format="xlsx", actor=manager)  # no commit here: the job waits
    url = reverse("inventory:catalog-export-status", args=[record.pk])

    body = manager_client.get(url, **HX).content.decode()
    assert 'hx-trigger="every 1s"' in body
    assert "Waiting for a worker" in body
    assert "<progress style" in body  # no count yet: an indeterminate bar

    CatalogExport.objects.filter(pk=record.pk).update(status=CatalogExport.Status.RUNNING)
    cache.set(export_progress_key(record.pk), {"label": "Writing rows", "rows": 500, "total": 2000})
    body = manager_client.get(url, **HX).content.decode()
    assert "Writing rows… 500 of 2,000 rows" in body
    assert 'value="25"' in body
    assert 'hx-trigger="every 1s"' in body
    assert reverse("inventory:catalog-export-download", args=[record.pk]) not in body
    assert manager_client.get(reverse("inventory:catalog-export-download", args=[record.pk])).status_code == 404

    CatalogExport.objects.filter(pk=record.pk).update(status=CatalogExport.Status.QUEUED)
    assert jobs_catalog.catalog_export_run(record.pk) == CatalogExport.Status.DONE
    body = manager_client.get(url, **HX).content.decode()
    assert 'hx-trigger="every 1s"' not in body
    assert reverse("inventory:catalog-export-download", args=[record.pk]) in body
    assert cache.get(export_progress_key(record.pk)) is None


def test_the_job_reports_rows_written_while_it_stores_the_file(manager, main, monkeypatch):
    from django.core.files.storage import FileSystemStorage

    for n in range(3):
        stocked(f"A-{n}", 1, at=main)
    record = catalog_export_create(file_format="xlsx", actor=manager)
    seen = []
    real_save = FileSystemStorage.save

    def save_and_look(storage, name, content, max_length=None):  # third-party: look at the progress as it saves
        seen.append(cache.get(export_progress_key(record.pk)))
        return real_save(storage, name, content, max_length=max_length)

    monkeypatch.setattr(FileSystemStorage, "save", save_and_look)
    jobs_catalog.catalog_export_run(record.pk)
    assert seen == [{"label": "Storing the file", "rows": 3, "total": 3}]


def test_a_storage_that_fails_marks_the_export_failed_with_the_reason(
    manager_client, main, media, django_capture_on_commit_callbacks
):
    stocked("A-1", 1, at=main)
    media.parent.mkdir(parents=True, exist_ok=True)
    media.write_text("a file where the media directory should be")  # the storage cannot create exports/catalog/

    with django_capture_on_commit_callbacks(execute=True):
        response = start_export(manager_client)

    record = CatalogExport.objects.get()
    assert record.status == CatalogExport.Status.FAILED
    assert record.file.name == ""
    assert record.finished_at is not None
    assert record.error.startswith("The file could not be written or stored: Not a directory.")
    page = manager_client.get(response["Location"]).content.decode()
    assert "The file could not be written or stored: Not a directory." in page
    assert 'hx-trigger="every 1s"' not in page
    assert "Export XLSX again" in page
    assert manager_client.get(reverse("inventory:catalog-export-download", args=[record.pk])).status_code == 404
    assert cache.get(export_progress_key(record.pk)) is None


def test_a_double_click_gives_the_export_already_waiting(manager_client, main, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        first = start_export(manager_client)
        second = start_export(manager_client)
    assert first["Location"] == second["Location"]
    assert CatalogExport.objects.count() == 1
    assert AuditEntry.objects.filter(verb="catalog.export").count() == 1
    # Once it has finished, a new request is a new export.
    jobs_catalog.catalog_export_run(CatalogExport.objects.get().pk)
    start_export(manager_client)
    assert CatalogExport.objects.count() == 2


def test_the_job_acts_once(manager, main):
    stocked("A-1", 1, at=main)
    record = catalog_export_create(file_format="xlsx", actor=manager)
    assert jobs_catalog.catalog_export_run(record.pk) == CatalogExport.Status.DONE
    name = CatalogExport.objects.get().file.name
    assert jobs_catalog.catalog_export_run(record.pk) == CatalogExport.Status.DONE
    assert CatalogExport.objects.get().file.name == name
    assert jobs_catalog.catalog_export_run(12345) is None


def test_export_pages_404_for_an_unknown_export(manager_client):
    for name in ("catalog-export-detail", "catalog-export-status", "catalog-export-download"):
        assert manager_client.get(reverse(f"inventory:{name}", args=[999])).status_code == 404, name


def test_an_export_stuck_past_its_timeout_shows_as_stalled(manager_client, manager, main):
    record = catalog_export_create(file_format="xlsx", actor=manager)
    CatalogExport.objects.filter(pk=record.pk).update(
        status=CatalogExport.Status.RUNNING, started_at=timezone.now() - timedelta(hours=2)
    )
    body = manager_client.get(reverse("inventory:catalog-export-status", args=[record.pk]), **HX).content.decode()
    assert "its worker stopped" in body
    assert 'hx-trigger="every 1s"' not in body
    # ... and asking again starts a new one rather than handing back the stalled one.
    start_export(manager_client)
    assert CatalogExport.objects.count() == 2


def test_starting_an_export_needs_the_csrf_token(manager, main):
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    assert start_export(client).status_code == 403
    assert not CatalogExport.objects.exists()
    page = client.get(reverse("inventory:catalog-import")).content.decode()
    form = page.split(f'action="{reverse("inventory:catalog-export", args=["xlsx"])}"', 1)[1].split("</form>", 1)[0]
    assert "csrfmiddlewaretoken" in form


def test_prune_deletes_exports_older_than_a_week_with_their_files(main):
    stocked("A-1", 1, at=main)
    old, recent = (catalog_export_create(file_format="xlsx", actor=None) for _ in range(2))
    for record in (old, recent):
        jobs_catalog.catalog_export_run(record.pk)
    old_failed = catalog_export_create(file_format="xlsx", actor=None)
    CatalogExport.objects.filter(pk=old_failed.pk).update(status=CatalogExport.Status.FAILED)
    now = timezone.now()
    CatalogExport.objects.filter(pk__in=[old.pk, old_failed.pk]).update(created_at=now - timedelta(days=7, hours=1))
    CatalogExport.objects.filter(pk=recent.pk).update(created_at=now - timedelta(days=6, hours=23))
    old_name, recent_name = (CatalogExport.objects.get(pk=r.pk).file.name for r in (old, recent))
    assert default_storage.exists(old_name)

    assert jobs_catalog.catalog_exports_prune() == 2

    assert list(CatalogExport.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not default_storage.exists(old_name)
    assert default_storage.exists(recent_name)
    assert jobs_catalog.catalog_exports_prune() == 0


def test_on_s3_the_export_is_stored_downloaded_and_pruned(s3_storage, manager_client, manager, main):
    stocked("MUG-BLUE", 7, at=main)
    record = catalog_export_create(file_format="xlsx", actor=manager)
    assert jobs_catalog.catalog_export_run(record.pk) == CatalogExport.Status.DONE
    record.refresh_from_db()
    keys = [o["Key"] for o in s3_storage.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert keys == [record.file.name]
    stored = s3_storage.get_object(Bucket=BUCKET, Key=record.file.name)["Body"].read()
    assert read_xlsx(stored)[1][2] == "MUG-BLUE"

    download = manager_client.get(reverse("inventory:catalog-export-download", args=[record.pk]))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == stored

    CatalogExport.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(days=8))
    assert jobs_catalog.catalog_exports_prune() == 1
    assert s3_storage.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
