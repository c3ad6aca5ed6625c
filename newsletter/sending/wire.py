"""Putting rendered messages on the wire: one at a time over one connection (SMTP, the .eml outbox), or, for a
provider's HTTP API (anymail), many at once.

An HTTP API answers each message after tens of milliseconds of latency: one request at a time, a worker
process sends about 20 messages/s at 50 ms however fast it renders, far below what providers accept. With
DELIVERY_CONCURRENCY requests in flight the provider's quota is the limit again; the worker's thread keeps
rendering the next messages (and claiming and recording batches) while the requests wait on the network.

anymail's requests-based backends (Postmark, Mailgun, SendGrid, Brevo, ...) send from an event loop that the
worker's own thread runs (`LoopWire`): each message is anymail's own synchronous send, run in a greenlet, and
only the waits (for a token, for the provider's answer) are the loop's (newsletter.sending.bridge, LoopSession,
ratelimit.LoopBucket). A pool of threads did the same work with twice the CPU a message, spent on thread
switches and contention for the interpreter lock, and at a 1,000/s quota the CPU is what runs out. Other
backends (SES's boto3, anymail's test backend) keep a bounded pool of threads (`PooledWire`), each with its own
connection.

Both wires take a token from the provider's bucket right before each request, and stop putting messages on the
wire once one comes back with an error that ends the connection (a 421, a timeout, a 5xx, a 429): messages
not yet sent then come back untried, and wait as long as the one refused (newsletter.sending.delivery).
"""

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import uvloop
from anymail.backends.base_requests import AnymailRequestsBackend
from django.conf import settings
from django.core import mail
from django.core.mail import EmailMessage
from django.utils import timezone
from django.utils.module_loading import import_string

from newsletter.sending import bridge, failures, ratelimit
from newsletter.sending.ratelimit import TokenBucket
from newsletter.sending.session import DirectSession, LoopSession

# Backends that speak a provider's HTTP API: each message is one request, so many may be in flight at once.
# SMTP stays one connection, one message at a time (it pipelines the commands of each message instead).
HTTP_API_BACKENDS = "anymail.backends."
# Threads of a PooledWire at most, whatever DELIVERY_CONCURRENCY says: past ~32 a thread more cost the worker
# more CPU in switching than it carried (measured against a provider at 50 ms and 1,000/s).
POOL_THREADS_MAX = 32


@dataclass
class Sent:
    """What became of one message: sent (no error), refused or failed (error), or never tried."""

    error: BaseException | None = None
    tried: bool = True


class Wire:
    """One message at a time, in the calling thread, over one connection opened for the wire's life."""

    concurrency = 1

    def __init__(self, bucket: TokenBucket | None) -> None:
        self.bucket = bucket
        self.stop_error: BaseException | None = None  # the first error that ended the connection
        self.lock = threading.Lock()
        self.connections: list = []
        self.local = threading.local()

    @property
    def stopped(self) -> bool:
        return self.stop_error is not None

    def submit(self, message: EmailMessage, retry_until: datetime | None) -> "Future[Sent]":
        future: Future[Sent] = Future()
        future.set_result(self.transmit(message, retry_until))
        return future

    def outcomes(self, sent: list) -> list[Sent]:
        """What became of each of these messages, in order: waits until all are known."""
        return [future.result() for future in sent]

    def take_token(self) -> None:
        """Wait until the provider's bucket gives this message its token."""
        self.bucket.take()

    def connection(self) -> object:
        """This thread's connection to the provider, opened at its first message and kept for the wire's life."""
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = mail.get_connection()
            connection.open()  # else each send would open and close its own
            DirectSession.taking_over(connection)  # a provider's HTTP API: the lighter path through requests
            with self.lock:
                self.connections.append(connection)
        return connection

    def transmit(self, message: EmailMessage, retry_until: datetime | None) -> Sent:
        if self.stopped:
            return Sent(tried=False)
        try:
            if self.bucket:
                self.take_token()
            if self.stopped:  # it stopped while this thread waited for its token
                return Sent(tried=False)
            message.connection = self.connection()
            message.send()
        except Exception as exc:  # noqa: BLE001 - every provider error is the row's to record
            if ends_connection(exc, retry_until):
                with self.lock:
                    self.stop_error = self.stop_error or exc
            return Sent(error=exc)
        return Sent()

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


class PooledWire(Wire):
    """Up to `concurrency` messages in flight, one per thread of a pool, each thread with its own connection."""

    def __init__(self, bucket: TokenBucket | None, concurrency: int) -> None:
        super().__init__(bucket)
        self.concurrency = concurrency
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="send")

    def submit(self, message: EmailMessage, retry_until: datetime | None) -> "Future[Sent]":
        return self.pool.submit(self.transmit, message, retry_until)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        super().close()


