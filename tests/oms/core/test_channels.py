"""Channels: configured from the command line or the admin, credentials and secrets encrypted at rest."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from oms.core.models import AuditEntry, SalesChannel
from oms.core.services import channel_end_secret_rotation

pytestmark = pytest.mark.django_db

SHOPIFY = [
    "shopify",
    "my-shop",
    "--name",
    "My Shop",
    "--option",
    "shop_domain=my-shop.myshopify.com",
    "--option",
    "access_token=shpat_secret_token",
    "--option",
    "webhook_secret=first-secret",
]


def raw_row(slug):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials, webhook_secret, options, api_base_url FROM core_saleschannel WHERE slug = %s", [slug]
        )
        return cursor.fetchone()


def test_add_channel_creates_a_shopify_channel(capsys):
    call_command("add_channel", *SHOPIFY)
    channel = SalesChannel.objects.get(slug="my-shop")
    assert channel.kind == "shopify"
    assert channel.api_base_url == "https://my-shop.myshopify.com"
    assert channel.options == {"shop_domain": "my-shop.myshopify.com"}
    assert channel.credentials == {"access_token": "shpat_secret_token"}
    assert channel.webhook_secret == "first-secret"
    assert "Created shopify channel 'my-shop'" in capsys.readouterr().out


def test_secrets_are_encrypted_at_rest_and_kept_out_of_the_audit_trail():
    call_command("add_channel", *SHOPIFY)
    credentials, secret, options, _ = raw_row("my-shop")
    assert "shpat_secret_token" not in credentials
    assert credentials.startswith("fernet:")
    assert "first-secret" not in secret
    assert "my-shop.myshopify.com" in options  # not a secret
    entry = AuditEntry.objects.get(verb="channel.create")
    assert "shpat_secret_token" not in str(entry.after)
    assert "first-secret" not in str(entry.after)
    assert entry.after["credentials"] == ["access_token"]


def test_running_again_updates_and_a_new_secret_starts_a_rotation():
    call_command("add_channel", *SHOPIFY)
    call_command("add_channel", "shopify", "my-shop", "--name", "Renamed", "--option", "webhook_secret=second")
    channel = SalesChannel.objects.get(slug="my-shop")
    assert channel.name == "Renamed"
    assert channel.webhook_secret == "second"
    assert channel.webhook_secret_previous == "first-secret"
    assert channel.webhook_secrets() == ["second", "first-secret"]
    assert channel.credentials == {"access_token": "shpat_secret_token"}  # kept
    assert channel.api_base_url == "https://my-shop.myshopify.com"  # kept
    channel_end_secret_rotation(channel=channel, actor=None)
    channel.refresh_from_db()
    assert channel.webhook_secrets() == ["second"]
    assert SalesChannel.objects.count() == 1


def test_api_base_url_points_at_a_sandbox():
    call_command("add_channel", *SHOPIFY, "--option", "api_base_url=http://127.0.0.1:8123")
    assert SalesChannel.objects.get().api_base_url == "http://127.0.0.1:8123"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["etsy", "x", "--name", "X"], "no adapter for channel kind 'etsy'"),
        (["shopify", "x", "--name", "X", "--option", "colour=red"], "unknown option"),
        (["shopify", "x", "--name", "X", "--option", "novalue"], "takes key=value"),
        (["shopify", "x", "--name", "X", "--option", "access_token=t"], "shop_domain"),
        (["shopify", "bad slug!", "--name", "X", "--option", "shop_domain=a.myshopify.com"], "slug"),
        (["shopify", "x", "--name", "X", "--option", "api_base_url=not a url"], "api_base_url"),
    ],
)
def test_add_channel_refuses_bad_input_with_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("add_channel", *args)
    assert not SalesChannel.objects.exists()


def test_a_channel_cannot_change_kind():
    call_command("add_channel", *SHOPIFY)
    channel = SalesChannel.objects.get()
    SalesChannel.objects.filter(pk=channel.pk).update(kind="other")
    with pytest.raises(CommandError, match="is a other channel"):
        call_command("add_channel", *SHOPIFY)


def test_inactive_flag():
    call_command("add_channel", *SHOPIFY, "--inactive")
    assert not SalesChannel.objects.get().active
    call_command("add_channel", "shopify", "my-shop", "--name", "My Shop", "--active")
    assert SalesChannel.objects.get().active


def test_a_sandbox_address_survives_updates_until_the_shop_changes():
    call_command("add_channel", *SHOPIFY, "--option", "api_base_url=http://127.0.0.1:8123")
    call_command("add_channel", "shopify", "my-shop", "--name", "My Shop", "--option", "webhook_secret=rotated")
    assert SalesChannel.objects.get().api_base_url == "http://127.0.0.1:8123"
    call_command("add_channel", "shopify", "my-shop", "--name", "My Shop", "--option", "shop_domain=new.myshopify.com")
    assert SalesChannel.objects.get().api_base_url == "https://new.myshopify.com"
