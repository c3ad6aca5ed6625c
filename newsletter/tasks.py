"""Celery tasks: thin, take ids, idempotent, acks_late (set globally), queued after commit."""

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from newsletter import delivery
from newsletter.digest import build_digest


@shared_task
def build_digest_task(day_iso: str | None = None) -> int:
    day = timezone.datetime.fromisoformat(day_iso).date() if day_iso else timezone.now().date()
    return build_digest(day).pk


def fan_out(digest_id: int) -> int:
    """Fix the digest's recipients and queue one task per chunk of subscriber ids, after commit."""
    chunks = delivery.start_send(digest_id)
    for chunk in chunks:
        transaction.on_commit(lambda chunk=chunk: send_chunk_task.delay(digest_id, chunk))
    return len(chunks)


@shared_task
def send_digest_task(digest_id: int) -> int:
    return fan_out(digest_id)


@shared_task
def send_chunk_task(digest_id: int, subscriber_ids: list[int]) -> dict:
    return delivery.send_chunk(digest_id, subscriber_ids).__dict__


@shared_task
def run_daily_task() -> str:
    from newsletter.pipeline import run_daily

    result = run_daily(timezone.now().date(), offline=False)
    return result.sends.summary()
