"""Permissions come from the cache, and a change of roles applies on the next check."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import staff_user

pytestmark = pytest.mark.django_db


def fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)  # a new request loads the user anew


def test_a_second_request_reads_permissions_from_the_cache():
    packer = staff_user("Packer")
    assert fresh(packer).has_perm("dispatch.pack_orders")
    user = fresh(packer)
    with CaptureQueriesContext(connection) as queries:
        assert user.has_perm("dispatch.pack_orders")
        assert not user.has_perm("dispatch.void_shipment")
    assert len(queries) == 0


def test_a_new_group_applies_at_once():
    user = staff_user("Packer")
    assert not fresh(user).has_perm("dispatch.void_shipment")
    user.groups.add(Group.objects.get(name="Manager"))
    assert fresh(user).has_perm("dispatch.void_shipment")
    user.groups.remove(Group.objects.get(name="Manager"))
    assert not fresh(user).has_perm("dispatch.void_shipment")


def test_a_group_losing_a_permission_applies_at_once():
    user = staff_user("Packer")
    assert fresh(user).has_perm("dispatch.pack_orders")
    perm = Permission.objects.get(codename="pack_orders", content_type__app_label="dispatch")
    Group.objects.get(name="Packer").permissions.remove(perm)
    assert not fresh(user).has_perm("dispatch.pack_orders")


def test_an_inactive_user_has_no_permissions():
    user = staff_user("Packer")
    assert fresh(user).has_perm("dispatch.pack_orders")
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert not fresh(user).has_perm("dispatch.pack_orders")
