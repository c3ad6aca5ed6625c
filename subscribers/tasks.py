"""Celery tasks for subscribers: thin, take ids (and a sign-up's fields), queued after commit."""

from datetime import datetime

from celery import shared_task
from django.utils import timezone

from subscribers import feedback, seeding
from subscribers.emails import confirmation_email, privacy_email
from subscribers.models import Subscriber
from subscribers.services import (
    SignUp,
    claim_confirmation,
    purge_unconfirmed,
    release_confirmation,
    request_subscription,
)


@shared_task(ignore_result=True)  # nobody reads it; the email in the outbox/provider is the result
def send_confirmation_task(subscriber_id: int | None) -> bool:
    """Mail the confirmation link for the subscriber's latest sign-up request, once; False when there is nothing
    to do (no subscriber to ask: active or suppressed; confirmed, unsubscribed or purged meanwhile; already
    sent for this request). The send is claimed first, so a run repeated after a lost worker sends nothing
    twice (a worker lost between the claim and the send sends nothing: the reader signs up again)."""
    subscriber = claim_confirmation(subscriber_id) if subscriber_id is not None else None
    if subscriber is None:
        return False
    try:
        confirmation_email(subscriber).send()
    except Exception:
        release_confirmation(subscriber)  # nothing went out: a later run may send it
        raise
    return True


@shared_task(ignore_result=True)
def signup_task(signup: dict, requested_at: str) -> bool:
    """A sign-up request, as the form read it (`SignUp`'s fields) and when it was made (ISO 8601): record it and
    mail the confirmation if the address's state calls for one. The request only queued this, whatever the state,
    so its timing tells nobody who subscribes. Run twice, it records and sends nothing twice."""
    subscriber_id = request_subscription(SignUp(**signup), datetime.fromisoformat(requested_at))
    if subscriber_id is not None and signup.get("seeds"):
        # Only a new (or again pending) reader is seeded: a sign-up form can't add ratings to someone's profile.
        seed(subscriber_id, signup["seeds"])
    return send_confirmation_task(subscriber_id)


def seed(subscriber_id: int, arxiv_ids: list[str]) -> None:
    """Like the papers of these ids: those we hold now, the others once the arXiv API has been asked."""
    if missing := seeding.rate_known(subscriber_id, arxiv_ids):
        seed_fetch_task.delay(subscriber_id, missing)
    retrain_task.delay(subscriber_id)


@shared_task(ignore_result=True)
def seed_fetch_task(subscriber_id: int, arxiv_ids: list[str]) -> int:
    """Look up the papers a reader named that we don't hold (subscribers.seeding.fetch_and_rate) and like them;
    how many were rated. Run again, it rates nothing twice."""
    if not Subscriber.objects.filter(pk=subscriber_id).exists():
        return 0
    rated = seeding.fetch_and_rate(subscriber_id, arxiv_ids)
    feedback.retrain(subscriber_id)
    return rated


@shared_task(ignore_result=True)
def send_privacy_link_task(subscriber_id: int) -> bool:
    """Mail a data link the reader asked for on their preferences page; False if they are gone meanwhile. A rerun
    mails another link that works as well (and is rate-limited with the requests)."""
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is None:
        return False
    privacy_email(subscriber).send()
    return True


@shared_task
def purge_unconfirmed_task() -> int:
    return purge_unconfirmed(timezone.now())


@shared_task(ignore_result=True)
def retrain_task(subscriber_id: int) -> bool:
    """The reader rated: refit the model their next digest ranks with (subscribers.feedback.retrain)."""
    return feedback.retrain(subscriber_id)
