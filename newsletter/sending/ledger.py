"""The delivery ledger's rows: one per (digest, subscriber), written before a message goes out and updated after,
so a crash never re-sends to everyone and every recipient's fate can be read from the ledger.

    queued ──claim──► sending ──► sent (provider message id) ──webhook──► bounced / complained
     ▲  ▲                │  └───► failed (permanent rejection, or transient errors past the retry window)
     │  └── transient ───┘  └───► skipped (unsubscribed or suppressed since the list was fixed; cancelled)
     │      error: waits until its next_attempt_at
     └── the worker died (its chunk's lease ran out) ─sweeper─► queued again, or ambiguous

A worker holds a chunk under a lease (`SendLease`) that it renews while it sends; it claims rows a batch at a
time (claim_batch_size) and writes their outcomes as one batch, so a worker killed with kill -9 leaves at most
the batches it had on the wire with a fate unknown, and the queries per chunk do not grow with the recipients.
"""

import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Count, F, Field, JSONField, Min, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from newsletter.models import Delivery, Digest, SendLease, WebhookEvent
from subscribers.models import Subscriber, Suppression, email_hash

# Rows claimed, and outcomes written, together: one message at a time (SMTP), a killed worker leaves at most this
# many rows whose fate is unknown, and one claim plus one write per this many messages keeps the database out of
# the hot loop.
CLAIM_BATCH_SIZE = 20
# With many messages in flight (a provider's HTTP API) the rows whose fate a killed worker leaves unknown are
# those in flight, about DELIVERY_CONCURRENCY whatever the batch, and the round trips of a claim and a write
# per batch are what the batch size buys down: at 20 they held a worker ~0.2 ms a message at a 1,000/s quota.
CLAIM_BATCH_SIZE_IN_FLIGHT = 50

# Subscriber ids per INSERT when recipients are added for given ids (SQLite takes up to 32,766 parameters).
RECIPIENT_BATCH = 5000
OPEN_STATUSES = (Delivery.Status.QUEUED, Delivery.Status.SENDING)
# Rows that reached the provider (a bounce or complaint comes after the message went out).
DELIVERED_STATUSES = (Delivery.Status.SENT, Delivery.Status.BOUNCED, Delivery.Status.COMPLAINED)
# A live worker renews its lease this often, as a share of the lease: two renewals can be missed before it runs out.
RENEW_SHARE = 3
REQUEUED_PREFIX = "queued again after: "


def claim_batch_size(concurrency: int) -> int:
    """Rows claimed together by a wire with this many messages in flight at most."""
    return CLAIM_BATCH_SIZE if concurrency == 1 else CLAIM_BATCH_SIZE_IN_FLIGHT


@dataclass
class SendCounts:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retry: int = 0  # rows handed back to the queue after a transient error, for a later attempt
    unsent: int = 0  # rows still queued (waiting for a retry, or for a paused send) or being sent

    def summary(self) -> str:
        return f"sent={self.sent} skipped={self.skipped} failed={self.failed} unsent={self.unsent}"

    @classmethod
    def of_digest(cls, digest_id: int) -> "SendCounts":
        counts = ledger_counts(digest_id)
        return cls(
            sent=sum(counts[status] for status in DELIVERED_STATUSES),
            skipped=counts[Delivery.Status.SKIPPED],
            # An ambiguous row is not known to have arrived: it counts with the failures.
            failed=counts[Delivery.Status.FAILED] + counts[Delivery.Status.AMBIGUOUS],
            unsent=sum(counts[status] for status in OPEN_STATUSES),
        )


def db_value(field_name: str, value: object) -> object:
    """`value` as the database takes it for this Delivery field (the hand-written statements below)."""
    return Delivery._meta.get_field(field_name).get_db_prep_save(value, connection)


