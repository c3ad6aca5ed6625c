"""The delivery ledger: fix the recipients, claim rows, send, record each outcome.

A Delivery row is written before a message goes out and updated after, so a crash never re-sends to
everyone and every recipient's fate can be read from the ledger.
"""

import logging
import uuid
from dataclasses import dataclass

from django.core import mail
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from newsletter.models import Delivery, Digest
from newsletter.render import digest_email
from papers.models import Paper
from papers.ranking import REPEAT_LOOKBACK, already_sent, for_you_many
from subscribers.models import Subscriber, Suppression, email_hash

log = logging.getLogger(__name__)

# Subscribers per Celery task: big enough to amortize the per-chunk queries and ranking, small enough
# that a chunk takes seconds, so a killed worker redoes little and several workers share a send evenly.
SEND_CHUNK_SIZE = 200
OPEN_STATUSES = (Delivery.Status.QUEUED, Delivery.Status.SENDING)


@dataclass
class SendCounts:
    sent: int = 0
    skipped: int = 0
    failed: int = 0

    def summary(self) -> str:
        return f"sent={self.sent} skipped={self.skipped} failed={self.failed}"


def fix_recipients(digest: Digest) -> int:
    """One queued Delivery row per active subscriber without one; the recipient list is fixed now."""
    existing = Delivery.objects.filter(digest=digest).values("subscriber_id")
    ids = (
        Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).exclude(pk__in=existing).values_list("pk", flat=True)
    )
    rows = [Delivery(digest=digest, subscriber_id=pk) for pk in ids.iterator(chunk_size=5000)]
    Delivery.objects.bulk_create(rows, batch_size=5000, ignore_conflicts=True)
    return len(rows)


def start_send(digest_id: int) -> list[list[int]]:
    """Mark the digest as sending, fix its recipients, and return the queued subscriber ids in chunks."""
    with transaction.atomic():
        digest = Digest.objects.select_for_update().get(pk=digest_id)
        if digest.status in (Digest.Status.CANCELLED, Digest.Status.SKIPPED, Digest.Status.PAUSED):
            return []
        if digest.status != Digest.Status.SENDING:
            digest.status = Digest.Status.SENDING
            digest.send_started_at = digest.send_started_at or timezone.now()
            digest.save(update_fields=["status", "send_started_at"])
        fix_recipients(digest)
    queued = list(
        Delivery.objects.filter(digest_id=digest_id, status=Delivery.Status.QUEUED)
        .order_by("subscriber_id")
        .values_list("subscriber_id", flat=True)
    )
    return [queued[i : i + SEND_CHUNK_SIZE] for i in range(0, len(queued), SEND_CHUNK_SIZE)]


def claim(digest_id: int, subscriber_ids: list[int]) -> list[Delivery]:
    """Move this chunk's queued rows to sending under a fresh token; rows another worker holds are left alone."""
    token = uuid.uuid4().hex
    Delivery.objects.filter(
        digest_id=digest_id, subscriber_id__in=subscriber_ids, status=Delivery.Status.QUEUED
    ).update(status=Delivery.Status.SENDING, claim_token=token, claimed_at=timezone.now(), attempts=F("attempts") + 1)
    return list(Delivery.objects.filter(claim_token=token, status=Delivery.Status.SENDING).select_related("subscriber"))


def send_chunk(digest_id: int, subscriber_ids: list[int]) -> SendCounts:
    """Send this digest to the chunk's subscribers whose rows are still queued. Safe to run twice."""
    from newsletter.digest import candidate_papers

    counts = SendCounts()
    rows = claim(digest_id, subscriber_ids)
    if not rows:
        return counts
    digest = Digest.objects.get(pk=digest_id)
    trending = list(Paper.objects.filter(digestpaper__digest=digest).order_by("digestpaper__position"))
    candidates = candidate_papers(digest.date)
    by_id = {p.pk: p for p in candidates}
    suppressed = set(
        Suppression.objects.filter(email_hash__in=[email_hash(r.subscriber.email) for r in rows]).values_list(
            "email_hash", flat=True
        )
    )
    # Never a paper twice to one reader: not today's trending ones, nor anything an earlier digest sent them.
    sent = already_sent([row.subscriber_id for row in rows], digest.date - REPEAT_LOOKBACK, before=digest.date)
    exclude = {row.subscriber_id: {p.pk for p in trending} | sent[row.subscriber_id] for row in rows}
    picks_by_subscriber = for_you_many([row.subscriber for row in rows], candidates, exclude)
    now = timezone.now()
    with mail.get_connection() as connection:
        for row in rows:
            subscriber = row.subscriber
            if subscriber.status != Subscriber.Status.ACTIVE or email_hash(subscriber.email) in suppressed:
                row.status, row.error = Delivery.Status.SKIPPED, f"subscriber is {subscriber.status}"
                counts.skipped += 1
                continue
            picks = picks_by_subscriber.get(subscriber.pk, [])
            shown = [p for p in trending if p.pinned or p.pk not in sent[subscriber.pk]]
            message = digest_email(digest, subscriber, shown, [(pick, by_id[pick.paper_id]) for pick in picks])
            message.connection = connection
            try:
                message.send()
            except Exception as exc:  # noqa: BLE001 - any provider error is recorded on the row, never lost
                log.warning("delivery %s failed: %s", row.pk, exc)
                row.status, row.error = Delivery.Status.FAILED, f"{type(exc).__name__}: {exc}"[:1000]
                counts.failed += 1
                continue
            status = getattr(message, "anymail_status", None)
            row.message_id = (
                status.message_id if status and status.message_id else message.extra_headers["Message-ID"]
            )[:300]
            row.status, row.sent_at, row.error = Delivery.Status.SENT, now, ""
            row.paper_ids = [p.pk for p in shown] + [p.paper_id for p in picks]
            counts.sent += 1
    Delivery.objects.bulk_update(rows, ["status", "error", "message_id", "sent_at", "paper_ids"])
    finish_if_done(digest_id)
    return counts


def finish_if_done(digest_id: int) -> bool:
    if Delivery.objects.filter(digest_id=digest_id, status__in=OPEN_STATUSES).exists():
        return False
    Digest.objects.filter(pk=digest_id, status=Digest.Status.SENDING).update(
        status=Digest.Status.SENT, sent_at=timezone.now()
    )
    return True


def ledger_counts(digest_id: int) -> dict[str, int]:
    rows = Delivery.objects.filter(digest_id=digest_id).values("status").annotate(n=Count("pk"))
    counts = {status: 0 for status in Delivery.Status.values}
    counts.update({row["status"]: row["n"] for row in rows})
    return counts
