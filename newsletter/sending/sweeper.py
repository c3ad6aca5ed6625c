"""The sweeper: what a dead worker, a lost task or a waiting row leaves for the live workers.

Run by the beat every DELIVERY_SWEEP_SECONDS and by `send_digest` while it waits. It finds:
- chunks whose lease ran out (the worker died, SIGKILL or a lost machine): the rows it was sending are resolved
  by DELIVERY_STUCK_POLICY, and the chunk's readers still queued are handed out again;
- rows whose next attempt has come (a transient error earlier): handed out;
- queued rows nobody holds while the send queue is empty (the broker restarted empty): handed out.
It returns the subscriber ids to hand out per digest; the caller queues them (newsletter.tasks).
Two sweepers at once hand nothing out twice: each lease and each waiting row is taken by one statement.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from newsletter.models import Delivery, Digest, SendLease
from newsletter.sending.ledger import db_value, due

# Queued rows untouched this long, in a send nobody works on while the send queue is empty, were lost with the
# broker. Long enough for a task published a moment ago (after its transaction committed) to take its lease.
LOST_TASK_GRACE = timedelta(seconds=10)


@dataclass
class Sweep:
    resolved: int = 0  # rows a dead worker was sending: queued again, or ambiguous
    hand_out: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))  # digest → subscriber ids

    def add(self, digest_id: int, subscriber_ids: list[int]) -> None:
        if subscriber_ids:
            self.hand_out[digest_id].update(subscriber_ids)


def live_tokens(now: datetime) -> object:
    return SendLease.objects.filter(expires_at__gt=now).values("token")


def stuck_count(now: datetime | None = None) -> int:
    """Rows in `sending` whose worker holds no live lease (for the admin): what the next sweep resolves."""
    now = now or timezone.now()
    return Delivery.objects.filter(status=Delivery.Status.SENDING).exclude(claim_token__in=live_tokens(now)).count()


def sweep(now: datetime | None = None, send_queue_empty: Callable[[], bool] = lambda: True) -> Sweep:
    now = now or timezone.now()
    found = Sweep()
    lost_chunks = take_expired_leases(now)
    requeued = resolve_orphans(now, found)
    for digest_id, subscriber_ids in lost_chunks:
        still_due = Delivery.objects.filter(
            due(now), digest_id=digest_id, subscriber_id__in=subscriber_ids, digest__status=Digest.Status.SENDING
        )
        found.add(digest_id, list(still_due.values_list("subscriber_id", flat=True)))
    for digest_id, subscriber_id in [*requeued, *take_due_retries(now)]:
        found.add(digest_id, [subscriber_id])
    for digest_id, subscriber_ids in lost_tasks(now, send_queue_empty).items():
        found.add(digest_id, subscriber_ids)
    return found


def take_expired_leases(now: datetime) -> list[tuple[int, list[int]]]:
    """The chunks of workers that stopped renewing their lease, as (digest, subscriber ids). A lease is taken by
    whoever deletes it: a worker that renews it in time, or another sweeper, wins instead."""
    expired = SendLease.objects.filter(expires_at__lte=now)
    return [
        (digest_id, subscriber_ids)
        for pk, digest_id, subscriber_ids in expired.values_list("pk", "digest_id", "subscriber_ids")
        if expired.filter(pk=pk).delete()[0]
    ]


def resolve_orphans(now: datetime, found: Sweep) -> list[tuple[int, int]]:
    """Rows in `sending` under no lease, by DELIVERY_STUCK_POLICY: counted in `found.resolved`, and those queued
    again returned as (digest, subscriber). "resend" queues them again (a message that was on the wire at the
    crash may arrive twice) unless workers already died DELIVERY_MAX_INTERRUPTIONS times holding the row (a
    message that kills its worker must not loop forever); "ambiguous" never resends."""
    orphans = Delivery.objects.filter(status=Delivery.Status.SENDING).exclude(
        claim_token__in=SendLease.objects.values("token")
    )
    rows = list(orphans.values_list("pk", "digest_id", "subscriber_id", "interruptions"))
    resend = settings.DELIVERY_STUCK_POLICY == "resend"
    again = [row for row in rows if resend and row[3] + 1 < settings.DELIVERY_MAX_INTERRUPTIONS]
    found.resolved += orphans.filter(pk__in=[row[0] for row in again]).update(
        status=Delivery.Status.QUEUED,
        interruptions=F("interruptions") + 1,
        next_attempt_at=None,
        error="worker stopped mid-send; queued again",
        updated_at=now,
    )
    found.resolved += orphans.filter(pk__in=[row[0] for row in rows]).update(
        status=Delivery.Status.AMBIGUOUS,
        interruptions=F("interruptions") + 1,
        error="worker stopped mid-send; the message may or may not have gone",
        updated_at=now,
    )
    return [(digest_id, subscriber_id) for _, digest_id, subscriber_id, _ in again]


def take_due_retries(now: datetime) -> list[tuple[int, int]]:
    """Rows whose next attempt has come, in sends under way: marked as handed out (next_attempt_at cleared) and
    returned as (digest, subscriber), in one UPDATE ... RETURNING so that no other sweeper takes them too."""
    quote = connection.ops.quote_name
    delivery, digest = quote(Delivery._meta.db_table), quote(Digest._meta.db_table)
    # Only quoted identifiers and placeholders are interpolated; every value is a parameter.
    sql = (
        f"UPDATE {delivery} SET next_attempt_at = NULL, updated_at = %s "  # noqa: S608
        f"WHERE status = %s AND next_attempt_at <= %s "
        f"AND digest_id IN (SELECT id FROM {digest} WHERE status = %s) RETURNING digest_id, subscriber_id"
    )
    stamp = db_value("updated_at", now)
    with connection.cursor() as cursor:
        cursor.execute(sql, [stamp, Delivery.Status.QUEUED, stamp, Digest.Status.SENDING])
        return cursor.fetchall()


def lost_tasks(now: datetime, send_queue_empty: Callable[[], bool]) -> dict[int, list[int]]:
    """Queued rows of a send that nobody holds, nobody has touched for LOST_TASK_GRACE, and for which no task
    waits in the send queue: the broker lost their tasks (restarted empty). Checked from the cheapest end."""
    stale = Delivery.objects.filter(
        status=Delivery.Status.QUEUED, next_attempt_at=None, updated_at__lt=now - LOST_TASK_GRACE
    )
    held = SendLease.objects.filter(expires_at__gt=now).values_list("digest_id", flat=True)
    unheld = Digest.objects.filter(status=Digest.Status.SENDING).exclude(pk__in=held).values_list("pk", flat=True)
    digests = [digest_id for digest_id in unheld if stale.filter(digest_id=digest_id).exists()]
    if not digests or not send_queue_empty():
        return {}
    lost: dict[int, list[int]] = defaultdict(list)
    for digest_id, subscriber_id in stale.filter(digest_id__in=digests).values_list("digest_id", "subscriber_id"):
        lost[digest_id].append(subscriber_id)
    return lost
