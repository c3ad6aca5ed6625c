"""Celery tasks for subscribers: thin, take ids, queued after commit."""

from celery import shared_task
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from newsletter.render import build_message, render_email, site_link
from subscribers.models import Subscriber
from subscribers.services import consent_state, purge_unconfirmed
from subscribers.tokens import CONFIRM_MAX_AGE_SECONDS, Purpose, make_token


def confirmation_email(subscriber: Subscriber) -> EmailMultiAlternatives:
    token = make_token(subscriber.pk, Purpose.CONFIRM, state=consent_state(subscriber))
    context = {
        "confirm_url": site_link(f"/confirm/{token}/"),
        "valid_days": CONFIRM_MAX_AGE_SECONDS // 86400,
        "frequency": subscriber.get_frequency_display().lower(),
        "site_url": site_link("/"),
    }
    return build_message(render_email("confirm", context), subscriber.email)


@shared_task(ignore_result=True)  # nobody reads it; the email in the outbox/provider is the result
def send_confirmation_task(subscriber_id: int) -> bool:
    """Mail the confirmation link if the subscriber is still waiting for one; False when there is nothing to do
    (confirmed meanwhile, unsubscribed, purged)."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id, status=Subscriber.Status.PENDING).first()
    if subscriber is None:
        return False
    confirmation_email(subscriber).send()
    return True


@shared_task
def purge_unconfirmed_task() -> int:
    return purge_unconfirmed(timezone.now())