def fix_recipients(digest: Digest, subscriber_ids: Iterable[int] | None = None) -> int:
    """One queued Delivery row per active subscriber (of `subscriber_ids`, or all) without one.

    One INSERT ... SELECT in the database (per RECIPIENT_BATCH ids when they are given): a 100k send used to
    load every id into Python and build 100k objects before the first message could go."""
    quote, now = connection.ops.quote_name, timezone.now()
    values = {
        "digest_id": digest.pk,
        "status": Delivery.Status.QUEUED,
        "paper_ids": db_value("paper_ids", []),
        "message_id": "",
        "error": "",
        "attempts": 0,
        "interruptions": 0,
        "claim_token": "",
        "created_at": db_value("created_at", now),
        "updated_at": db_value("updated_at", now),
    }
    delivery, subscriber = quote(Delivery._meta.db_table), quote(Subscriber._meta.db_table)
    columns = ", ".join(quote(name) for name in [*values, "subscriber_id"])
    sql = (
        f"INSERT INTO {delivery} ({columns}) SELECT {', '.join(['%s'] * len(values))}, s.id "  # noqa: S608
        f"FROM {subscriber} s WHERE s.status = %s AND NOT EXISTS "
        f"(SELECT 1 FROM {delivery} d WHERE d.digest_id = %s AND d.subscriber_id = s.id){{only}} "
        "ON CONFLICT DO NOTHING"
    )
    # Only quoted identifiers and placeholders are interpolated; every value is a parameter.
    params = [*values.values(), Subscriber.Status.ACTIVE, digest.pk]
    added = 0
    with connection.cursor() as cursor:
        if subscriber_ids is None:
            cursor.execute(sql.format(only=""), params)
            return cursor.rowcount
        ids = list(subscriber_ids)
        for start in range(0, len(ids), RECIPIENT_BATCH):
            batch = ids[start : start + RECIPIENT_BATCH]
            cursor.execute(sql.format(only=f" AND s.id IN ({', '.join(['%s'] * len(batch))})"), [*params, *batch])
            added += cursor.rowcount
    return added


def due(now: datetime | None = None) -> Q:
    """Queued rows that may be tried now: not waiting for a later attempt."""
    return Q(status=Delivery.Status.QUEUED) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now or timezone.now())
    )


def due_subscriber_ids(digest_id: int) -> list[int]:
    return list(
        Delivery.objects.filter(due(), digest_id=digest_id)
        .order_by("subscriber_id")
        .values_list("subscriber_id", flat=True)
    )


# --- A worker's hold on its chunk ------------------------------------------------------------------------


def lease_seconds() -> timedelta:
    return timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)


