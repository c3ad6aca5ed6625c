"""The daily job end to end: fetch → build the digest → send it. Used by `run_daily` and the beat task."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.db import transaction

from newsletter import delivery
from newsletter.celery import app as celery_app
from newsletter.digest import build_digest
from newsletter.models import Delivery, Digest
from newsletter.scheduling import ready_to_send
from papers.fetch import NetworkUnavailable
from papers.ingest import OFFLINE_SOURCES, IngestCounts, fetch_and_ingest
from papers.sources import SourceError

log = logging.getLogger(__name__)

# How often the command counts the send's open rows while workers send: early in a 100k send that count
# takes ~15 ms, so a big send is polled every half second; a small one, quick to count and quick to finish,
# every tenth (it would otherwise wait up to half a second after its last message).
WAIT_POLL_SECONDS = 0.5
QUICK_POLL_SECONDS = 0.1
QUICK_POLL_ROWS = 5_000
# How often a waiting send looks for rows a dead worker left (those older than the claim timeout).
SWEEP_EVERY_SECONDS = 5.0


@dataclass
class DailyResult:
    ingest: IngestCounts = field(default_factory=IngestCounts)
    digest: Digest | None = None
    sends: delivery.SendCounts = field(default_factory=delivery.SendCounts)
    notes: list[str] = field(default_factory=list)


def ingest_all(offline: bool, day: date, say: Callable[[str], None]) -> IngestCounts:
    total = IngestCounts()
    specs = OFFLINE_SOURCES if offline else settings.PAPER_SOURCES
    fell_back = False
    for spec in specs:
        try:
            run = fetch_and_ingest(spec, day, offline=offline or fell_back)
        except NetworkUnavailable as exc:
            say(f"Network unreachable ({exc}); using the bundled sample papers instead.")
            fell_back = True
            run = fetch_and_ingest(spec, day, offline=True)
        except SourceError as exc:
            say(f"{spec}: {exc}")
            total.errors += 1
            continue
        for name in ("fetched", "created", "updated", "skipped", "errors"):
            setattr(total, name, getattr(total, name) + getattr(run, name))
    if fell_back:
        # The live list had no JSON sample of its own kind; add the bundled corpus so the digest has content.
        fetch_and_ingest("json", day, offline=True)
    return total


def send(
    digest: Digest, progress: Callable[[int, int], None] | None = None, timeout: float = 3600
) -> delivery.SendCounts:
    """Send the digest to every active subscriber not yet served, whatever their delivery hour.

    In-process (no broker) the chunks run here; with a broker they fan out to the workers and this waits on
    the ledger, sweeping what a dead worker or a restarted broker left behind, until nothing is open, the send
    is paused or cancelled, or `timeout` seconds pass."""
    from newsletter.tasks import fan_out, sweep_task

    with transaction.atomic():
        fan_out(digest.pk, everyone=True)
    deadline = time.monotonic() + timeout
    next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
    total = Delivery.objects.filter(digest_id=digest.pk).count()
    while True:
        # Only the open rows, not every status: counting the whole ledger scanned every row of it each time,
        # competing with the workers for the database and the CPU.
        still_open = delivery.open_count(digest.pk)
        if progress:
            progress(max(total - still_open, 0), total)
        if celery_app.conf.task_always_eager or not still_open or time.monotonic() > deadline:
            break
        if Digest.objects.filter(pk=digest.pk, status__in=[Digest.Status.PAUSED, Digest.Status.CANCELLED]).exists():
            break
        if time.monotonic() > next_sweep:
            sweep_task()
            next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
        time.sleep(QUICK_POLL_SECONDS if total <= QUICK_POLL_ROWS else WAIT_POLL_SECONDS)
    counts = delivery.ledger_counts(digest.pk)
    return delivery.SendCounts(
        sent=sum(counts[status] for status in delivery.DELIVERED_STATUSES),
        skipped=counts[Delivery.Status.SKIPPED],
        # An ambiguous row is not known to have arrived: it counts with the failures.
        failed=counts[Delivery.Status.FAILED] + counts[Delivery.Status.AMBIGUOUS],
    )


def run_daily(day: date, offline: bool, say: Callable[[str], None] = log.info) -> DailyResult:
    result = DailyResult()
    result.ingest = ingest_all(offline, day, say)
    result.digest = build_digest(day)
    if result.digest.status == Digest.Status.SKIPPED:
        say(f"No new papers for {day}: the digest is skipped, nothing is sent.")
        return result
    if not ready_to_send(result.digest):
        say(f"The {day} digest is {result.digest.status}: in review mode it goes out once an editor approves it.")
        return result
    result.sends = send(result.digest)
    result.digest.refresh_from_db()
    return result
