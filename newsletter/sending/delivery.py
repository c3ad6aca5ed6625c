"""Sending a digest: fix the recipients, then per chunk of readers rank, render, send and record each outcome.

The ledger (newsletter.sending.ledger) says who got what; a worker holds its chunk under a lease it renews while it
sends (a dead worker's chunk goes to the live ones, newsletter.sending.sweeper); what a provider's error means for a
row is newsletter.sending.failures; the digest's own states are newsletter.digests.states.
"""

import logging
import random
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from newsletter.digests import states as digest_states
from newsletter.emails.render import digest_email
from newsletter.models import Delivery, Digest
from newsletter.sending import failures, wire
from newsletter.sending.history import already_sent
from newsletter.sending.ledger import (
    DELIVERED_STATUSES,
    OPEN_STATUSES,
    Lease,
    SendCounts,
    claim,
    claim_batch_size,
    defer_rest,
    due,
    due_subscriber_ids,
    fix_recipients,
    record,
)
from newsletter.sending.ratelimit import provider_bucket
from newsletter.sending.wire import Sent
from papers.interests import negative_pattern, read_many
from papers.models import Paper, day_end
from papers.ranking import (
    REPEAT_LOOKBACK,
    Pick,
    for_you_many,
    rank_trending,
    with_title_twins,
)
from subscribers.models import Subscriber, Suppression, email_hash
from subscribers.services import count_rejections

log = logging.getLogger(__name__)

# Subscribers per Celery task: big enough to amortize the per-chunk queries and ranking, small enough that a
# chunk takes seconds, so a killed worker redoes little and several workers share a send evenly. A send is cut
# into about SEND_CHUNKS chunks of SEND_CHUNK_MIN to SEND_CHUNK_SIZE readers (chunk_sizes: uneven, so that
# workers' pauses between chunks fall apart, and smaller at the start and the end): between two chunks a
# worker puts nothing on the wire for ~0.15-0.2 s (its last answers, the next chunk's rows and ranking)
# against a provider at 1,000/s and 50 ms. At 200 readers a chunk (~0.4 s of sending) a worker spent near
# half its time between chunks; at 1,000, a seventh; at 1,500 (a 100,000-reader send in ~90 chunks averaging
# 1,100) 2.5 s fewer in the bench's send than at 1,000, for no more memory (peak RSS 248 MB a worker either
# way). A small send keeps small chunks, so that every worker gets its share of it.
SEND_CHUNK_SIZE = 1500
SEND_CHUNK_MIN = 200
SEND_CHUNKS = 64
SEND_CHUNK_RAMP = 4  # the first and last chunks of a send: 1/4, 2/4, 3/4 of the size (chunk_sizes)
WEEK_DAYS = 7  # weekly readers' digest draws on this many days of papers


