"""Handing a send to the workers: fix the recipients, queue their chunks, and hand out again what the sweeper
finds (dead workers' chunks, rows due for a retry, tasks a restarted broker lost)."""

from collections.abc import Iterable

from kombu.exceptions import ChannelError

from newsletter import jobs
from newsletter.config.celery import app as celery_app
from newsletter.sending import delivery, sweeper


def fan_out(digest_id: int, subscriber_ids: Iterable[int] | None = None, everyone: bool = False) -> int:
    """Fix the digest's recipients and queue one task per chunk of subscriber ids, after commit."""
    return queue_chunks(digest_id, delivery.start_send(digest_id, subscriber_ids, everyone))


def queue_chunks(digest_id: int, subscriber_ids: Iterable[int]) -> int:
    ids = sorted(subscriber_ids)
    sizes = delivery.chunk_sizes(len(ids))
    start = 0
    for size in sizes:
        jobs.queue(jobs.SEND_CHUNK, digest_id, ids[start : start + size])
        start += size
    return len(sizes)


def send_queue_empty() -> bool:
    """No chunk task waits in the broker's send queue (always true in-process, where tasks run at once)."""
    if celery_app.conf.task_always_eager:
        return True
    with celery_app.connection_for_read() as connection:
        try:
            queue = jobs.queue_name(jobs.SEND_CHUNK)
            return not connection.default_channel.queue_declare(queue=queue, passive=True).message_count
        except ChannelError:  # no such queue: a broker restarted empty has not seen it declared again yet
            return True


def sweep() -> int:
    """Resolve what dead workers left and queue what is due again. Returns the rows resolved."""
    found = sweeper.sweep(send_queue_empty=send_queue_empty)
    for digest_id, subscriber_ids in found.hand_out.items():
        queue_chunks(digest_id, subscriber_ids)
    return found.resolved
