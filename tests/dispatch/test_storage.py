"""Documents go through Django's storage API: local media by default, S3 when configured (moto's server here)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from django.core.files.storage import default_storage, storages
from django.test import override_settings
from moto.server import ThreadedMotoServer

from bench._harness import free_port
from dispatch.models import Document
from dispatch.services import document_store

pytestmark = pytest.mark.django_db

BUCKET = "oms-documents"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_storage(s3_server, monkeypatch) -> Iterator[boto3.client]:
    # Dummy credentials: moto accepts any, and nothing may fall back to a real AWS profile.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    backend = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": BUCKET,
            "endpoint_url": s3_server,
            "region_name": "us-east-1",
            "access_key": "testing",
            "secret_key": "testing",
            "addressing_style": "path",
            "signature_version": "s3v4",
            "querystring_auth": True,
            "file_overwrite": False,
            "default_acl": None,
        },
    }
    with override_settings(STORAGES={"default": backend, "staticfiles": storages.backends["staticfiles"]}):
        storages._storages = {}  # type: ignore[attr-defined]  # the handler caches backends by alias
        yield client
    storages._storages = {}  # type: ignore[attr-defined]
    # moto keeps its buckets in process-wide memory, whichever server answers: the next test starts empty.
    for found in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=found["Key"])
    client.delete_bucket(Bucket=BUCKET)


def test_a_document_is_stored_in_s3_and_read_back(s3_storage):
    pdf = b"%PDF-1.4\n% a label\n%%EOF\n"
    doc = document_store(
        kind=Document.Kind.LABEL, title="Label 1Z", content=pdf, content_type="application/pdf", filename="1Z.pdf"
    )
    keys = [o["Key"] for o in s3_storage.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert keys == [doc.file.name]
    assert doc.file.name.startswith("documents/")
    assert doc.file.name.endswith(".pdf")
    assert s3_storage.get_object(Bucket=BUCKET, Key=doc.file.name)["Body"].read() == pdf
    with Document.objects.get(pk=doc.pk).file.open("rb") as fh:
        assert fh.read() == pdf
    url = default_storage.url(doc.file.name)
    assert "X-Amz-Signature=" in url  # private bucket: links are signed and expire


def test_two_documents_with_one_name_never_overwrite(s3_storage):
    first = document_store(kind="label", title="a", content=b"one", content_type="application/pdf", filename="x.pdf")
    second = document_store(kind="label", title="b", content=b"two", content_type="application/pdf", filename="x.pdf")
    assert first.file.name != second.file.name
    assert s3_storage.get_object(Bucket=BUCKET, Key=first.file.name)["Body"].read() == b"one"


def test_local_media_is_the_default(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    doc = document_store(
        kind="slip", title="Slip", content=b"%PDF-slip", content_type="application/pdf", filename="s.pdf"
    )
    assert (tmp_path / doc.file.name).read_bytes() == b"%PDF-slip"
