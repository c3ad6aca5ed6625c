"""What a provider's tracking event means for a reader: a hard bounce or a complaint suppresses the address at once,
soft bounces count against a threshold, a provider-side unsubscribe unsubscribes. Events arrive through
newsletter/webhooks.py, stored once per event id; each is acted on here, once, in a task."""

import logging

from anymail.signals import EventType
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from newsletter.digests import states as digest_states
from newsletter.models import Delivery, Digest, WebhookEvent
from newsletter.sending.ledger import DELIVERED_STATUSES
from subscribers.models import Subscriber, Suppression
from subscribers.services import suppress

log = logging.getLogger(__name__)
HARD_FAILURES = (EventType.BOUNCED, EventType.REJECTED)
DETAIL_LIMIT = 2000


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
            if row is not None:
                pause_if_complaints(row.digest_id)
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


def pause_if_complaints(digest_id: int) -> bool:
    """A running send pauses itself once its complaints pass DELIVERY_PAUSE_COMPLAINT_RATE of the messages it
    delivered (at least DELIVERY_PAUSE_COMPLAINT_MIN_DELIVERED of them, so that the first complaint of a small
    send does not stop it): Gmail and Yahoo junk or refuse a sender whose complaints reach 0.3%."""
    if not Digest.objects.filter(pk=digest_id, status=Digest.Status.SENDING).exists():
        return False
    counts = Delivery.objects.filter(digest_id=digest_id).aggregate(
        delivered=Count("pk", filter=Q(status__in=DELIVERED_STATUSES)),
        complained=Count("pk", filter=Q(status=Delivery.Status.COMPLAINED)),
    )
    delivered, complained = counts["delivered"], counts["complained"]
    if delivered < settings.DELIVERY_PAUSE_COMPLAINT_MIN_DELIVERED:
        return False
    if complained / delivered <= settings.DELIVERY_PAUSE_COMPLAINT_RATE:
        return False
    reason = (
        f"complaints at {complained / delivered:.2%} ({complained} of {delivered} delivered), past "
        f"{settings.DELIVERY_PAUSE_COMPLAINT_RATE:.2%}"
    )
    paused = digest_states.attempt(digest_id, "self_pause", pause_reason=reason)
    if paused:
        log.error("digest %s paused: %s", digest_id, reason)
    return paused


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
