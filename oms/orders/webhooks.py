"""POST /webhooks/<channel-slug>/: verify, store once, acknowledge. No outbound call and no stock work here."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from channels_adapters.base import InvalidPayload, InvalidSignature
from inventory.channels import adapter_for_channel
from oms.core.selectors import channel_for_webhook
from oms.orders.services import inbound_event_store


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
@require_POST
def channel_webhook(request: HttpRequest, slug: str) -> JsonResponse:
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "bad Content-Length")
    if declared > limit:
        return _error(413, f"body over {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        return _error(413, f"body over {limit} bytes")

    channel = channel_for_webhook(slug)
    if channel is None:
        return _error(404, "no such channel")
    adapter = adapter_for_channel(channel)
    try:
        envelope = adapter.verify_webhook(request.headers, body)
        text = body.decode("utf-8")
    except InvalidSignature:
        return _error(401, "signature does not match")
    except (InvalidPayload, UnicodeDecodeError) as exc:
        return _error(400, f"malformed payload: {exc}")

    event, created = inbound_event_store(channel=channel, envelope=envelope, body=text)
    return JsonResponse({"status": "accepted" if created else "duplicate", "event": event.pk})
