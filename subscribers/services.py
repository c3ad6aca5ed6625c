"""The consent state machine: new → pending → active → unsubscribed → pending again; suppressed never comes
back through sign-up. Views and tasks call these functions; they hold every transition."""

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from subscribers.models import Subscriber, Suppression, email_hash

# Unconfirmed sign-ups are personal data we have no consent for: keep them two weeks (a confirmation link
# lives one week; a second request may come in the week after), then forget them.
UNCONFIRMED_RETENTION = timedelta(days=14)
Status = Subscriber.Status


@dataclass
class SignUp:
    email: str
    interests: str = ""
    categories: list[str] | None = None
    frequency: str = Subscriber.Frequency.DAILY


class Confirmation(enum.Enum):
    CONFIRMED = "confirmed"
    ALREADY = "already"  # a second click on the link, or the auto-submit and the button both
    INVALID = "invalid"  # forged, expired, replayed after the state moved on, or the reader is gone


def consent_state(subscriber: Subscriber) -> str:
    """What a confirmation link is bound to: it changes whenever consent is given, withdrawn or asked again."""
    stamps = (subscriber.confirmed_at, subscriber.unsubscribed_at)
    return "|".join([str(subscriber.pk), subscriber.status, *(s.isoformat() if s else "-" for s in stamps)])


def request_subscription(signup: SignUp, now: datetime | None = None) -> int | None:
    """Record a sign-up request. Returns the id of the subscriber to send a confirmation to, or None when no
    email should go out (already active, suppressed). The caller answers the same page either way."""
    now = now or timezone.now()
    seen = _seen(signup.email)
    if "suppressed" in seen:
        return None
    fields = {
        "interests": signup.interests,
        "categories": list(signup.categories or []),
        "frequency": signup.frequency,
        "status": Status.PENDING,
        "requested_at": now,
    }
    if "known" not in seen:
        try:  # the common case, a new address: one INSERT, no lock to wait for
            return _insert(Subscriber(email=signup.email, created_at=now, **fields))
        except IntegrityError:  # the same address signed up in a concurrent request: treat it as known
            pass
    with transaction.atomic():
        # The oldest row if an import left the address twice in different case; none if purged meanwhile.
        subscriber = Subscriber.objects.select_for_update().filter(email__iexact=signup.email).order_by("pk").first()
        if subscriber is None:
            return _insert(Subscriber(email=signup.email, created_at=now, **fields))
        if subscriber.status in (Status.ACTIVE, Status.SUPPRESSED):
            # Nothing changes: an active reader's preferences are changed from their own link, not by
            # whoever knows their address.
            return None
        for name, value in fields.items():
            setattr(subscriber, name, value)
        subscriber.save(update_fields=[*fields, "updated_at"])
    return subscriber.pk


def _seen(email: str) -> set[str]:
    """Whether the address is suppressed and whether a subscriber has it: one statement, written out because
    the ORM's UNION costs more to build than the database takes to answer it. UPPER(email) is the
    subscriber_email_upper index."""
    suppressions, subscribers = (connection.ops.quote_name(m._meta.db_table) for m in (Suppression, Subscriber))
    # The names are our own tables; the values go in as parameters.
    sql = (
        f"SELECT EXISTS (SELECT 1 FROM {suppressions} WHERE email_hash = %s), "  # noqa: S608
        f"EXISTS (SELECT 1 FROM {subscribers} WHERE UPPER(email) = UPPER(%s))"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [email_hash(email), email])
        suppressed, known = cursor.fetchone()
    return {name for name, flag in (("suppressed", suppressed), ("known", known)) if flag}


def _insert(subscriber: Subscriber) -> int:
    # Outside a transaction the INSERT commits by itself (one round trip instead of BEGIN/INSERT/COMMIT);
    # inside one, a savepoint keeps a duplicate-key error from breaking the caller's transaction.
    if transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            subscriber.save(force_insert=True)
    else:
        subscriber.save(force_insert=True)
    return subscriber.pk


def confirm(subscriber_id: int, state: str, now: datetime | None = None) -> Confirmation:
    """Activate a pending subscriber whose consent state is still `state` (the one the link was made for)."""
    now = now or timezone.now()
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
        if subscriber is None:
            return Confirmation.INVALID
        if subscriber.status == Status.PENDING and consent_state(subscriber) == state:
            subscriber.status = Status.ACTIVE
            subscriber.confirmed_at = now
            subscriber.save(update_fields=["status", "confirmed_at", "updated_at"])
            return Confirmation.CONFIRMED
        if subscriber.status == Status.ACTIVE:
            return Confirmation.ALREADY
    return Confirmation.INVALID


def unsubscribe(subscriber_id: int, now: datetime | None = None) -> None:
    """Stop all mail to this subscriber from the next send on. Idempotent: a second call changes nothing,
    and a suppressed address stays suppressed."""
    Subscriber.objects.filter(pk=subscriber_id, status__in=[Status.ACTIVE, Status.PENDING]).update(
        status=Status.UNSUBSCRIBED, unsubscribed_at=now or timezone.now(), updated_at=now or timezone.now()
    )


PREFERENCE_FIELDS = ("interests", "categories", "frequency", "delivery_hour", "time_zone", "papers_per_digest")


def export_data(subscriber: Subscriber) -> dict:
    """Everything we hold about one reader, as a data download."""
    stamps = ("created_at", "requested_at", "confirmed_at", "unsubscribed_at", "updated_at")
    data = {"email": subscriber.email, "status": subscriber.status}
    data |= {name: getattr(subscriber, name) for name in PREFERENCE_FIELDS}
    data |= {name: getattr(subscriber, name).isoformat() if getattr(subscriber, name) else None for name in stamps}
    data["soft_bounces"] = subscriber.soft_bounces
    data["deliveries"] = [
        {"digest": str(day), "status": status, "sent_at": sent.isoformat() if sent else None}
        for day, status, sent in subscriber.deliveries.order_by("digest__date").values_list(
            "digest__date", "status", "sent_at"
        )
    ]
    return data


def delete_for_good(subscriber_id: int) -> None:
    """Erase the reader and their delivery history; keep only a hash of the address on the suppression list
    so that no import or sign-up can add it back."""
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
        if subscriber is None:
            return
        Suppression.objects.get_or_create(
            email_hash=email_hash(subscriber.email), defaults={"reason": Suppression.Reason.DELETED}
        )
        subscriber.delete()


def purge_unconfirmed(now: datetime | None = None) -> int:
    """Delete sign-ups left unconfirmed for UNCONFIRMED_RETENTION. Returns how many."""
    cutoff = (now or timezone.now()) - UNCONFIRMED_RETENTION
    stale = Subscriber.objects.filter(status=Status.PENDING, requested_at__lt=cutoff)
    never_requested = Subscriber.objects.filter(status=Status.PENDING, requested_at=None, created_at__lt=cutoff)
    return sum(query.delete()[1].get("subscribers.Subscriber", 0) for query in (stale, never_requested))
