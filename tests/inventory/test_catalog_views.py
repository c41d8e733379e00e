"""The catalog import and export screens: permissions, upload -> dry run -> confirm -> import as jobs (inline
here), the progress endpoint the page polls, bad files as form errors, and the exports (the XLSX export job is
in test_catalog_export.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from inventory import jobs_catalog
from inventory.models import CatalogExport, CatalogImport, StockLevel, StockMovement, Variant
from inventory.services_catalog import catalog_import_create, progress_key
from inventory.services_catalog_export import catalog_export_create
from oms.core.models import AuditEntry
from tests.factories import location, staff_user, stocked
from tests.inventory.catalog_files import csv_bytes, read_csv, row

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # progress is kept by import id, and ids repeat across tests


@pytest.fixture
def main(db):
    return location("main")


@pytest.fixture
def manager_client(client, main):
    client.force_login(staff_user("Manager"))
    return client


def upload(client, data: bytes, name: str = "catalog.csv"):
    return client.post(reverse("inventory:catalog-import"), {"file": SimpleUploadedFile(name, data)})


@pytest.mark.parametrize("role", ["Packer", "Warehouse"])
def test_roles_without_the_permission_get_403(client, main, role):
    user = staff_user(role)
    client.force_login(user)
    record = catalog_import_create(file_name="c.csv", content=csv_bytes([row("A-1")]), file_format="csv", actor=None)
    export = catalog_export_create(file_format="xlsx", actor=None)
    CatalogExport.objects.filter(pk=export.pk).update(status=CatalogExport.Status.DONE, file="exports/catalog/x.xlsx")
    urls = [
        reverse("inventory:catalog-import"),
        reverse("inventory:catalog-import-detail", args=[record.pk]),
        reverse("inventory:catalog-import-status", args=[record.pk]),
        reverse("inventory:catalog-export", args=["csv"]),
        reverse("inventory:catalog-export", args=["xlsx"]),
        reverse("inventory:catalog-export-detail", args=[export.pk]),
        reverse("inventory:catalog-export-status", args=[export.pk]),
        reverse("inventory:catalog-export-download", args=[export.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 403, url
    assert upload(client, csv_bytes([row("A-1")])).status_code == 403
    assert client.post(reverse("inventory:catalog-import-confirm", args=[record.pk])).status_code == 403
    assert client.post(reverse("inventory:catalog-export", args=["xlsx"])).status_code == 403
    assert not Variant.objects.exists()
    assert CatalogExport.objects.count() == 1
    assert not AuditEntry.objects.filter(actor=user).exists()


def test_anonymous_users_are_sent_to_sign_in(client, main):
    response = client.get(reverse("inventory:catalog-import"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_page_shows_upload_exports_and_the_format(manager_client):
    response = manager_client.get(reverse("inventory:catalog-import"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'enctype="multipart/form-data"' in body
    # CSV is a download link; XLSX a form that starts an export job.
    assert f'href="{reverse("inventory:catalog-export", args=["csv"])}"' in body
    assert f'<form method="post" action="{reverse("inventory:catalog-export", args=["xlsx"])}"' in body
    assert "No export yet." in body
    assert "bundle_components" in body
    assert 'data-nav="catalog"' in body


def test_upload_dry_run_confirm_import(manager_client, main, django_capture_on_commit_callbacks):
    stocked("MUG-BLUE", 5, at=main)
    data = csv_bytes([row("MUG-BLUE", stock_main="8"), row("NEW-1", stock_main="2")])

    with django_capture_on_commit_callbacks(execute=True):
        response = upload(manager_client, data)
    record = CatalogImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("inventory:catalog-import-detail", args=[record.pk])
    # The dry run ran (inline: no Redis here) and wrote nothing.
    assert record.status == CatalogImport.Status.CHECKED
    assert record.summary["variants_created"] == 1
    assert not Variant.objects.filter(sku="NEW-1").exists()
    page = manager_client.get(response["Location"]).content.decode()
    assert "Import 2 rows" in page
    assert 'hx-trigger="every 1s"' not in page

    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(reverse("inventory:catalog-import-confirm", args=[record.pk]))
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.status == CatalogImport.Status.DONE
    assert record.confirmed_by is not None
    assert StockLevel.objects.get(variant__sku="MUG-BLUE").on_hand == 8
    assert StockLevel.objects.get(variant__sku="NEW-1").on_hand == 2
    movement = StockMovement.objects.filter(variant__sku="MUG-BLUE")[0]
    assert (movement.delta_on_hand, movement.reference) == (3, f"catalog-import:{record.pk}")
    assert movement.actor_id == record.confirmed_by_id
    status = manager_client.get(reverse("inventory:catalog-import-status", args=[record.pk]), **HX)
    assert "Imported" in status.content.decode()

    # A second confirmation is refused: the file is imported once.
    response = manager_client.post(reverse("inventory:catalog-import-confirm", args=[record.pk]), follow=True)
    assert "cannot be imported now" in response.content.decode()


def test_a_file_with_row_errors_shows_them_and_cannot_be_confirmed(
    manager_client, main, django_capture_on_commit_callbacks
):
    data = csv_bytes([row("A-1"), row("A-2", stock_main="-3"), row("A-1")])
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(manager_client, data)
    record = CatalogImport.objects.get()
    assert record.status == CatalogImport.Status.INVALID
    assert record.error_count == 2
    body = manager_client.get(response["Location"]).content.decode()
    assert "stock must not be negative" in body
    assert "duplicate SKU A-1: also on row 2" in body
    assert "Import 3 rows" not in body

    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(reverse("inventory:catalog-import-confirm", args=[record.pk]))
    record.refresh_from_db()
    assert record.status == CatalogImport.Status.INVALID
    assert not Variant.objects.exists()


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "c.csv", "The file is empty."),
        (b"%PDF-1.4", "c.pdf", "Upload a .csv or .xlsx file."),
        ("product_title,sku\nCafé,A\n".encode("cp1252"), "c.csv", "not UTF-8"),
        (b"name,code\nLamp,A\n", "c.csv", "missing required columns product_title, sku"),
        (b"PK\x03\x04garbage", "c.xlsx", "not a readable Excel workbook"),
    ],
)
def test_bad_files_are_form_errors(manager_client, data, name, message):
    response = upload(manager_client, data, name)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not CatalogImport.objects.exists()


def test_upload_without_a_file_is_a_form_error(manager_client):
    response = manager_client.post(reverse("inventory:catalog-import"), {})
    assert response.status_code == 422
    assert "Choose a .csv or .xlsx file." in response.content.decode()


def test_progress_endpoint_polls_while_the_job_runs_and_stops_at_the_end(manager_client, main):
    record = catalog_import_create(file_name="c.csv", content=csv_bytes([row("A-1")]), file_format="csv", actor=None)
    url = reverse("inventory:catalog-import-status", args=[record.pk])

    body = manager_client.get(url, **HX).content.decode()
    assert 'hx-trigger="every 1s"' in body
    assert 'value="0"' in body

    CatalogImport.objects.filter(pk=record.pk).update(status=CatalogImport.Status.IMPORTING)
    cache.set(progress_key(record.pk), {"label": "Setting stock", "percent": 42})
    body = manager_client.get(url, **HX).content.decode()
    assert "Setting stock… 42%" in body
    assert 'value="42"' in body
    assert 'hx-trigger="every 1s"' in body

    CatalogImport.objects.filter(pk=record.pk).update(status=CatalogImport.Status.QUEUED)
    jobs_catalog.catalog_import_run(record.pk)
    body = manager_client.get(url, **HX).content.decode()
    assert 'hx-trigger="every 1s"' not in body
    assert "Imported" in body
    assert Variant.objects.filter(sku="A-1").exists()


def test_unknown_import_is_404(manager_client):
    assert manager_client.get(reverse("inventory:catalog-import-status", args=[999])).status_code == 404


def test_jobs_act_once(main):
    record = catalog_import_create(file_name="c.csv", content=csv_bytes([row("A-1")]), file_format="csv", actor=None)
    assert jobs_catalog.catalog_import_check(record.pk) == CatalogImport.Status.CHECKED
    assert jobs_catalog.catalog_import_check(record.pk) == CatalogImport.Status.CHECKED
    # Not confirmed: the run job does nothing.
    assert jobs_catalog.catalog_import_run(record.pk) == CatalogImport.Status.CHECKED
    assert not Variant.objects.exists()
    CatalogImport.objects.filter(pk=record.pk).update(status=CatalogImport.Status.QUEUED)
    assert jobs_catalog.catalog_import_run(record.pk) == CatalogImport.Status.DONE
    assert jobs_catalog.catalog_import_run(record.pk) == CatalogImport.Status.DONE
    assert StockMovement.objects.count() == 1
    assert jobs_catalog.catalog_import_run(12345) is None


def test_an_import_that_finds_errors_at_run_time_fails_whole(main):
    record = catalog_import_create(
        file_name="c.csv", content=csv_bytes([row("A-1"), row("A-2")]), file_format="csv", actor=None
    )
    jobs_catalog.catalog_import_check(record.pk)
    # The location was renamed between the dry run and the confirmation: the run checks again.
    type(main).objects.filter(pk=main.pk).update(code="store")
    CatalogImport.objects.filter(pk=record.pk).update(status=CatalogImport.Status.QUEUED)
    assert jobs_catalog.catalog_import_run(record.pk) == CatalogImport.Status.FAILED
    record.refresh_from_db()
    assert record.errors[0]["column"] == "stock:main"
    assert not Variant.objects.exists()


def test_export_csv_streams_the_catalog(manager_client, main):
    stocked("MUG-BLUE", 7, at=main, product_title="-Mug")
    response = manager_client.get(reverse("inventory:catalog-export", args=["csv"]))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = read_csv(b"".join(response.streaming_content).decode())
    assert rows[0][-1] == "stock:main"
    assert rows[1][0] == "'-Mug"
    assert rows[1][2] == "MUG-BLUE"
    assert rows[1][-1] == "7"
    # Streamed with no export record, it is still on the audit trail: who took every SKU, price and level.
    audit = AuditEntry.objects.get(verb="catalog.export")
    assert audit.actor == response.wsgi_request.user
    assert audit.after == {"file_format": "csv", "streamed": True}
    # A HEAD takes no rows and is not recorded as an export.
    assert manager_client.head(reverse("inventory:catalog-export", args=["csv"])).status_code == 200
    assert AuditEntry.objects.filter(verb="catalog.export").count() == 1


def test_get_export_xlsx_no_longer_builds_the_file_but_leads_to_the_export_button(manager_client, main):
    stocked("MUG-BLUE", 7, at=main)
    response = manager_client.get(reverse("inventory:catalog-export", args=["xlsx"]))
    assert response.status_code == 303
    assert response["Location"] == reverse("inventory:catalog-import")
    assert not CatalogExport.objects.exists()
    page = manager_client.get(response["Location"]).content.decode()
    assert "An XLSX export is prepared in the background" in page


def test_export_of_another_format_is_404(manager_client):
    assert manager_client.get(reverse("inventory:catalog-export", args=["pdf"])).status_code == 404
    assert manager_client.post(reverse("inventory:catalog-export", args=["pdf"])).status_code == 404
    assert not CatalogExport.objects.exists()


def test_a_job_that_died_shows_as_stalled_and_stops_polling(manager_client, main):
    record = catalog_import_create(file_name="c.csv", content=csv_bytes([row("A-1")]), file_format="csv", actor=None)
    CatalogImport.objects.filter(pk=record.pk).update(
        status=CatalogImport.Status.IMPORTING, started_at=timezone.now() - timedelta(hours=2)
    )
    body = manager_client.get(reverse("inventory:catalog-import-status", args=[record.pk]), **HX).content.decode()
    assert "its worker stopped" in body
    assert 'hx-trigger="every 1s"' not in body
