"""The daily job end to end: fetch → build the digest → send it. Used by `run_daily` and the beat task."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from newsletter.config.celery import app as celery_app
from newsletter.digests.build import build_digest
from newsletter.models import Delivery, Digest
from newsletter.sending import delivery, fanout, ledger
from newsletter.sending.scheduling import ready_to_send
from papers.fetch import NetworkUnavailable
from papers.ingest import OFFLINE_SOURCES, IngestCounts, fetch_and_ingest
from papers.sources import SourceError

log = logging.getLogger(__name__)

# How often the command counts the send's open rows while workers send: while many are open that count reads
# many index entries and competes with the workers, so it is polled every half second; once few are (a small
# send, or the end of a big one), quick to count and quick to finish, every tenth: the command would otherwise
# wait up to half a second after the last message.
WAIT_POLL_SECONDS = 0.5
QUICK_POLL_SECONDS = 0.1
QUICK_POLL_ROWS = 5_000
# How often a waiting send runs the sweeper: a dead worker's chunk goes out again at most this long after its
# lease ran out, and a row due for a retry at most this long after its time.
SWEEP_EVERY_SECONDS = 2.0
# How often the waiting command is told what the send waits for (rows waiting for a retry, and why).
REPORT_EVERY_SECONDS = 10.0


@dataclass
class Progress:
    done: int
    total: int
    report: bool = False  # a report tick (every REPORT_EVERY_SECONDS): time to say what the send waits for
    waiting: ledger.Waiting = field(default_factory=ledger.Waiting)  # filled on report ticks


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
    digest: Digest, progress: Callable[[Progress], None] | None = None, timeout: float = 3600
) -> delivery.SendCounts:
    """Send the digest to every active subscriber not yet served, whatever their delivery hour.

    The chunks fan out to the workers (in-process without a broker, where they run here); this then waits on
    the ledger, running the sweeper (dead workers' chunks, rows due for a retry, tasks a restarted broker
    lost), until nothing is open, the send is paused or cancelled, or `timeout` seconds pass. Rows still
    waiting for a retry then count as unsent: the workers and the beat's sweeper go on with them."""
    with transaction.atomic():
        fanout.fan_out(digest.pk, everyone=True)
    eager = celery_app.conf.task_always_eager
    deadline = time.monotonic() + timeout
    next_sweep = next_report = time.monotonic()
    total = Delivery.objects.filter(digest_id=digest.pk).count()
    while True:
        # Only the open rows, not every status: counting the whole ledger scanned every row of it each time,
        # competing with the workers for the database and the CPU.
        still_open = ledger.open_count(digest.pk)
        report = time.monotonic() >= next_report
        waiting = ledger.waiting(digest.pk) if still_open and (report or eager) else ledger.Waiting()
        if report:
            next_report = time.monotonic() + REPORT_EVERY_SECONDS
        if progress:
            progress(Progress(max(total - still_open, 0), total, report, waiting))
        if not still_open or time.monotonic() > deadline:
            break
        if Digest.objects.filter(pk=digest.pk, status__in=[Digest.Status.PAUSED, Digest.Status.CANCELLED]).exists():
            break
        if eager or time.monotonic() >= next_sweep:
            fanout.sweep()
            next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
        poll = QUICK_POLL_SECONDS if still_open <= QUICK_POLL_ROWS else WAIT_POLL_SECONDS
        time.sleep(min(eager_wait(waiting) if eager else poll, max(deadline - time.monotonic(), 0)))
    return delivery.SendCounts.of_digest(digest.pk)


def eager_wait(waiting: ledger.Waiting) -> float:
    """In-process, nothing happens until the first waiting row is due: sleep until then."""
    if waiting.next_attempt_at is None:
        return QUICK_POLL_SECONDS
    return max((waiting.next_attempt_at - timezone.now()).total_seconds(), QUICK_POLL_SECONDS)


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
