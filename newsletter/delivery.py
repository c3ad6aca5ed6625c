"""The delivery ledger: fix the recipients, claim rows, send, record each outcome.

A Delivery row is written before a message goes out and updated after, so a crash never re-sends to
everyone and every recipient's fate can be read from the ledger:

    queued ──claim──► sending ──► sent (provider message id) ──webhook──► bounced / complained
       ▲                 │  └───► failed (permanent rejection, or transient errors past the last attempt)
       └── transient ────┘  └───► skipped (unsubscribed or suppressed since the list was fixed; cancelled)
           error, retried        sending too long (worker died) ─sweeper─► queued again or ambiguous

Rows are claimed and their outcomes written CLAIM_BATCH_SIZE at a time, so a worker killed with kill -9
leaves at most one batch in `sending`, and the queries per chunk do not grow with the recipients.
"""

import logging
import os
import smtplib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import redis
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.conf import settings
from django.core import mail
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Count, Exists, Max, OuterRef, Q
from django.utils import timezone

from newsletter.models import Delivery, Digest, WebhookEvent
from newsletter.ratelimit import TokenBucket, provider_bucket
from newsletter.render import digest_email
from papers.interests import negative_pattern
from papers.models import Paper, day_end
from papers.ranking import (
    REPEAT_LOOKBACK,
    Pick,
    already_sent,
    for_you_many,
    interests_of,
    rank_trending,
    with_title_twins,
)
from subscribers.models import Subscriber, Suppression, email_hash

log = logging.getLogger(__name__)

# Subscribers per Celery task: big enough to amortize the per-chunk queries and ranking, small enough
# that a chunk takes seconds, so a killed worker redoes little and several workers share a send evenly.
SEND_CHUNK_SIZE = 200
# Rows claimed, and outcomes written, together: a killed worker leaves at most this many rows whose fate is
# unknown, and one claim plus one write per this many messages keeps the database out of the hot loop.
CLAIM_BATCH_SIZE = 20
# Subscriber ids per INSERT when recipients are added for given ids (SQLite takes up to 32,766 parameters).
RECIPIENT_BATCH = 5000
OPEN_STATUSES = (Delivery.Status.QUEUED, Delivery.Status.SENDING)
# Rows that reached the provider (a bounce or complaint comes after the message went out).
DELIVERED_STATUSES = (Delivery.Status.SENT, Delivery.Status.BOUNCED, Delivery.Status.COMPLAINED)
# A digest in one of these takes no new recipients and no new claims.
CLOSED_DIGEST_STATUSES = (Digest.Status.CANCELLED, Digest.Status.SKIPPED, Digest.Status.PAUSED)
# SMTP reply that closes the connection: the rest of the chunk must wait for a new one.
SMTP_SERVICE_UNAVAILABLE = 421
ERROR_TEXT_LIMIT = 1000
WEEK_DAYS = 7  # weekly readers' digest draws on this many days of papers


