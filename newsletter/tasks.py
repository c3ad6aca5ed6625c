"""Celery tasks: thin, take ids, idempotent, acks_late (set globally), queued after commit.

The delivery tasks keep no results: the ledger is the record of every send."""

import random
import time
from collections.abc import Iterable
from datetime import date

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from newsletter import delivery, scheduling, webhooks
from newsletter.digest import build_digest


@shared_task
def build_digest_task(day_iso: str | None = None) -> int:
    day = date.fromisoformat(day_iso) if day_iso else timezone.now().date()
    return build_digest(day).pk


def fan_out(digest_id: int, subscriber_ids: Iterable[int] | None = None, everyone: bool = False) -> int:
    """Fix the digest's recipients and queue one task per chunk of subscriber ids, after commit."""
    chunks = delivery.start_send(digest_id, subscriber_ids, everyone)
    for chunk in chunks:
        transaction.on_commit(lambda chunk=chunk: send_chunk_task.delay(digest_id, chunk))
    return len(chunks)


@shared_task(ignore_result=True)
def send_digest_task(digest_id: int) -> int:
    return fan_out(digest_id)


def backoff(retries: int) -> float:
    """Exponential, capped, with full jitter so retrying workers do not hit the provider in step."""
    ceiling = min(settings.DELIVERY_RETRY_MAX_SECONDS, settings.DELIVERY_RETRY_BASE_SECONDS * 2**retries)
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


@shared_task(bind=True, max_retries=None, ignore_result=True)
def send_chunk_task(self, digest_id: int, subscriber_ids: list[int]) -> dict:
    # Each row carries its own attempt count, so retrying ends: every row is sent or failed at its last try.
    retries = self.request.retries
    while (counts := delivery.send_chunk(digest_id, subscriber_ids)).retry:
        if not self.request.is_eager:
            raise self.retry(countdown=backoff(retries))
        time.sleep(backoff(retries))  # in-process mode has no broker to hold the retry for us
        retries += 1
    return counts.__dict__


@shared_task(ignore_result=True)
def deliver_due_task() -> int:
    """The scheduled path: whoever's delivery hour it is now, in their own time zone."""
    return scheduling.deliver_due(timezone.now())


@shared_task(ignore_result=True)
def sweep_task() -> int:
    resolved = delivery.sweep_stuck()
    for digest_id in delivery.stalled_digests():
        fan_out(digest_id)
    return resolved


@shared_task(ignore_result=True)
def purge_ledger_task() -> int:
    return delivery.purge_ledger()


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
    from newsletter.digest_actions import apply_review_deadline

    return apply_review_deadline(timezone.now().date())
