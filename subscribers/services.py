"""The consent state machine: new → pending → active → unsubscribed → pending again; suppressed never comes
back through sign-up. Views and tasks call these functions; they hold every transition."""

import contextlib
import enum
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import F
from django.utils import timezone

from subscribers import feedback
from subscribers.models import Subscriber, Suppression, email_hash

# Unconfirmed sign-ups are personal data we have no consent for: keep them two weeks (a confirmation link
# lives one week; a second request may come in the week after), then forget them.
UNCONFIRMED_RETENTION = timedelta(days=14)
# What a new sign-up request for a pending or unsubscribed address replaces.
REASKED_FIELDS = ("interests", "categories", "frequency", "status", "requested_at", "updated_at")
# psycopg's own default. Only cursors that bind on the server prepare anything, and Django's bind on the client,
# so in practice only `_prepared_cursor` below does (at once: it asks).
PREPARE_THRESHOLD = 5
Status = Subscriber.Status


@dataclass
class SignUp:
    email: str
    interests: str = ""
    categories: list[str] | None = None
    frequency: str = Subscriber.Frequency.DAILY
    seeds: list[str] | None = None  # arXiv ids of papers the reader knows (subscribers.seeds), liked once recorded


class Confirmation(enum.Enum):
    CONFIRMED = "confirmed"
    ALREADY = "already"  # a second click on the link, or the auto-submit and the button both
    INVALID = "invalid"  # forged, expired, replayed after the state moved on, or the reader is gone


def consent_state(subscriber: Subscriber) -> str:
    """What a confirmation link is bound to: it changes whenever consent is given, withdrawn or asked again."""
    stamps = (subscriber.confirmed_at, subscriber.unsubscribed_at)
    return "|".join([str(subscriber.pk), subscriber.status, *(s.isoformat() if s else "-" for s in stamps)])


def request_subscription(signup: SignUp, now: datetime | None = None) -> int | None:
    """Record a sign-up request made at `now`. Returns the id of the subscriber it made or put back to pending,
    or None when nothing changes (already active, suppressed, the same address being signed up by a concurrent
    request, or a request no newer than the one recorded: a task run again, or run after a later one).

    Runs in the task the sign-up queues (`subscribers.tasks.signup_task`), never in the request: the request does
    the same work whatever the address's state, and what depends on it happens here. Two statements
    (`_signup_sql`), both run whatever the state."""
    now = now or timezone.now()
    pending = Subscriber(
        email=signup.email,
        interests=signup.interests,
        categories=list(signup.categories or []),
        frequency=signup.frequency,
        status=Status.PENDING,
        created_at=now,
        requested_at=now,
        updated_at=now,
    )
    db = transaction.get_connection()  # the connection itself: every attribute of the proxy is a look-up
    update, insert = _signup_sql(db.vendor)
    hashed = email_hash(signup.email)
    values = {f.name: f.get_db_prep_save(getattr(pending, f.attname), db) for f in _fields()}  # as the ORM writes
    with _prepared_cursor(db) as cursor:
        reasked = [*(values[name] for name in REASKED_FIELDS), signup.email, signup.email, values["requested_at"]]
        cursor.execute(update, [*reasked, hashed])
        reasked_row = cursor.fetchone()
        new_row = _insert(cursor, insert, [*values.values(), signup.email, hashed])  # inserts nothing if known
    row = reasked_row or new_row
    return row[0] if row else None


def _fields(names: tuple[str, ...] | None = None) -> list:
    """The columns of `names` in that order (default: every column but the id, in the model's order)."""
    if names is None:
        return [f for f in Subscriber._meta.concrete_fields if not f.primary_key]
    return [Subscriber._meta.get_field(name) for name in names]