class Lease:
    """This process's hold on a chunk of a send, renewed while it sends. While it stands nobody else sends the
    chunk's claimed rows; once it runs out (the worker died) the sweeper hands the whole chunk to the live
    workers. The token names the process, for post-mortems, and marks the rows it claims."""

    def __init__(self, digest_id: int, subscriber_ids: list[int]) -> None:
        self.token = f"{os.getpid():x}-{uuid.uuid4().hex}"[:32]
        now = timezone.now()
        SendLease.objects.create(
            token=self.token, digest_id=digest_id, subscriber_ids=subscriber_ids, expires_at=now + lease_seconds()
        )
        self.renew_at = now + lease_seconds() / RENEW_SHARE

    def keep(self) -> bool:
        """Renew the lease when a renewal is due (a clock check otherwise). False once the sweeper took the chunk
        away (the lease ran out: this worker was too slow to renew it) - it must then stop claiming."""
        now = timezone.now()
        if now < self.renew_at:
            return True
        self.renew_at = now + lease_seconds() / RENEW_SHARE
        return bool(SendLease.objects.filter(token=self.token).update(expires_at=now + lease_seconds()))

    def drop(self) -> None:
        # One statement: the ORM's delete() wraps even this in a transaction of its own, three round trips.
        table = connection.ops.quote_name(SendLease._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE token = %s", [self.token])  # noqa: S608 - our table's name


@contextmanager
def ledger_write() -> Iterator[CursorWrapper]:
    """A transaction for a claim or an outcome. With DELIVERY_LEDGER_SYNC_COMMIT off (the default), PostgreSQL
    acknowledges it before its WAL reaches the disk: the flush cost more than the statement, twice per
    CLAIM_BATCH_SIZE messages. A crash of the database server itself (not of a worker) may then forget the
    last fraction of a second of claims and outcomes: those rows read queued or sending again and the
    sweeper resends them, so the cost is a few duplicate messages, never a lost recipient. Every other write
    stays synchronous."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not settings.DELIVERY_LEDGER_SYNC_COMMIT:
            cursor.execute("SET LOCAL synchronous_commit TO off")
        yield cursor


def claim(digest_id: int, row_ids: list[int], token: str) -> dict[int, str]:
    """Move these rows from queued to sending under the lease's token, unless the digest stopped sending, the
    lease is gone (the sweeper gave the chunk to another worker) or a row waits for a later attempt.

    Returns {row id: the subscriber's status now} for the rows this call won; rows another worker holds, or
    that are already done, are left alone. One UPDATE ... RETURNING (PostgreSQL, SQLite >= 3.35): the ORM
    would need a second query to learn the rows won, and this runs once per CLAIM_BATCH_SIZE messages."""
    if not row_ids:
        return {}
    quote, now = connection.ops.quote_name, timezone.now()
    stamp = db_value("claimed_at", now)
    delivery, subscriber = quote(Delivery._meta.db_table), quote(Subscriber._meta.db_table)
    # Only quoted identifiers and placeholders are interpolated; every value is a parameter.
    sql = (
        f"UPDATE {delivery} SET status = %s, claim_token = %s, claimed_at = %s, updated_at = %s, "  # noqa: S608
        f"attempts = {delivery}.attempts + 1 "
        f"WHERE {delivery}.id IN ({', '.join(['%s'] * len(row_ids))}) AND {delivery}.status = %s "
        f"AND ({delivery}.next_attempt_at IS NULL OR {delivery}.next_attempt_at <= %s) "
        f"AND EXISTS (SELECT 1 FROM {quote(Digest._meta.db_table)} WHERE id = %s AND status = %s) "
        f"AND EXISTS (SELECT 1 FROM {quote(SendLease._meta.db_table)} WHERE token = %s) "
        f"RETURNING {delivery}.id, (SELECT s.status FROM {subscriber} s WHERE s.id = {delivery}.subscriber_id)"
    )
    params = [Delivery.Status.SENDING, token, stamp, stamp, *row_ids, Delivery.Status.QUEUED, stamp]
    with ledger_write() as cursor:
        cursor.execute(sql, [*params, digest_id, Digest.Status.SENDING, token])
        return dict(cursor.fetchall())


RECORDED_FIELDS = (
    "status",
    "error",
    "message_id",
    "sent_at",
    "paper_ids",
    "attempts",
    "next_attempt_at",
    "retry_until",
)


def column_value(field: Field, value: object) -> object:
    """A value as psycopg takes it in an array: as it is, but JSON as JSON. (Django's get_db_prep_save per
    value of a batch cost half as long as the database took to write the batch.)"""
    return field.get_db_prep_save(value, connection) if isinstance(field, JSONField) else value


def array_type(field: Field) -> str:
    """The array a column's values travel in: of the column's type without its length, so that a value too long
    for the column is refused by the UPDATE as it would be one row at a time (a cast to varchar(n) would cut
    it short without a word)."""
    return f"{field.db_type(connection).split('(')[0]}[]"


def record(token: str, rows: list[Delivery]) -> None:
    """Write the outcomes of a batch, only where our claim still stands.

    On PostgreSQL one UPDATE joined to the outcomes passed as one array per column (unnest): its text and its
    parameters are the same few whatever the batch's size, and the server runs one statement, not one per row
    (half the time of the per-row statements below, which took ~0.12 ms a row). Elsewhere (SQLite) one short
    UPDATE per row, sent together. Not Django's bulk_update, which spends far longer resolving expressions than
    the database spends running them, nor one UPDATE ... CASE or VALUES list, whose thousands of characters and
    parameters cost more to parse and plan than the rows to write."""
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(Delivery._meta.db_table)
    fields = [Delivery._meta.get_field(name) for name in RECORDED_FIELDS]
    updated_at = db_value("updated_at", timezone.now())
    # Only quoted identifiers, column types and placeholders are interpolated; every value is a parameter.
    if connection.vendor == "postgresql":
        columns = [Delivery._meta.pk, *fields]
        arrays = [[column_value(f, getattr(row, f.attname)) for row in rows] for f in columns]
        assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in fields)
        sql = (
            f"UPDATE {table} SET {assignments}, {quote('updated_at')} = %s "  # noqa: S608
            f"FROM unnest({', '.join(f'%s::{array_type(f)}' for f in columns)}) "
            f"AS v({', '.join(quote(f.column) for f in columns)}) "
            f"WHERE {table}.{quote('id')} = v.{quote('id')} AND {table}.{quote('claim_token')} = %s "
            f"AND {table}.{quote('status')} = %s"
        )
        with ledger_write() as cursor:
            cursor.execute(sql, [updated_at, *arrays, token, Delivery.Status.SENDING])
        return
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in [*fields, Delivery._meta.get_field("updated_at")])
    sql = (
        f"UPDATE {table} SET {assignments} "  # noqa: S608
        f"WHERE {quote('id')} = %s AND {quote('claim_token')} = %s AND {quote('status')} = %s"
    )
    params = [
        [
            *(f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields),
            updated_at,
            row.pk,
            token,
            Delivery.Status.SENDING,
        ]
        for row in rows
    ]
    with ledger_write() as cursor:
        cursor.executemany(sql, params)


def defer_rest(digest_id: int, subscriber_ids: list[int], until: datetime, error: str) -> int:
    """After a refusal that ended the connection: the chunk's rows not yet tried wait as long as the one refused,
    for the same reason (the provider is down for them too), instead of being handed out again at once."""
    return Delivery.objects.filter(
        digest_id=digest_id, subscriber_id__in=subscriber_ids, status=Delivery.Status.QUEUED, next_attempt_at=None
    ).update(next_attempt_at=until, error=error, updated_at=timezone.now())


# --- Editors' and operators' actions on rows ---------------------------------------------------------------


def requeue_failed(digest_id: int) -> int:
    """Failed rows back in the queue, for another window of retries: not those of readers who since left or
    were suppressed (a refused address past the limit among them). Ambiguous rows stay: they may have arrived."""
    rows = Delivery.objects.filter(
        digest_id=digest_id, status=Delivery.Status.FAILED, subscriber__status=Subscriber.Status.ACTIVE
    ).values_list("pk", "subscriber__email")
    hashes = {pk: email_hash(email) for pk, email in rows}
    suppressed = set(Suppression.objects.filter(email_hash__in=hashes.values()).values_list("email_hash", flat=True))
    ids = [pk for pk, hashed in hashes.items() if hashed not in suppressed]
    return Delivery.objects.filter(pk__in=ids, status=Delivery.Status.FAILED).update(
        status=Delivery.Status.QUEUED,
        error=Concat(Value(REQUEUED_PREFIX), F("error")),
        next_attempt_at=None,
        retry_until=None,
        updated_at=timezone.now(),
    )


def skip_queued(digest_id: int, reason: str) -> int:
    """A cancelled send: rows not yet sent are skipped with the reason. Returns rows skipped."""
    return Delivery.objects.filter(digest_id=digest_id, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.SKIPPED, error=reason, next_attempt_at=None, updated_at=timezone.now()
    )


# --- Reading the ledger -----------------------------------------------------------------------------------


def open_count(digest_id: int) -> int:
    """Rows of the digest still queued or being sent: a range of the (digest, status) index."""
    return Delivery.objects.filter(digest_id=digest_id, status__in=OPEN_STATUSES).count()


def ledger_counts(digest_id: int) -> dict[str, int]:
    rows = Delivery.objects.filter(digest_id=digest_id).values("status").annotate(n=Count("pk"))
    counts = {status: 0 for status in Delivery.Status.values}
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


@dataclass
class Waiting:
    """Rows of a digest waiting for a retry: how many, when the first is due, and the error most of them had."""

    rows: int = 0
    next_attempt_at: datetime | None = None
    error: str = ""


def waiting(digest_id: int, now: datetime | None = None) -> Waiting:
    """Queued rows that were tried and wait to be tried again: before their next attempt, due and not yet handed
    out by the sweeper, or handed out and not yet taken by a worker. Counting only the rows whose time is still
    to come missed them all at the instants when the sweeper had just handed them out."""
    rows = Delivery.objects.filter(digest_id=digest_id, status=Delivery.Status.QUEUED).exclude(error="")
    found = rows.aggregate(n=Count("pk"))
    if not found["n"]:
        return Waiting()
    upcoming = rows.filter(next_attempt_at__gt=now or timezone.now()).aggregate(first=Min("next_attempt_at"))
    common = rows.values("error").annotate(n=Count("pk")).order_by("-n").first()
    return Waiting(found["n"], upcoming["first"], common["error"] if common else "")


def purge_ledger(now: datetime | None = None) -> int:
    """Drop ledger rows and webhook events older than DELIVERY_LEDGER_DAYS; a ledger must not grow forever."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.DELIVERY_LEDGER_DAYS)
    WebhookEvent.objects.filter(received_at__lt=cutoff).delete()
    deleted, _ = Delivery.objects.filter(created_at__lt=cutoff).delete()
    return deleted
