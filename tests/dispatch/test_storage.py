"""Documents go through Django's storage API: local media by default, S3 when configured (moto's server here)."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from dispatch.models import Document
from dispatch.services import document_store
from tests.s3 import BUCKET

pytestmark = pytest.mark.django_db


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