def batched(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass
class SendCounts:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retry: int = 0  # rows handed back to the queue after a transient error, for a later attempt

    def summary(self) -> str:
        return f"sent={self.sent} skipped={self.skipped} failed={self.failed}"


# --- Starting, pausing, resuming, cancelling -------------------------------------------------------------


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


def start_send(digest_id: int, subscriber_ids: Iterable[int] | None = None, everyone: bool = False) -> list[list[int]]:
    """Mark the digest as sending, add recipients, and return the queued subscriber ids in chunks.

    Recipients are added for `subscriber_ids`, or for every active subscriber when `everyone` is set or the
    digest has not started yet; with neither, a send already under way just continues (resume, sweeper)."""
    with transaction.atomic():
        digest = Digest.objects.select_for_update().get(pk=digest_id)
        if digest.status in CLOSED_DIGEST_STATUSES:
            return []
        under_way = digest.status in (Digest.Status.SENDING, Digest.Status.SENT)
        adding = everyone or subscriber_ids is not None or not under_way
        if not adding and digest.status == Digest.Status.SENT:
            return []
        if digest.status != Digest.Status.SENDING:
            digest.status = Digest.Status.SENDING
            digest.send_started_at = digest.send_started_at or timezone.now()
            digest.save(update_fields=["status", "send_started_at"])
        if adding:
            fix_recipients(digest, subscriber_ids)
    queued = list(
        Delivery.objects.filter(digest_id=digest_id, status=Delivery.Status.QUEUED)
        .order_by("subscriber_id")
        .values_list("subscriber_id", flat=True)
    )
    if not queued:
        finish_if_done(digest_id)
    return batched(queued, SEND_CHUNK_SIZE)


def pause_send(digest_id: int) -> bool:
    """Workers stop claiming rows for this digest; what is in flight finishes."""
    return bool(Digest.objects.filter(pk=digest_id, status=Digest.Status.SENDING).update(status=Digest.Status.PAUSED))


def resume_send(digest_id: int) -> bool:
    """Back to sending, and the queued rows fanned out to the workers again."""
    from newsletter.tasks import fan_out

    with transaction.atomic():
        if not Digest.objects.filter(pk=digest_id, status=Digest.Status.PAUSED).update(status=Digest.Status.SENDING):
            return False
        fan_out(digest_id)
    return True


def cancel_send(digest_id: int) -> int:
    """Stop for good: no more claims; rows not yet sent are skipped with the reason. Returns rows skipped."""
    with transaction.atomic():
        Digest.objects.filter(pk=digest_id).exclude(status__in=[Digest.Status.SENT, Digest.Status.SKIPPED]).update(
            status=Digest.Status.CANCELLED
        )
        return Delivery.objects.filter(digest_id=digest_id, status=Delivery.Status.QUEUED).update(
            status=Delivery.Status.SKIPPED, error="send cancelled", updated_at=timezone.now()
        )


# --- Sending one chunk ---------------------------------------------------------------------------------


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


def claim(digest_id: int, row_ids: list[int]) -> tuple[str, dict[int, str]]:
    """Move these rows from queued to sending under a fresh token, unless the digest stopped sending.

    Returns the token and {row id: the subscriber's status now} for the rows this call won; rows another
    worker holds, or that are already done, are left alone. The token names the process, for post-mortems.
    One UPDATE ... RETURNING (PostgreSQL, SQLite >= 3.35): the ORM would need a second query to learn the
    rows won, and this runs once per CLAIM_BATCH_SIZE messages."""
    token = f"{os.getpid():x}-{uuid.uuid4().hex}"[:32]
    if not row_ids:
        return token, {}
    quote, now = connection.ops.quote_name, timezone.now()
    stamp = db_value("claimed_at", now)
    delivery, subscriber = quote(Delivery._meta.db_table), quote(Subscriber._meta.db_table)
    # Only quoted identifiers and placeholders are interpolated; every value is a parameter.
    sql = (
        f"UPDATE {delivery} SET status = %s, claim_token = %s, claimed_at = %s, updated_at = %s, "  # noqa: S608
        f"attempts = {delivery}.attempts + 1 "
        f"WHERE {delivery}.id IN ({', '.join(['%s'] * len(row_ids))}) AND {delivery}.status = %s "
        f"AND EXISTS (SELECT 1 FROM {quote(Digest._meta.db_table)} WHERE id = %s AND status = %s) "
        f"RETURNING {delivery}.id, (SELECT s.status FROM {subscriber} s WHERE s.id = {delivery}.subscriber_id)"
    )
    params = [Delivery.Status.SENDING, token, stamp, stamp, *row_ids, Delivery.Status.QUEUED]
    with ledger_write() as cursor:
        cursor.execute(sql, [*params, digest_id, Digest.Status.SENDING])
        return token, dict(cursor.fetchall())


RECORDED_FIELDS = ("status", "error", "message_id", "sent_at", "paper_ids", "attempts")


def record(token: str, rows: list[Delivery]) -> None:
    """Write the outcomes of a batch, only where our claim still stands: one short UPDATE per row, sent
    together (psycopg's executemany pipelines them in one round trip, the statement parsed once).

    Not Django's bulk_update, which spends far longer resolving expressions than the database spends
    running them, nor one UPDATE ... CASE, whose thousands of characters psycopg re-parses every time."""
    if not rows:
        return
    quote = connection.ops.quote_name
    fields = [Delivery._meta.get_field(name) for name in RECORDED_FIELDS]
    # Only quoted identifiers and placeholders are interpolated; every value is a parameter.
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in [*fields, Delivery._meta.get_field("updated_at")])
    sql = (
        f"UPDATE {quote(Delivery._meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {quote('id')} = %s AND {quote('claim_token')} = %s AND {quote('status')} = %s"
    )
    updated_at = db_value("updated_at", timezone.now())
    params = [
        [
            *(f.get_db_prep_save(getattr(row, f.name), connection) for f in fields),
            updated_at,
            row.pk,
            token,
            Delivery.Status.SENDING,
        ]
        for row in rows
    ]
    with ledger_write() as cursor:
        cursor.executemany(sql, params)


