"""Celery tasks: thin, take ids, idempotent, acks_late (set globally), queued after commit.

The delivery tasks keep no results: the ledger is the record of every send."""

from collections.abc import Iterable
from datetime import date

from celery import shared_task
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import ChannelError

from newsletter import webhooks
from newsletter.config.celery import app as celery_app
from newsletter.digests.build import build_digest
from newsletter.sending import delivery, ledger, scheduling, sweeper


@shared_task
def build_digest_task(day_iso: str | None = None) -> int:
    day = date.fromisoformat(day_iso) if day_iso else timezone.now().date()
    return build_digest(day).pk


def fan_out(digest_id: int, subscriber_ids: Iterable[int] | None = None, everyone: bool = False) -> int:
    """Fix the digest's recipients and queue one task per chunk of subscriber ids, after commit."""
    return queue_chunks(digest_id, delivery.start_send(digest_id, subscriber_ids, everyone))


def queue_chunks(digest_id: int, subscriber_ids: Iterable[int]) -> int:
    chunks = delivery.batched(sorted(subscriber_ids), delivery.SEND_CHUNK_SIZE)
    for chunk in chunks:
        transaction.on_commit(lambda chunk=chunk: send_chunk_task.delay(digest_id, chunk))
    return len(chunks)


@shared_task(ignore_result=True)
def send_digest_task(digest_id: int) -> int:
    return fan_out(digest_id)


@shared_task(ignore_result=True)
def send_chunk_task(digest_id: int, subscriber_ids: list[int]) -> dict:
    # No retry of its own: a row refused for now waits in the ledger until its next attempt, when the sweeper
    # queues it again. A worker then holds no countdown task that its death would lose for the broker's hour.
    return delivery.send_chunk(digest_id, subscriber_ids).__dict__


@shared_task(ignore_result=True)
def deliver_due_task() -> int:
    """The scheduled path: whoever's delivery hour it is now, in their own time zone."""
    return scheduling.deliver_due(timezone.now())


def send_queue_empty() -> bool:
    """No chunk task waits in the broker's send queue (always true in-process, where tasks run at once)."""
    if celery_app.conf.task_always_eager:
        return True
    queue = celery_app.amqp.router.route({}, send_chunk_task.name)["queue"].name
    with celery_app.connection_for_read() as connection:
        try:
            return not connection.default_channel.queue_declare(queue=queue, passive=True).message_count
        except ChannelError:  # no such queue: a broker restarted empty has not seen it declared again yet
            return True


@shared_task(ignore_result=True)
def sweep_task() -> int:
    """Hand out what dead workers, lost tasks and waiting rows left (newsletter.sending.sweeper)."""
    found = sweeper.sweep(send_queue_empty=send_queue_empty)
    for digest_id, subscriber_ids in found.hand_out.items():
        queue_chunks(digest_id, subscriber_ids)
    return found.resolved


@shared_task(ignore_result=True)
def purge_ledger_task() -> int:
    return ledger.purge_ledger()


@shared_task(ignore_result=True)
def process_webhook_event_task(event_id: int) -> None:
    webhooks.apply_event(event_id)


@shared_task
def run_daily_task() -> str:
    from newsletter.pipeline import run_daily

    result = run_daily(timezone.now().date(), offline=False)
    return result.sends.summary()


@shared_task(ignore_result=True)
def review_deadline_task() -> str:
    from newsletter.backoffice.actions import apply_review_deadline

    return apply_review_deadline(timezone.now().date())