@functools.cache
def _signup_sql(vendor: str) -> tuple[str, str]:
    """Re-ask an existing pending or unsubscribed subscriber; insert the address if no row has it. Each is one
    round trip (no transaction, no lock held between them), written out because the ORM has no UPDATE that
    returns ids nor an INSERT guarded by NOT EXISTS. UPPER(email) is the subscriber_email_upper index.

    Only the oldest row is re-asked if an import left the address twice in different case, found through the
    address alone (with ORDER BY id LIMIT 1, or the status beside it, a planner with stale statistics walks
    another index, and a table that grows fast in a sign-up rush has them). An active reader's preferences are
    changed from their own link, not by whoever knows their address; a suppressed one never comes back. A request
    no newer than the recorded one changes nothing (the same task run twice, or two run out of order)."""
    quote = connection.ops.quote_name
    subscribers, suppressions = quote(Subscriber._meta.db_table), quote(Suppression._meta.db_table)
    # Our own tables, columns and states; the values go in as parameters.
    unsuppressed = f"NOT EXISTS (SELECT 1 FROM {suppressions} WHERE email_hash = %s)"  # noqa: S608
    reasked = ", ".join(f"{quote(f.column)} = %s" for f in _fields(REASKED_FIELDS))
    update = (
        f"UPDATE {subscribers} SET {reasked} WHERE id = "  # noqa: S608
        f"(SELECT id FROM {subscribers} oldest WHERE UPPER(oldest.email) = UPPER(%s) AND NOT EXISTS "
        f"(SELECT 1 FROM {subscribers} older WHERE UPPER(older.email) = UPPER(%s) AND older.id < oldest.id)) "
        f"AND status IN ('{Status.PENDING}', '{Status.UNSUBSCRIBED}') "
        f"AND (requested_at IS NULL OR requested_at < %s) AND {unsuppressed} RETURNING id"
    )
    columns = _fields()
    insert = (
        f"INSERT INTO {subscribers} ({', '.join(quote(f.column) for f in columns)}) "  # noqa: S608
        f"SELECT {', '.join(['%s'] * len(columns))} "
        f"WHERE NOT EXISTS (SELECT 1 FROM {subscribers} WHERE UPPER(email) = UPPER(%s)) AND {unsuppressed} "
        "RETURNING id"
    )
    return update, insert


@contextlib.contextmanager
def _prepared_cursor(db: BaseDatabaseWrapper) -> Iterator[CursorWrapper]:
    """A cursor whose statements PostgreSQL parses and plans once per connection (server-side binding,
    prepared): planning the sign-up's two statements costs the server about as much as running them (figures in
    the README, "Only other projects' public APIs"). Django's own cursors bind on the client and never prepare.
    A psycopg cursor that binds on the server, in Django's public wrapper (error translation, query logging),
    for these two statements alone: DATABASES OPTIONS server_side_binding would change every query. Other
    databases: the usual cursor. (Through PgBouncer, prepared statements need 1.21+.)"""
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            yield cursor
        return
    db.ensure_connection()
    db.validate_thread_sharing()
    if db.connection.prepare_threshold is None:  # how Django leaves it: psycopg then prepares nothing, asked or not
        db.connection.prepare_threshold = PREPARE_THRESHOLD
    with db.wrap_database_errors:
        raw = _preparing_cursor_class()(db.connection)
    with db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw) as cursor:
        yield cursor


@functools.cache
def _preparing_cursor_class() -> type:
    import psycopg  # only imported on PostgreSQL

    class PreparingCursor(psycopg.Cursor):
        def execute(self, query, params=None, *, prepare: bool | None = True, binary: bool | None = None):
            return super().execute(query, params, prepare=prepare, binary=binary)

    return PreparingCursor


def _insert(cursor: CursorWrapper, sql: str, params: list) -> tuple | None:
    # The same address in a concurrent request got in first (the unique index refused this one): that request
    # sends the confirmation. A savepoint when inside a transaction keeps the caller's transaction usable.
    try:
        with transaction.atomic() if transaction.get_connection().in_atomic_block else contextlib.nullcontext():
            cursor.execute(sql, params)
            return cursor.fetchone()  # inside: SQLite holds the statement open until its RETURNING row is read
    except IntegrityError:
        return None


