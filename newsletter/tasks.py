"""Celery tasks: thin, take ids, idempotent, acks_late (set globally), queued after commit.

The delivery tasks keep no results: the ledger is the record of every send."""

import gc
from datetime import date

from celery import shared_task
from celery.signals import worker_init
from django.utils import timezone
from threadpoolctl import threadpool_limits

from newsletter import jobs
from newsletter.backoffice.actions import apply_review_deadline
from newsletter.digests.build import build_digest
from newsletter.pipeline import run_daily
from newsletter.sending import delivery, events, fanout, ledger, scheduling
from papers.ranking import stop_words

# Threads each worker process gives BLAS and OpenMP (numpy, scipy, scikit-learn). By default each sizes its
# pool to the whole machine, and several workers share its cores (two on two in the bench): one worker's ranking
# then spun threads on the cores the others were sending from. Parallelism comes from the processes.
WORKER_BLAS_THREADS = 1
# Net new container objects (allocations less deallocations) that start a collection of the youngest
# generation in a worker; Python's default is 700. A send keeps batches of rendered messages, payloads and
# parsed addresses alive across many allocations, so at 700 the collector ran every ~9 messages and went
# over the same young objects again and again: ~1.1 s of CPU per worker per 15,000 messages at 1,000/s
# (timed by gc.callbacks in the bench's workers), against ~0.3 s at 10,000, for 1-2 MB more peak RSS.
WORKER_GC_THRESHOLD = 10_000


@worker_init.connect
def load_ranking(**kwargs: object) -> None:
    """Workers rank: scikit-learn (imported lazily, so web processes never load it) is loaded before the
    worker takes its first task, not in the middle of the first chunk of a send, and its BLAS and OpenMP
    run on WORKER_BLAS_THREADS (prefork's children inherit both). Then everything loaded so far is moved out
    of the cycle collector's way (gc.freeze): it lives as long as the process, and every full collection
    during a send would otherwise walk all of it again; and the youngest generation is collected less often
    (WORKER_GC_THRESHOLD)."""
    stop_words()
    threadpool_limits(limits=WORKER_BLAS_THREADS)
    gc.collect()
    gc.freeze()
    gc.set_threshold(WORKER_GC_THRESHOLD, *gc.get_threshold()[1:])


@shared_task
def build_digest_task(day_iso: str | None = None) -> int:
    day = date.fromisoformat(day_iso) if day_iso else timezone.now().date()
    return build_digest(day).pk


@shared_task(ignore_result=True)
def send_digest_task(digest_id: int) -> int:
    return fanout.fan_out(digest_id)


@shared_task(name=jobs.SEND_CHUNK, ignore_result=True)
def send_chunk_task(digest_id: int, subscriber_ids: list[int]) -> dict:
    # No retry of its own: a row refused for now waits in the ledger until its next attempt, when the sweeper
    # queues it again. A worker then holds no countdown task that its death would lose for the broker's hour.
    return delivery.send_chunk(digest_id, subscriber_ids).__dict__


@shared_task(name=jobs.DELIVER_DUE, ignore_result=True)
def deliver_due_task() -> int:
    """The scheduled path: whoever's delivery hour it is now, in their own time zone."""
    return scheduling.deliver_due(timezone.now())


@shared_task(ignore_result=True)
def sweep_task() -> int:
    """Hand out what dead workers, lost tasks and waiting rows left (newsletter.sending.sweeper)."""
    return fanout.sweep()


@shared_task(ignore_result=True)
def purge_ledger_task() -> int:
    return ledger.purge_ledger()


@shared_task(name=jobs.PROCESS_WEBHOOK_EVENT, ignore_result=True)
def process_webhook_event_task(event_id: int) -> None:
    events.apply_event(event_id)


@shared_task
def run_daily_task() -> str:
    result = run_daily(timezone.now().date(), offline=False)
    return result.sends.summary()


@shared_task(ignore_result=True)
def review_deadline_task() -> str:
    return apply_review_deadline(timezone.now().date())