def smtp_code(exc: BaseException) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return max((code for code, _ in exc.recipients.values()), default=None)
    return getattr(exc, "smtp_code", None)


def is_transient(exc: BaseException) -> bool:
    """Worth another try later: timeouts, dropped connections, HTTP 429/5xx, SMTP 4xx (421, 450, 451...)."""
    if isinstance(exc, AnymailRecipientsRefused):
        return False
    if isinstance(exc, AnymailAPIError):
        return exc.status_code is None or exc.status_code == 429 or exc.status_code >= 500
    code = smtp_code(exc)
    if code is not None:
        return 400 <= code < 500
    return isinstance(exc, OSError | TimeoutError | redis.RedisError)


def breaks_connection(exc: BaseException) -> bool:
    """A transient refusal of one recipient leaves the connection usable; anything else ends the chunk."""
    return not (isinstance(exc, smtplib.SMTPRecipientsRefused) and smtp_code(exc) != SMTP_SERVICE_UNAVAILABLE)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_LIMIT]


@dataclass
class Edition:
    """What one group of readers gets: a trending section, and each reader's "For you" picks."""

    trending: list[Paper]
    papers: dict[int, Paper]
    picks: Mapping[int, list[Pick]]
    sent: dict[int, set[int]]  # what each reader got from earlier digests

    def for_reader(self, subscriber: Subscriber) -> list[tuple[Pick, Paper]]:
        return [(pick, self.papers[pick.paper_id]) for pick in self.picks.get(subscriber.pk, [])]

    def trending_for(self, subscriber: Subscriber) -> list[Paper]:
        """The shared section less what this reader was sent before (pinned papers stay) and anything that
        matches one of their "no ..." interests (those never appear, pinned or not)."""
        seen = self.sent.get(subscriber.pk, set())
        unwanted = negative_pattern(interests_of(subscriber).negatives)
        return [
            paper
            for paper in self.trending
            if (paper.pinned or paper.pk not in seen)
            and not (unwanted and unwanted.search(f"{paper.title} {paper.abstract}"))
        ]


def edition(trending: list[Paper], candidates: list[Paper], subscribers: list[Subscriber], day: date) -> Edition:
    """Never a paper twice to one reader: "For you" leaves out today's trending papers and anything an earlier
    digest sent them."""
    sent = with_title_twins(
        already_sent([s.pk for s in subscribers], day - REPEAT_LOOKBACK, other_than=day), candidates
    )
    shown = {p.pk for p in trending}
    exclude = {s.pk: shown | sent[s.pk] for s in subscribers}
    picks = for_you_many(subscribers, candidates, exclude)
    return Edition(trending, {p.pk: p for p in candidates}, picks, sent)


def week_candidates(day: date) -> list[Paper]:
    """The papers the week's daily digests drew on, for weekly readers' "the week's best"."""
    from newsletter.digest import CANDIDATE_WINDOW, candidate_papers

    papers = {}
    for back in range(0, WEEK_DAYS, CANDIDATE_WINDOW.days):
        papers.update((p.pk, p) for p in candidate_papers(day - timedelta(days=back)))
    return list(papers.values())


