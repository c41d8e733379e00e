"""Django's default storage on S3 for a test: moto's server on 127.0.0.1 with dummy credentials, as in production.

Use the fixture `s3_storage` (it yields a boto3 client of the bucket); import both fixtures into a test module.
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from django.core.files.storage import storages
from django.test import override_settings
from moto.server import ThreadedMotoServer

from bench._harness import free_port

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
