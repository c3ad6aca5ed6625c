"""Provider tracking webhooks: a hard bounce or a complaint suppresses the address at once, soft bounces count
against a threshold, a provider-side unsubscribe unsubscribes.

anymail's view at /anymail/<esp>/tracking/ checks the basic-auth shared secret (ANYMAIL_WEBHOOK_SECRET,
"user:password") and turns each provider's payload into one normalized event. The receiver here stores the
event once per event id and queues the work: providers retry webhooks that answer slowly or fail.
"""

import hashlib
import json

from anymail.signals import AnymailTrackingEvent, EventType, tracking
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.dispatch import receiver
from django.utils import timezone

from newsletter.models import Delivery, WebhookEvent
from subscribers.models import Subscriber, Suppression
from subscribers.services import suppress

HARD_FAILURES = (EventType.BOUNCED, EventType.REJECTED)
ACTED_ON = (*HARD_FAILURES, EventType.DEFERRED, EventType.COMPLAINED, EventType.UNSUBSCRIBED)
# Bounces a provider reports under "bounced" though the mailbox may recover (Postmark's Type field).
SOFT_BOUNCE_TYPES = ("SoftBounce", "Transient", "DnsError")
DETAIL_LIMIT = 2000


def event_key(event: AnymailTrackingEvent, esp_name: str) -> str:
    """The provider's event id; for providers without one, a hash of what identifies the event."""
    if event.event_id:
        return f"{esp_name}:{event.event_id}"[:200]
    parts = [esp_name, event.event_type, event.message_id, event.recipient, str(event.timestamp)]
    return f"{esp_name}:sha256:{hashlib.sha256(json.dumps(parts).encode()).hexdigest()}"


def is_soft(event: AnymailTrackingEvent) -> bool:
    if event.event_type == EventType.DEFERRED:
        return True
    esp_event = event.esp_event if isinstance(event.esp_event, dict) else {}
    return event.event_type == EventType.BOUNCED and esp_event.get("Type") in SOFT_BOUNCE_TYPES


@receiver(tracking, dispatch_uid="newsletter.webhooks.on_tracking_event")
def on_tracking_event(sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: object) -> None:
    from newsletter.tasks import process_webhook_event_task

    if event.event_type not in ACTED_ON:
        return
    detail = " — ".join(str(part) for part in (event.description, event.mta_response) if part)
    try:
        with transaction.atomic():
            stored = WebhookEvent.objects.create(
                event_id=event_key(event, esp_name),
                esp=esp_name[:30],
                event_type=event.event_type,
                recipient=(event.recipient or "")[:254],
                message_id=(event.message_id or "")[:300],
                detail=detail[:DETAIL_LIMIT],
                soft=is_soft(event),
            )
    except IntegrityError:
        return  # a retry or duplicate of an event we already have
    transaction.on_commit(lambda: process_webhook_event_task.delay(stored.pk))


def apply_event(event_pk: int) -> None:
    """Act on one stored event, once."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_pk)
        if event.processed_at or not event.recipient:
            return
        row = Delivery.objects.filter(message_id=event.message_id).first() if event.message_id else None
        if event.event_type == EventType.COMPLAINED:
            suppress(event.recipient, Suppression.Reason.COMPLAINT, event.detail[:300])
            mark(row, Delivery.Status.COMPLAINED, event)
        elif event.soft:
            count_soft_bounce(event)
        elif event.event_type in HARD_FAILURES:
            suppress(event.recipient, Suppression.Reason.HARD_BOUNCE, event.detail[:300])
            mark(row, Delivery.Status.BOUNCED, event)
        elif event.event_type == EventType.UNSUBSCRIBED:
            now = timezone.now()
            Subscriber.objects.filter(email__iexact=event.recipient, status=Subscriber.Status.ACTIVE).update(
                status=Subscriber.Status.UNSUBSCRIBED, unsubscribed_at=now, updated_at=now
            )
        event.processed_at = timezone.now()
        event.save(update_fields=["processed_at"])


def mark(row: Delivery | None, status: str, event: WebhookEvent) -> None:
    if row is not None:
        row.status, row.error = status, f"{event.esp} {event.event_type}: {event.detail}"[:DETAIL_LIMIT]
        row.save(update_fields=["status", "error", "updated_at"])


def count_soft_bounce(event: WebhookEvent) -> None:
    subscribers = Subscriber.objects.filter(email__iexact=event.recipient)
    subscribers.update(soft_bounces=F("soft_bounces") + 1)
    if subscribers.filter(soft_bounces__gte=settings.DELIVERY_SOFT_BOUNCE_LIMIT).exists():
        detail = f"{settings.DELIVERY_SOFT_BOUNCE_LIMIT} soft bounces, the last: {event.detail}"[:300]
        suppress(event.recipient, Suppression.Reason.HARD_BOUNCE, detail)
