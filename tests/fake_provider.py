"""A mail provider's HTTP API on loopback, as anymail's Postmark backend calls it (`POST /email`, JSON in, JSON
out): point anymail at it with ANYMAIL_POSTMARK_API_URL=http://127.0.0.1:<port>/. It answers after a set
latency, refuses with 429 (and a Retry-After) past its quota of messages per second, and on purpose answers
some requests with an injected 429, a 5xx or no answer at all (a timeout). It records what it accepted, per
recipient, and when, so a test can check that every reader got exactly one message and that the rate stayed
within the quota.

One asyncio loop (uvloop's), HTTP/1.1 with keep-alive and nothing else: at 1,000 requests/s the server must cost
far less than the senders it measures on the same cores (a thread per connection in http.server spent most of a
core on itself; asyncio's own loop 0.23-0.30 ms of CPU a request, uvloop's 0.15-0.19).
Used in-process by the tests (`FakeProvider().start()`, in a thread) and as a subprocess by the benchmark:
`python -m tests.fake_provider PORT LATENCY QUOTA [KEEP]` prints "ready"; GET /_stats answers the counts as JSON,
GET /_bodies the first KEEP bodies accepted, POST /_reset forgets what it saw.
"""

import asyncio
import json
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import uvloop

from tests.smtp_sink import free_port

QUOTA_WINDOW_SECONDS = 1.0  # rates are reported as the most messages in any window this long
# The quota is a token bucket, as providers' send rates are: `quota` tokens a second, and room for a burst of
# QUOTA_BURST_SECONDS' worth (at least QUOTA_BURST_MIN): a sender held to the quota by its own bucket still has
# requests arrive a little bunched (threads, the GIL and the scheduler between the token and the socket).
# Any window of a second then holds at most quota + burst(quota) messages.
QUOTA_BURST_SECONDS = 0.1
QUOTA_BURST_MIN = 2
RETRY_AFTER_SECONDS = 1  # what a refusal past the quota tells the sender to wait
# An injected timeout holds the request this long and then drops it unanswered: longer than any client
# timeout a test sets, so the sender gives up first and the message was never accepted.
HANG_SECONDS = 30.0
MAX_HEADER_BYTES = 64 * 1024
FAULTS = ("429", "500", "503", "timeout")


@dataclass
class Faults:
    """Injected failures: every `every`-th request gets the next fault of the plan, while any remain."""

    plan: Counter = field(default_factory=Counter)  # fault → how many to inject
    every: int = 10
    seen: int = 0
    injected: int = 0

    def next(self) -> str | None:
        """The fault for this request, if it gets one: the kinds take turns, so they spread over the send."""
        self.seen += 1
        if self.seen % self.every:
            return None
        turn = FAULTS[self.injected % len(FAULTS) :] + FAULTS[: self.injected % len(FAULTS)]
        fault = next((kind for kind in turn if self.plan[kind] > 0), None)
        if fault:
            self.plan[fault] -= 1
            self.injected += 1
        return fault


