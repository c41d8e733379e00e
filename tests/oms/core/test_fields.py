"""Encrypted and compressed fields round-trip, and store what they promise."""

import json

import pytest
from django.db import connection

from oms.core.models import InboundEvent
from tests.emulators.shopify import order_payload

pytestmark = pytest.mark.django_db


def test_inbox_body_is_stored_compressed_and_read_back_as_text(channel):
    body = json.dumps(order_payload())
    event = InboundEvent.objects.create(channel=channel, event_key="orders/create:1", topic="orders/create", body=body)
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM core_inboundevent WHERE id = %s", [event.pk])
        stored = bytes(cursor.fetchone()[0])
    assert len(stored) * 2 < len(body.encode())
    assert InboundEvent.objects.get(pk=event.pk).body == body


def test_inbox_body_written_before_compression_is_still_readable(channel):
    event = InboundEvent.objects.create(channel=channel, event_key="orders/create:2", topic="orders/create", body="{}")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE core_inboundevent SET body = %s WHERE id = %s", [b'{"legacy": true}', event.pk])
    assert InboundEvent.objects.get(pk=event.pk).body == '{"legacy": true}'