def claim_confirmation(subscriber_id: int) -> Subscriber | None:
    """Mark a pending subscriber's latest sign-up request as answered, before its confirmation email is sent.
    Returns the subscriber when this call made the claim; None when there is nothing to send (confirmed,
    unsubscribed or purged meanwhile, or this request's email already claimed by an earlier run)."""
    claimed = (
        Subscriber.objects.filter(pk=subscriber_id, status=Status.PENDING, requested_at__isnull=False)
        .exclude(confirmation_sent_for=F("requested_at"))
        .update(confirmation_sent_for=F("requested_at"))
    )
    return Subscriber.objects.filter(pk=subscriber_id).first() if claimed else None


def release_confirmation(subscriber: Subscriber) -> None:
    """The email could not be sent: let a later run of the task try again."""
    Subscriber.objects.filter(pk=subscriber.pk, confirmation_sent_for=F("requested_at")).update(
        confirmation_sent_for=None
    )


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


def resubscribe(subscriber_id: int, now: datetime | None = None) -> bool:
    """An unsubscribed reader asks, from their unsubscribe link, to get the digest again: pending, as a new
    sign-up request with their preferences kept, until they confirm by email. True when it was asked (the caller
    queues the confirmation); active, pending and suppressed readers (by status or by address) are left as they
    are."""
    now = now or timezone.now()
    unsubscribed = Subscriber.objects.filter(pk=subscriber_id, status=Status.UNSUBSCRIBED)
    email = unsubscribed.values_list("email", flat=True).first()
    if email is None or Suppression.is_suppressed(email):
        return False
    return bool(unsubscribed.update(status=Status.PENDING, requested_at=now, updated_at=now))


def unsubscribe(subscriber_id: int, now: datetime | None = None) -> None:
    """Stop all mail to this subscriber from the next send on. Idempotent: a second call changes nothing,
    and a suppressed address stays suppressed."""
    Subscriber.objects.filter(pk=subscriber_id, status__in=[Status.ACTIVE, Status.PENDING]).update(
        status=Status.UNSUBSCRIBED, unsubscribed_at=now or timezone.now(), updated_at=now or timezone.now()
    )


PREFERENCE_FIELDS = ("interests", "categories", "frequency", "delivery_hour", "time_zone", "papers_per_digest")


def suppress(email: str, reason: str, detail: str = "") -> None:
    """Never mail this address again: a hashed suppression entry, and the subscriber marked suppressed."""
    Suppression.objects.get_or_create(email_hash=email_hash(email), defaults={"reason": reason, "detail": detail})
    Subscriber.objects.filter(email__iexact=email.strip()).update(status=Status.SUPPRESSED, updated_at=timezone.now())


def count_rejections(rejected: dict[int, str], limit: int) -> int:
    """Count a permanent refusal of each of these readers' addresses ({subscriber id: the server's reply}) like a
    hard bounce: an address refused `limit` times is suppressed. Returns how many were."""
    Subscriber.objects.filter(pk__in=rejected).update(rejections=F("rejections") + 1)
    past = Subscriber.objects.filter(pk__in=rejected, rejections__gte=limit).exclude(status=Status.SUPPRESSED)
    gone = list(past.values_list("pk", "email"))
    for pk, email in gone:
        suppress(email, Suppression.Reason.HARD_BOUNCE, f"refused {limit} times, the last: {rejected[pk]}"[:300])
    return len(gone)


def export_data(subscriber: Subscriber) -> dict:
    """Everything we hold about one reader, as a data download."""
    stamps = ("created_at", "requested_at", "confirmation_sent_for", "confirmed_at", "unsubscribed_at", "updated_at")
    data = {"email": subscriber.email, "status": subscriber.status}
    data |= {name: getattr(subscriber, name) for name in PREFERENCE_FIELDS}
    data |= {name: getattr(subscriber, name).isoformat() if getattr(subscriber, name) else None for name in stamps}
    data["soft_bounces"] = subscriber.soft_bounces
    data["rejections"] = subscriber.rejections
    data["ratings"] = feedback.export_rows(subscriber)
    data["ratings_model"] = feedback.export_model(subscriber)
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
