"""The channel rate limiter every worker shares: one bucket, whichever process or instance asks."""

from __future__ import annotations

import pytest

from inventory.channels import SharedBucket, adapter_for_channel
from tests.factories import sales_channel


@pytest.fixture(params=["cache", "redis"])
def backend(request, settings):
    if request.param == "redis":
        url = request.getfixturevalue("redis_url").rsplit("/", 1)[0] + "/12"
        settings.OMS_JOBS_INLINE = False
        settings.RQ_QUEUES = {name: {"URL": url} for name in ("high", "default", "low")}
    else:
        settings.OMS_JOBS_INLINE = True
    bucket = SharedBucket("test-shared")
    bucket._set("")  # start empty
    return request.param


def test_two_instances_share_one_bucket(backend):
    one, other = SharedBucket("test-shared"), SharedBucket("test-shared")
    assert one.reserve(10) == 0  # nothing known yet: no pacing
    one.observe(available=100, maximum=100, restore_rate=50)
    # The first report is taken less what was let through before it: 100 - 10 = 90 left.
    assert other.reserve(80) == 0
    wait = one.reserve(30)  # 10 left, 30 wanted: 20 points short at 50/s
    assert 0.35 < wait < 0.5
    other.refund(30)
    assert other.reserve(5) < 0.2


def test_a_penalty_holds_back_every_instance(backend):
    SharedBucket("test-shared").penalize(2.0)
    assert 1.5 < SharedBucket("test-shared").reserve(1) <= 2.0


@pytest.mark.django_db
def test_the_channel_adapter_gets_the_shared_limiter():
    channel = sales_channel(slug="limited")
    adapter = adapter_for_channel(channel)
    assert isinstance(adapter.limiter, SharedBucket)
    assert adapter.limiter.key == f"oms:ratelimit:channel:{channel.pk}"
