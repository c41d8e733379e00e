"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connection

from tests.factories import sales_channel, shop_catalog, staff_user

# The default storage on moto's S3 server: the fixtures s3_server and s3_storage.
pytest_plugins = ["tests.s3"]


def _on_sqlite() -> bool:
    return connection.vendor == "sqlite"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Each test starts with an empty cache: ids repeat between tests, and cached permissions are keyed by id."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def needs_server_db() -> None:
    """Row-lock concurrency needs MariaDB/MySQL; in CI a skip is a failure (see .ci/run)."""
    if _on_sqlite():
        if os.environ.get("CI"):
            pytest.fail("this test needs MariaDB/MySQL: set DATABASE_URL")
        pytest.skip("needs MariaDB/MySQL for row-lock concurrency (set DATABASE_URL)")


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("this test needs Redis: set REDIS_URL")
        pytest.skip("needs a Redis server (set REDIS_URL)")
    return url


@pytest.fixture
def channel(db):
    shop_catalog()  # the shop sells what it has: orders of the default SKUs are allocated, not held
    return sales_channel(slug="main-shop", name="Main Shop")


@pytest.fixture
def other_channel(db):
    return sales_channel(slug="eu-shop", name="EU Shop")


@pytest.fixture
def admin_user(db):
    return staff_user("Admin", username="admin-user")


@pytest.fixture
def manager(db, channel):
    """A manager limited to `channel`."""
    return staff_user("Manager", username="manager-a", channels=[channel])


@pytest.fixture
def warehouse_user(db):
    return staff_user("Warehouse", username="warehouse-user")


@pytest.fixture
def packer(db):
    return staff_user("Packer", username="packer-user")


@pytest.fixture(scope="session")
def artifacts_dir() -> str:
    path = os.path.join(settings.BASE_DIR, settings.TEST_ARTIFACTS_DIR)
    os.makedirs(path, exist_ok=True)
    return path


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI every test must run: a skip (a missing server, a missing browser) fails the run."""
    if not os.environ.get("CI"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if reporter is not None and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; in CI every test must run", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
