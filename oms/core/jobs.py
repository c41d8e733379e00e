"""RQ entry points of the core."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q
from django.utils import timezone

from oms.core.models import Alert
from oms.core.selectors import alert_recipients

logger = logging.getLogger(__name__)


def alert_email(alert_id: int) -> int:
    """E-mail a new alert to the managers who may see it, once. Returns how many addresses it went to."""
    alert = Alert.objects.filter(pk=alert_id).select_related("channel").first()
    if alert is None or alert.emailed_at is not None:
        return 0
    recipients = alert_recipients(alert)
    if recipients:
        link = f"{settings.OMS_BASE_URL.rstrip('/')}{alert.link}" if alert.link.startswith("/") else alert.link
        body = "\n\n".join(part for part in (alert.message, link) if part)
        send_mail(f"[OMS] {alert.title}", body or alert.title, None, recipients)
    # Claim it only now: a crash before sending leaves it for a retry, and two runs send at most twice.
    Alert.objects.filter(Q(pk=alert.pk), Q(emailed_at__isnull=True)).update(emailed_at=timezone.now())
    logger.info("alert %s e-mailed to %d managers", alert.pk, len(recipients))
    return len(recipients)