def editions(digest: Digest, subscribers: list[Subscriber]) -> dict[str, Edition]:
    """Daily readers get the digest's trending section; weekly readers the best of the week's papers."""
    from newsletter.digest import candidate_papers

    daily = [s for s in subscribers if s.frequency != Subscriber.Frequency.WEEKLY]
    weekly = [s for s in subscribers if s.frequency == Subscriber.Frequency.WEEKLY]
    found = {}
    if daily:
        trending = list(Paper.objects.filter(digestpaper__digest=digest).order_by("digestpaper__position"))
        found[Subscriber.Frequency.DAILY] = edition(trending, candidate_papers(digest.date), daily, digest.date)
    if weekly:
        week = week_candidates(digest.date)
        found[Subscriber.Frequency.WEEKLY] = edition(
            rank_trending(week, settings.DIGEST_TRENDING_COUNT, now=day_end(digest.date)), week, weekly, digest.date
        )
    return found


def send_one(digest: Digest, row: Delivery, edition: Edition, connection: object, bucket: TokenBucket | None) -> None:
    """Render and send one reader's digest; on success the row says sent, with the provider's message id."""
    subscriber = row.subscriber
    picks = edition.for_reader(subscriber)
    shown = edition.trending_for(subscriber)
    message = digest_email(digest, subscriber, shown, picks)
    message.connection = connection
    if bucket:
        bucket.take()
    message.send()
    status = getattr(message, "anymail_status", None)
    provider_id = status.message_id if status is not None else None
    row.message_id = str(message.extra_headers["Message-ID"] if provider_id is None else provider_id)[:300]
    row.status, row.sent_at, row.error = Delivery.Status.SENT, timezone.now(), ""
    row.paper_ids = [p.pk for p in shown] + [pick.paper_id for pick, _ in picks]


def send_chunk(digest_id: int, subscriber_ids: list[int]) -> SendCounts:
    """Send this digest to the chunk's subscribers whose rows are still queued. Safe to run twice."""
    counts = SendCounts()
    digest = Digest.objects.get(pk=digest_id)
    if digest.status != Digest.Status.SENDING:
        return counts
    rows = list(
        Delivery.objects.filter(digest_id=digest_id, subscriber_id__in=subscriber_ids, status=Delivery.Status.QUEUED)
        .select_related("subscriber")
        .order_by("subscriber_id")
    )
    if not rows:
        finish_if_done(digest_id)
        return counts
    by_frequency = editions(digest, [row.subscriber for row in rows])
    hashes = [email_hash(row.subscriber.email) for row in rows]
    suppressed = set(Suppression.objects.filter(email_hash__in=hashes).values_list("email_hash", flat=True))
    bucket = provider_bucket()
    with mail.get_connection() as connection:
        for batch in batched(rows, CLAIM_BATCH_SIZE):
            token, won = claim(digest_id, [row.pk for row in batch])
            done: list[Delivery] = []
            broken = None
            for row in (row for row in batch if row.pk in won):
                done.append(row)
                row.attempts += 1  # as the claim counted it
                status_now = won[row.pk]
                if broken:
                    row.status, row.error = Delivery.Status.QUEUED, f"retrying after {broken}"
                    row.attempts -= 1  # never tried: the attempt is given back
                    counts.retry += 1
                elif status_now != Subscriber.Status.ACTIVE or email_hash(row.subscriber.email) in suppressed:
                    why = "suppressed" if status_now == Subscriber.Status.ACTIVE else status_now
                    row.status, row.error = Delivery.Status.SKIPPED, f"subscriber is {why}"
                    counts.skipped += 1
                else:
                    try:
                        send_one(digest, row, by_frequency[row.subscriber.frequency], connection, bucket)
                        counts.sent += 1
                    except Exception as exc:  # noqa: BLE001 - every provider error is recorded on the row
                        if is_transient(exc) and row.attempts < settings.DELIVERY_MAX_ATTEMPTS:
                            row.status, row.error = Delivery.Status.QUEUED, describe(exc)
                            counts.retry += 1
                            broken = describe(exc) if breaks_connection(exc) else None
                        else:
                            log.warning("delivery %s failed: %s", row.pk, exc)
                            row.status, row.error = Delivery.Status.FAILED, describe(exc)
                            counts.failed += 1
            record(token, done)
            if broken:
                break
            if any(row.status == Delivery.Status.FAILED for row in done):
                pause_if_failing(digest_id)
    finish_if_done(digest_id)
    return counts