class FakeProvider:
    def __init__(self, latency: float = 0.0, quota: float = 0.0, port: int | None = None, keep: int = 0) -> None:
        self.latency = latency  # seconds before each answer
        self.keep = keep  # the bodies of the first `keep` messages accepted are kept (GET /_bodies)
        self.bodies: list[str] = []
        self.quota = quota  # messages/s; 0 for none
        self.port = port or free_port()
        self.faults = Faults()
        self.accepted: Counter[str] = Counter()  # recipient → messages accepted
        self.accepted_at: list[float] = []  # time.monotonic() of each acceptance
        self.message_ids: dict[str, str] = {}  # recipient → the MessageID answered for their (last) message
        self.arrived_at: list[float] = []  # of each send request, refused ones included
        self.refused: Counter[str] = Counter()  # "429 quota", "429 injected", "500", "503", "timeout"
        self.in_flight = 0
        self.most_in_flight = 0
        self.tokens, self.refilled_at = float(burst(quota)), time.monotonic()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    # --- running it --------------------------------------------------------------------------------------

    def start(self) -> "FakeProvider":
        """Serve from a thread of this process until stop()."""
        ready = threading.Event()
        self.thread = threading.Thread(target=self.run, args=(ready,), daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake provider did not start")
        return self

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(10)

    def run(self, ready: threading.Event | None = None) -> None:
        self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self.serve, "127.0.0.1", self.port, backlog=1024))
        if ready is not None:
            ready.set()
        else:
            print("ready", flush=True)
        try:
            self.loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

    # --- HTTP -----------------------------------------------------------------------------------------------

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request := await read_request(reader):
                method, path, body = request
                status, headers, answer = await self.answer(method, path, body)
                if status == 0:  # an injected timeout: no answer, the connection dropped
                    break
                writer.write(response(status, headers, answer))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def answer(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], dict | list]:
        if method == "GET" and path.startswith("/_stats"):
            query = dict(part.split("=", 1) for part in path.partition("?")[2].split("&") if "=" in part)
            return 200, {}, self.stats(float(query.get("after", 0)), float(query.get("window", 0)))
        if method == "GET" and path == "/_bodies":
            return 200, {}, self.bodies
        if method == "POST" and path == "/_reset":
            self.reset()
            return 200, {}, {}
        if method != "POST" or path != "/email":
            return 404, {}, {"ErrorCode": 404, "Message": f"no such endpoint: {method} {path}"}
        arrived = time.monotonic()
        self.arrived_at.append(arrived)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            fault = self.faults.next()
            if fault:
                self.refused[fault if fault != "429" else "429 injected"] += 1
            # The quota counts requests as they arrive, as a provider's rate limit does (not as their answers
            # leave: this server's own lag, on the cores it shares with the senders, would bunch those).
            over_quota = not fault and not self.within_quota(arrived)
            await asyncio.sleep(HANG_SECONDS if fault == "timeout" else self.latency)
            if fault == "timeout":
                return 0, {}, {}
            if fault:
                return int(fault), retry_after(fault), {"ErrorCode": int(fault), "Message": "injected"}
            if over_quota:
                self.refused["429 quota"] += 1
                return 429, retry_after("429"), {"ErrorCode": 429, "Message": "Rate limit exceeded"}
            message = json.loads(body)
            recipient = message["To"]
            if len(self.bodies) < self.keep:
                self.bodies.append(body.decode())
            self.accepted[recipient] += 1
            self.accepted_at.append(time.monotonic())
            self.message_ids[recipient] = message_id = str(uuid.uuid4())
            submitted = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            return 200, {}, {"To": recipient, "SubmittedAt": submitted, "MessageID": message_id,
                             "ErrorCode": 0, "Message": "OK"}  # fmt: skip
        finally:
            self.in_flight -= 1

    def within_quota(self, now: float) -> bool:
        """A token for one more message; if there is one, it is taken."""
        if not self.quota:
            return True
        self.tokens = min(burst(self.quota), self.tokens + (now - self.refilled_at) * self.quota)
        self.refilled_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    # --- what it saw ------------------------------------------------------------------------------------------

    def stats(self, after: float = 0.0, window: float = 0.0) -> dict:
        """What it saw; with a `window`, also the rate over that many seconds from `after` s past the first
        acceptance (a steady stretch: no start-up, no tail)."""
        return {
            "window_rate": window_rate(self.accepted_at, after, window) if window else None,
            "accepted": sum(self.accepted.values()),
            "recipients": len(self.accepted),
            "duplicates": sum(n - 1 for n in self.accepted.values()),
            "refused": dict(self.refused),
            "arrived": len(self.arrived_at),
            "most_in_flight": self.most_in_flight,
            "busiest_second": busiest(self.accepted_at),
            "busiest_second_arrivals": busiest(self.arrived_at),
            "rate": rate(self.accepted_at),
            # time.monotonic() of the first and last acceptance: the same clock in every process of the machine,
            # so a caller can tell how long before the first and after the last message its own steps took.
            "first_at": min(self.accepted_at, default=None),
            "last_at": max(self.accepted_at, default=None),
        }

    def reset(self) -> None:
        self.accepted.clear()
        self.accepted_at.clear()
        self.message_ids.clear()
        self.arrived_at.clear()
        self.refused.clear()
        self.most_in_flight = 0


def burst(quota: float) -> float:
    """The messages a provider with this quota takes at once, beyond its rate."""
    return max(QUOTA_BURST_MIN, quota * QUOTA_BURST_SECONDS)


def busiest(times: list[float], window: float = QUOTA_WINDOW_SECONDS) -> int:
    """The most events in any window of `window` seconds (half-open, as the quota counts them)."""
    most, start = 0, 0
    ordered = sorted(times)
    for end, at in enumerate(ordered):
        while ordered[start] <= at - window:
            start += 1
        most = max(most, end - start + 1)
    return most


def window_rate(times: list[float], after: float, window: float) -> float | None:
    """Events/s over [first + after, first + after + window), or None when the events end before it does."""
    ordered = sorted(times)
    if not ordered or ordered[-1] < ordered[0] + after + window:
        return None
    start = ordered[0] + after
    return sum(start <= t < start + window for t in ordered) / window


def rate(times: list[float], skip: int = 0) -> float:
    """Events/s from the first to the last, leaving out the first `skip` (a start-up)."""
    ordered = sorted(times)[skip:]
    if len(ordered) < 2:
        return 0.0
    return (len(ordered) - 1) / (ordered[-1] - ordered[0])


def retry_after(fault: str) -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)} if fault == "429" else {}


REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
           503: "Service Unavailable"}  # fmt: skip


def response(status: int, headers: dict[str, str], answer: dict | list) -> bytes:
    body = json.dumps(answer).encode()
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    """One request off a keep-alive connection, or None at its end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError("headers too long")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    length = 0
    for line in header_lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return method, path, body


if __name__ == "__main__":
    port, latency, quota = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    provider = FakeProvider(latency, quota, port, keep=int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    threading.Thread(target=lambda: (sys.stdin.read(), provider.loop.call_soon_threadsafe(provider.loop.stop)),
                     daemon=True).start()  # fmt: skip
    provider.run()