def chunk_size(readers: int) -> int:
    """Readers per chunk for a send to this many."""
    return max(SEND_CHUNK_MIN, min(SEND_CHUNK_SIZE, -(-readers // SEND_CHUNKS)))


def chunk_sizes(readers: int) -> list[int]:
    """The sizes of a send's chunks, in the order they are queued: at most chunk_size(readers) each, the first
    ones growing to it (a quarter, a half, three quarters), the last ones shrinking from it the same way, and
    those between of sizes drawn from half of it to all of it.

    Between two chunks a worker puts nothing on the wire for ~0.15-0.2 s (its last answers, the next chunk's
    rows and ranking). Workers given equal chunks tend to stay in step, drawing from one provider's bucket at
    the same pace (one that falls behind catches up while the other pauses), and then pause together. Chunks
    of uneven sizes keep their pauses apart, and while one worker pauses the others send faster: at 30,000
    readers the two were idle at once 0.5 s of their 3.5-3.7 s each, against 1.1 s of 2.7-2.8 s with equal
    chunks, at the same rate (the equal ones, larger on average, make fewer pauses); at 100,000 equal chunks
    were as fast. A guard for longer sends, more than a gain the bench shows. The growing start puts the first
    messages on the wire sooner; the shrinking end has the workers run out of readers at about the same time,
    not one sending the last alone. The sizes are drawn from a generator seeded with the count, so a send is
    always cut the same way."""
    size = chunk_size(readers)
    ramp = [size * step // SEND_CHUNK_RAMP for step in range(1, SEND_CHUNK_RAMP)]
    middle = readers - 2 * sum(ramp)
    if middle < size:
        return [size] * (readers // size) + ([readers % size] if readers % size else [])
    draw = random.Random(readers)  # noqa: S311 - spreading work, not a secret
    sizes = []
    while middle > size:
        sizes.append(draw.randint(size // 2, size))
        middle -= sizes[-1]
    return [*ramp, *sizes, middle, *ramp[::-1]]


def batched(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def start_send(digest_id: int, subscriber_ids: Iterable[int] | None = None, everyone: bool = False) -> list[int]:
    """Start (or go on with) the send, add recipients, and return the subscriber ids whose rows may go now.

    Recipients are added for `subscriber_ids`, or for every active subscriber when `everyone` is set or the
    digest has not started yet; with neither, a send already under way just continues. Rows waiting for a
    later attempt are left to the sweeper."""
    with transaction.atomic():
        digest = Digest.objects.select_for_update().get(pk=digest_id)
        adding = (
            everyone or subscriber_ids is not None or digest.status not in (Digest.Status.SENDING, Digest.Status.SENT)
        )
        if digest.status != Digest.Status.SENDING:
            if not adding or not digest_states.allowed(digest.status, "start"):
                return []
            digest_states.attempt(digest_id, "start", send_started_at=digest.send_started_at or timezone.now())
        if adding:
            fix_recipients(digest, subscriber_ids)
    queued = due_subscriber_ids(digest_id)
    if not queued:
        finish_if_done(digest_id)
    return queued


@dataclass
class Edition:
    """What one group of readers gets: a trending section, and each reader's "For you" picks."""

    trending: list[Paper]
    papers: dict[int, Paper]
    picks: Mapping[int, list[Pick]]
    sent: dict[int, set[int]]  # what each reader got from earlier digests
    negatives: dict[int, tuple[str, ...]]  # each reader's "no ..." phrases, for those who have any

    def for_reader(self, subscriber: Subscriber) -> list[tuple[Pick, Paper]]:
        return [(pick, self.papers[pick.paper_id]) for pick in self.picks.get(subscriber.pk, [])]

    def trending_for(self, subscriber: Subscriber) -> list[Paper]:
        """The shared section less what this reader was sent before (pinned papers stay) and anything that
        matches one of their "no ..." interests (those never appear, pinned or not)."""
        seen = self.sent.get(subscriber.pk, set())
        unwanted = negative_pattern(self.negatives.get(subscriber.pk, ()))
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
    # The group's interests read together, as the ranking reads them: one reader at a time costs far more.
    read = read_many([s.interests for s in subscribers], [s.categories or () for s in subscribers])
    negatives = {subscribers[i].pk: phrases for i, phrases in read.negatives.items()}
    return Edition(trending, {p.pk: p for p in candidates}, picks, sent, negatives)


def week_candidates(day: date) -> list[Paper]:
    """The papers the week's daily digests drew on, for weekly readers' "the week's best"."""
    from newsletter.digests.build import CANDIDATE_WINDOW, candidate_papers

    papers = {}
    for back in range(0, WEEK_DAYS, CANDIDATE_WINDOW.days):
        papers.update((p.pk, p) for p in candidate_papers(day - timedelta(days=back)))
    return list(papers.values())


def editions(digest: Digest, subscribers: list[Subscriber]) -> dict[str, Edition]:
    """Daily readers get the digest's trending section; weekly readers the best of the week's papers."""
    from newsletter.digests.build import candidate_papers

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


@dataclass
class Composed:
    """One reader's rendered digest, and what went into it."""

    message: EmailMessage
    shown: list[Paper]
    picks: list[tuple[Pick, Paper]]


def compose(digest: Digest, row: Delivery, edition: Edition) -> Composed:
    subscriber = row.subscriber
    picks = edition.for_reader(subscriber)
    shown = edition.trending_for(subscriber)
    return Composed(digest_email(digest, subscriber, shown, picks), shown, picks)


def mark_sent(row: Delivery, composed: Composed) -> None:
    """The row says sent, with the provider's message id (or our Message-ID) and the papers it carried."""
    status = getattr(composed.message, "anymail_status", None)
    provider_id = status.message_id if status is not None else None
    message_id = composed.message.extra_headers["Message-ID"] if provider_id is None else provider_id
    row.message_id = str(message_id)[:300]
    row.status, row.sent_at, row.error, row.next_attempt_at = Delivery.Status.SENT, timezone.now(), "", None
    row.paper_ids = [p.pk for p in composed.shown] + [pick.paper_id for pick, _ in composed.picks]


@dataclass
class Batch:
    """One claimed batch: its rows on the wire, then their outcomes as they are decided."""

    done: list[Delivery] = field(default_factory=list)
    rejected: dict[int, str] = field(default_factory=dict)  # subscriber → why the receiving side refused for good
    on_wire: list[tuple[Delivery, "Future[Sent]", Composed]] = field(default_factory=list)
    untried: list[Delivery] = field(default_factory=list)  # claimed, never sent: the connection had ended
    lost: bool = False  # the lease ran out mid-batch

    def settled(self) -> bool:
        return all(future.done() for _, future, _ in self.on_wire)


@dataclass
class Stop:
    """Why the chunk stopped sending: the row whose error ended the connection (the rest waits as long)."""

    broken: Delivery | None = None
    until: datetime | None = None
    error: str = ""


def send_chunk(digest_id: int, subscriber_ids: list[int]) -> SendCounts:
    """Send this digest to the chunk's subscribers whose rows are queued and due. Safe to run twice."""
    counts = SendCounts()
    digest = Digest.objects.get(pk=digest_id)
    if digest.status != Digest.Status.SENDING:
        return counts
    lease = Lease(digest_id, subscriber_ids)
    try:
        rows = list(
            Delivery.objects.filter(due(), digest_id=digest_id, subscriber_id__in=subscriber_ids)
            .select_related("subscriber")
            .order_by("subscriber_id")
        )
        if rows:
            send_rows(digest, rows, lease, counts)
    finally:
        lease.drop()
    finish_if_done(digest_id)
    return counts


def send_rows(digest: Digest, rows: list[Delivery], lease: Lease, counts: SendCounts) -> None:
    """Claim, render, send and record, a batch of rows at a time (ledger.claim_batch_size). With many messages
    in flight (a provider's HTTP API) the next batches are claimed and rendered while earlier ones are on the
    wire: at most enough batches to keep the wire busy, plus the one being rendered, are in `sending` at once."""
    by_frequency = editions(digest, [row.subscriber for row in rows])
    hashes = [email_hash(row.subscriber.email) for row in rows]
    suppressed = set(Suppression.objects.filter(email_hash__in=hashes).values_list("email_hash", flat=True))
    stop, lost = Stop(), False
    open_batches: deque[Batch] = deque()
    with wire.open_wire(provider_bucket()) as line:
        size = claim_batch_size(line.concurrency)
        batches_open = 1 if line.concurrency == 1 else -(-line.concurrency // size) + 1
        for rows_of_batch in batched(rows, size):
            if line.stopped:
                break  # the connection ended: the rest of the chunk waits (below)
            if not lease.keep():
                lost = True  # too slow to renew: the sweeper gave the chunk to the live workers
                break
            won = claim(digest.pk, [row.pk for row in rows_of_batch], lease.token)
            batch = Batch()
            for row in (row for row in rows_of_batch if row.pk in won):
                row.attempts += 1  # as the claim counted it
                if line.stopped:
                    batch.untried.append(row)
                elif won[row.pk] != Subscriber.Status.ACTIVE or email_hash(row.subscriber.email) in suppressed:
                    why = "suppressed" if won[row.pk] == Subscriber.Status.ACTIVE else won[row.pk]
                    row.status, row.error = Delivery.Status.SKIPPED, f"subscriber is {why}"
                    counts.skipped += 1
                    batch.done.append(row)
                elif lease.keep():
                    try:
                        composed = compose(digest, row, by_frequency[row.subscriber.frequency])
                    except Exception as exc:  # noqa: BLE001 - a message that cannot be made is the row's failure
                        note_failure(row, exc, batch, counts, stop)
                        batch.done.append(row)
                    else:
                        batch.on_wire.append((row, line.submit(composed.message, row.retry_until), composed))
                else:
                    batch.lost = True  # the sweeper took the chunk: what is left of the batch is its to resolve
                    break
            open_batches.append(batch)
            if batch.lost:
                lost = True
                break
            while open_batches and (len(open_batches) >= batches_open or open_batches[0].settled()):
                settle(digest.pk, open_batches.popleft(), lease, counts, stop, line)
        while open_batches:
            settle(digest.pk, open_batches.popleft(), lease, counts, stop, line)
    if stop.until and not lost:
        defer_rest(digest.pk, [row.subscriber_id for row in rows], stop.until, stop.error)


def settle(digest_id: int, batch: Batch, lease: Lease, counts: SendCounts, stop: Stop, line: wire.Wire) -> None:
    """Wait for the batch's messages, decide each row's outcome and write them together."""
    outcomes = line.outcomes([future for _, future, _ in batch.on_wire])
    for (row, _, composed), sent in zip(batch.on_wire, outcomes, strict=True):
        if not sent.tried:
            batch.untried.append(row)
        elif sent.error is not None:
            note_failure(row, sent.error, batch, counts, stop)
            batch.done.append(row)
        else:
            mark_sent(row, composed)
            counts.sent += 1
            batch.done.append(row)
    if batch.untried and stop.until is None:
        # The row whose error stopped the wire failed for good (its retry window was over): the others wait
        # a first retry's time for the same reason.
        stop.until = timezone.now() + timedelta(seconds=failures.backoff(0))
        stop.error = failures.describe(line.stop_error) if line.stop_error else "not sent: the connection ended"
    for row in batch.untried:
        # Never tried: the attempt is given back, and the row waits as long, for the same reason.
        row.attempts -= 1
        row.status, row.next_attempt_at, row.error = Delivery.Status.QUEUED, stop.until, stop.error
        counts.retry += 1
        batch.done.append(row)
    record(lease.token, batch.done)
    if batch.rejected:
        count_rejections(batch.rejected, settings.DELIVERY_REJECTION_LIMIT)
    if any(row.status == Delivery.Status.FAILED for row in batch.done):
        pause_if_failing(digest_id)


def note_failure(row: Delivery, exc: BaseException, batch: Batch, counts: SendCounts, stop: Stop) -> None:
    """Decide a row's fate after an error: another try later, or failed (and a refused address noted)."""
    error = failures.describe(exc)
    if not failures.is_transient(exc):
        row.status, row.error, row.next_attempt_at = Delivery.Status.FAILED, error, None
        if failures.refuses_recipient(exc):
            batch.rejected[row.subscriber_id] = error
    elif failures.retry_later(row, error, timezone.now(), exc):
        counts.retry += 1
        if failures.breaks_connection(exc) and stop.broken is None:
            stop.broken, stop.until, stop.error = row, row.next_attempt_at, row.error
        return
    log.warning("delivery %s failed: %s", row.pk, row.error)
    counts.failed += 1


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
    reason = f"{outcomes['failed']} of {outcomes['done']} deliveries failed"
    paused = digest_states.attempt(digest_id, "self_pause", pause_reason=reason)
    if paused:
        log.error("digest %s paused: %s", digest_id, reason)
    return paused


def finish_if_done(digest_id: int) -> bool:
    """Sent once no row is queued (waiting for a retry included) or being sent."""
    if Delivery.objects.filter(digest_id=digest_id, status__in=OPEN_STATUSES).exists():
        return False
    return digest_states.attempt(digest_id, "finish", sent_at=timezone.now())