def pause_if_failing(digest_id: int) -> bool:
    """Past the error-rate threshold the send pauses itself: something is wrong beyond single addresses."""
    outcomes = Delivery.objects.filter(digest_id=digest_id).aggregate(
        failed=Count("pk", filter=Q(status=Delivery.Status.FAILED)),
        done=Count("pk", filter=Q(status__in=[Delivery.Status.FAILED, *DELIVERED_STATUSES])),
    )
    if outcomes["done"] < settings.DELIVERY_PAUSE_MIN_OUTCOMES:
        return False
    if outcomes["failed"] / outcomes["done"] <= settings.DELIVERY_PAUSE_ERROR_RATE:
        return False
    paused = pause_send(digest_id)
    if paused:
        log.error("digest %s paused: %s of %s deliveries failed", digest_id, outcomes["failed"], outcomes["done"])
    return paused


def finish_if_done(digest_id: int) -> bool:
    if Delivery.objects.filter(digest_id=digest_id, status__in=OPEN_STATUSES).exists():
        return False
    Digest.objects.filter(pk=digest_id, status=Digest.Status.SENDING).update(
        status=Digest.Status.SENT, sent_at=timezone.now()
    )
    return True


# --- Housekeeping --------------------------------------------------------------------------------------


def stuck_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=settings.DELIVERY_CLAIM_TIMEOUT_SECONDS)


def stuck_count(now: datetime | None = None) -> int:
    """Rows claimed by a worker that has not reported back within the claim timeout (for the admin)."""
    return Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_at__lt=stuck_cutoff(now)).count()


def sweep_stuck(now: datetime | None = None) -> int:
    """Resolve rows left in `sending` by a dead worker, by DELIVERY_STUCK_POLICY. Returns rows resolved.

    "resend" queues them again (a message that was on the wire at the crash may arrive twice), unless they
    already used every attempt (a message that kills its worker each time must not loop forever)."""
    stuck = Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_at__lt=stuck_cutoff(now))
    # updated_at is left at the claim, so the digest counts as stalled and is fanned out again at once.
    resolved = 0
    if settings.DELIVERY_STUCK_POLICY == "resend":
        resolved += stuck.filter(attempts__lt=settings.DELIVERY_MAX_ATTEMPTS).update(
            status=Delivery.Status.QUEUED, error="worker stopped mid-send; queued again"
        )
    resolved += stuck.update(
        status=Delivery.Status.AMBIGUOUS, error="worker stopped mid-send; the message may or may not have gone"
    )
    return resolved


def stalled_digests(now: datetime | None = None) -> list[int]:
    """Digests sending with queued rows but no ledger activity for the claim timeout: their tasks were lost
    (broker restarted empty, worker killed holding them); fanning out again is safe, claims are exclusive."""
    sending = Digest.objects.filter(status=Digest.Status.SENDING).filter(
        Exists(Delivery.objects.filter(digest=OuterRef("pk"), status=Delivery.Status.QUEUED).values("pk"))
    )
    cutoff = stuck_cutoff(now)
    return [
        digest.pk
        for digest in sending.annotate(last=Max("deliveries__updated_at"))
        if digest.last is None or digest.last < cutoff
    ]


def purge_ledger(now: datetime | None = None) -> int:
    """Drop ledger rows and webhook events older than DELIVERY_LEDGER_DAYS; a ledger must not grow forever."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.DELIVERY_LEDGER_DAYS)
    WebhookEvent.objects.filter(received_at__lt=cutoff).delete()
    deleted, _ = Delivery.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def open_count(digest_id: int) -> int:
    """Rows of the digest still queued or being sent: a range of the (digest, status) index."""
    return Delivery.objects.filter(digest_id=digest_id, status__in=OPEN_STATUSES).count()


def ledger_counts(digest_id: int) -> dict[str, int]:
    rows = Delivery.objects.filter(digest_id=digest_id).values("status").annotate(n=Count("pk"))
    counts = {status: 0 for status in Delivery.Status.values}
    counts.update({row["status"]: row["n"] for row in rows})
    return counts
