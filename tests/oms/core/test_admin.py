"""Every model is in the Django admin; changelists, searches and filters answer; the audit trail is read-only."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.urls import reverse

from tests.factories import ingested_order

pytestmark = pytest.mark.django_db

OMS_APPS = ("core", "inventory", "orders")


@pytest.fixture
def superuser_client(client):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_every_oms_model_is_registered():
    missing = [
        m.__name__ for app in OMS_APPS for m in apps.get_app_config(app).get_models() if m not in admin.site._registry
    ]
    assert missing == []


def test_changelists_search_and_filters_answer(superuser_client, channel):
    order = ingested_order(channel)
    for app in OMS_APPS:
        for model in apps.get_app_config(app).get_models():
            url = reverse(f"admin:{app}_{model._meta.model_name}_changelist")
            assert superuser_client.get(url).status_code == 200, url
            assert superuser_client.get(url, {"q": "x"}).status_code == 200, url
    detail = reverse("admin:orders_order_change", args=[order.pk])
    assert superuser_client.get(detail).status_code == 200


def test_audit_trail_is_read_only_in_the_admin(superuser_client, channel):
    ingested_order(channel)
    from oms.core.models import AuditEntry

    entry = AuditEntry.objects.earliest("created_at")
    assert superuser_client.get(reverse("admin:core_auditentry_add")).status_code == 403
    response = superuser_client.post(reverse("admin:core_auditentry_change", args=[entry.pk]), {"verb": "x"})
    assert response.status_code == 403
    assert superuser_client.get(reverse("admin:core_auditentry_delete", args=[entry.pk])).status_code == 403


def test_channel_admin_sets_secrets_encrypted_and_rotates(superuser_client):
    from oms.core.models import AuditEntry, SalesChannel

    response = superuser_client.post(
        reverse("admin:core_saleschannel_add"),
        {
            "kind": "shopify",
            "name": "Admin shop",
            "slug": "admin-shop",
            "active": "on",
            "api_base_url": "https://admin-shop.myshopify.com",
            "options": '{"shop_domain": "admin-shop.myshopify.com"}',
            "backfill_every_minutes": "15",
            "new_credentials": '{"access_token": "shpat_x"}',
            "new_webhook_secret": "one",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = SalesChannel.objects.get(slug="admin-shop")
    assert channel.credentials == {"access_token": "shpat_x"}
    assert channel.webhook_secret == "one"
    response = superuser_client.post(
        reverse("admin:core_saleschannel_change", args=[channel.pk]),
        {
            "kind": "shopify",
            "name": "Admin shop",
            "slug": "admin-shop",
            "active": "on",
            "api_base_url": "https://admin-shop.myshopify.com",
            "options": '{"shop_domain": "admin-shop.myshopify.com"}',
            "backfill_every_minutes": "15",
            "new_credentials": "",
            "new_webhook_secret": "two",
        },
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.webhook_secrets() == ["two", "one"]
    assert channel.credentials == {"access_token": "shpat_x"}
    entry = AuditEntry.objects.filter(verb="channel.update").latest("id")
    assert entry.actor_label == "root"
    assert entry.before["webhook_secret_set"] is True
    assert entry.after["previous_secret_set"] is True
    assert "two" not in str(entry.after)
    assert "shpat_x" not in str(entry.before) + str(entry.after)
    bad = superuser_client.post(
        reverse("admin:core_saleschannel_change", args=[channel.pk]),
        {
            "kind": "shopify",
            "name": "Admin shop",
            "slug": "admin-shop",
            "options": "{}",
            "backfill_every_minutes": "15",
            "new_credentials": '["not", "an", "object"]',
        },
    )
    assert bad.status_code == 200
    assert "credentials must be a JSON object" in bad.content.decode()