class LoopWire(Wire):
    """Up to `concurrency` messages in flight on an event loop that the sending thread runs itself, between its
    own steps, over one anymail backend whose session is a LoopSession: each send is a greenlet on the loop
    (newsletter.sending.bridge). The thread pumps the loop after each message it puts on the wire, and runs it
    while it waits for a batch's outcomes, so answers are read and tokens fall due in between; no second thread
    contends for the interpreter lock. (With the loop in a thread of its own, the two threads handing the lock
    back and forth woke senders 20 ms late at the median and over 100 ms at worst: arrivals bunched past the
    provider's burst, which answered 429.) The token is taken through the loop's own Redis client
    (ratelimit.LoopBucket): its round trip, the wait until it is due and the wait for the provider's answer
    are all the loop's."""

    def __init__(self, bucket: TokenBucket | None, concurrency: int) -> None:
        super().__init__(bucket)
        self.concurrency = concurrency
        self.pending: set[asyncio.Task] = set()
        self.loop = uvloop.new_event_loop()
        self.loop.run_until_complete(self.start())

    async def start(self) -> None:
        self.slots = asyncio.Semaphore(self.concurrency)
        self.tokens = ratelimit.on_loop(self.bucket)
        self.client = LoopSession.client_for(self.concurrency)
        self.backend = mail.get_connection()
        self.backend.open()
        LoopSession.taking_over(self.backend, client=self.client)
        self.connections.append(self.backend)

    def connection(self) -> object:
        return self.backend

    def take_token(self) -> None:
        bridge.wait_for(self.tokens.take())

    def submit(self, message: EmailMessage, retry_until: datetime | None) -> "asyncio.Task[Sent]":
        task = self.loop.create_task(self.send(message, retry_until))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        self.pump()
        return task

    async def send(self, message: EmailMessage, retry_until: datetime | None) -> Sent:
        async with self.slots:
            return await bridge.run(self.transmit, message, retry_until)

    def pump(self) -> None:
        """Run what is due on the loop now (answers that arrived, tokens that fell due), and return.

        Each run of a uvloop loop from a process's main thread (a Celery worker's) sets up and takes down its
        signal wake-up, a socket pair, as it starts and stops: ~40 us of CPU on this machine. One pass (stop
        at its end) costs just that; `run_until_complete(asyncio.sleep(0))` made a task and ran three passes,
        ~58 us, once for every message."""
        self.loop.call_soon(self.loop.stop)
        self.loop.run_forever()

    def outcomes(self, sent: list) -> list[Sent]:
        """All at once: the loop runs until the last is known, not once per message still out (each run from
        the main thread costs what `pump` says)."""
        if waiting := [task for task in sent if not task.done()]:
            self.loop.run_until_complete(asyncio.wait(waiting))
        return super().outcomes(sent)

    def close(self) -> None:
        try:
            if pending := list(self.pending):  # a copy: tasks leave the set as their callbacks run
                self.loop.run_until_complete(asyncio.wait(pending))
            self.loop.run_until_complete(self.stop())
        finally:
            self.loop.close()

    async def stop(self) -> None:
        self.backend.close()
        await self.client.close()
        if self.tokens is not None:
            await self.tokens.close()


def ends_connection(exc: BaseException, retry_until: datetime | None) -> bool:
    """An error after which the rest of the chunk waits, as newsletter.sending.delivery decides for the row (a row
    past its retry window fails for good instead, and the chunk goes on)."""
    past_window = retry_until is not None and timezone.now() >= retry_until
    return failures.is_transient(exc) and failures.breaks_connection(exc) and not past_window


def concurrency() -> int:
    """Messages in flight per worker process: DELIVERY_CONCURRENCY for providers' HTTP APIs, else one."""
    if settings.EMAIL_BACKEND.startswith(HTTP_API_BACKENDS):
        return max(1, settings.DELIVERY_CONCURRENCY)
    return 1


@contextmanager
def open_wire(bucket: TokenBucket | None) -> Iterator[Wire]:
    """The wire for the configured backend; its connections close (and its threads end) when the block does."""
    n = concurrency()
    if n == 1:
        wire = Wire(bucket)
        wire.connection()  # SMTP connects now: a server that is down fails the chunk before it claims anything
    elif issubclass(import_string(settings.EMAIL_BACKEND), AnymailRequestsBackend):
        wire = LoopWire(bucket, n)
    else:
        wire = PooledWire(bucket, min(n, POOL_THREADS_MAX))
    try:
        yield wire
    finally:
        wire.close()
