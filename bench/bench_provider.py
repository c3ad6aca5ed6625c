"""Sending through a provider's HTTP API: personalized digests through the real pipeline (`send_digest` fanning
out to two worker processes, ranking, rendering, the ledger, anymail's Postmark backend with
DELIVERY_CONCURRENCY requests in flight per process) into the fake Postmark of tests/fake_provider.py, with 50 ms
of latency and a quota of 1,000 messages/s. Next to it, in the same run, a bare loop: the bodies the provider
received, posted again by two processes with as many requests in flight and the same token bucket, with
nothing rendered and nothing recorded: what this machine, this provider and this quota allow.

Then a quota of 14/s (a small account's) for a minute: the rate the provider saw against 14/s, and whether any
429 was left unhandled (every reader sent in the end).
Everything runs on its own database (<bench db>_provider), its own redis-server and its own fake provider.
"""

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
from django.conf import settings
from django.utils import timezone

from bench import Row, own_database
from bench.bench_daily import wait_for_workers
from bench.bench_send import prepare, reset, start_worker, timed_send

if TYPE_CHECKING:
    from tests.private_redis import PrivateRedis

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2  # the two worker processes on this two-core machine
LATENCY_SECONDS = 0.05  # a provider's API answers in 30-150 ms
QUOTA = 1000  # messages/s the provider accepts
TARGET_SHARE_OF_QUOTA = 0.9  # the target: the quota is the limit, not us
PEAK_RSS_MB = 300  # the limit per worker process
# The CPU a message may cost at the quota on this machine, the workers', the provider's, Redis's and PostgreSQL's
# together: what the workers' own share is measured against.
MACHINE_CORES = 2
SMALL_QUOTA = 14  # a small account's quota, held for a minute
SMALL_QUOTA_SECONDS = 60
SMALL_QUOTA_READERS = SMALL_QUOTA * (SMALL_QUOTA_SECONDS + 15)  # a minute of steady sending, and a start and an end
STEADY_AFTER_SECONDS = 5  # the minute measured starts this long after the first message (workers warming up)
SMALL_QUOTA_TOLERANCE = 0.01  # within 1% of it
KEEP_BODIES = 500  # bodies the bare loop posts again, in turn
BARE_MESSAGES = 10_000  # enough for a steady rate at the quota; at most the send's size
# What else the machine runs during the send, besides the workers (bench rows, in this order).
PARTS = {"provider": "fake provider's", "postgres": "PostgreSQL's", "redis": "Redis's", "command": "send_digest's"}


def run(size: int) -> list[Row]:
    from tests.private_redis import PrivateRedis

    full_only = os.environ.get("BENCH_PROVIDER_FULL_ONLY") == "1"  # the 1,000/s send alone, on a fresh database
    with own_database("provider") as database_url:
        tmp = Path(tempfile.mkdtemp(prefix="bench-provider-"))
        broker = PrivateRedis(tmp)
        broker.start()
        try:
            reset()
            if not full_only:
                small = small_quota(database_url, broker.url, tmp)
                serial_sent, serial_rate = one_at_a_time(database_url, broker.url, tmp)
            big = full_quota(database_url, broker, tmp, size)
        finally:
            broker.stop()
    sent, wall, rate, provider_rate, peaks, bare_rate, stats, cpu, shares = big
    per_message = {part: 1e6 * seconds / max(sent, 1) for part, seconds in shares.items()}
    cores_at_quota = MACHINE_CORES * 1e6 / QUOTA
    rows = [
        Row("provider", f"msgs/s, {WORKERS} workers, {sent} msgs", rate, f"quota {QUOTA}/s", QUOTA,
            f">= {TARGET_SHARE_OF_QUOTA:.0%} of quota", rate >= TARGET_SHARE_OF_QUOTA * QUOTA),
        Row("provider", "msgs/s at the provider, first-last", provider_rate, f"quota {QUOTA}/s", QUOTA),
        Row("provider", "bare loop msgs/s, same concurrency", bare_rate, f"quota {QUOTA}/s", QUOTA),
        Row("provider", f"wall time s, {sent} msgs", wall, "at the quota", sent / QUOTA),
        Row("provider", "s to the first message", stats["lead"], "wall time", wall),
        Row("provider", "s after the last message", stats["tail"], "wall time", wall),
        Row("provider", "429s past the quota (all retried)", stats["refused"].get("429 quota", 0)),
        Row("provider", "workers' CPU us a message", 1e6 * cpu / max(sent, 1), "both cores at the quota",
            cores_at_quota),
        # Everything on the machine shares its two cores: at the target rate, all of it may cost this much.
        Row("provider", "machine's CPU us a message, all of it", per_message["machine"],
            f"both cores at {TARGET_SHARE_OF_QUOTA:.0%} of quota", cores_at_quota / TARGET_SHARE_OF_QUOTA),
        Row("provider", "machine idle during the send %", 100 * (1 - shares["machine"] / (MACHINE_CORES * wall))),
    ]  # fmt: skip
    for part, what in PARTS.items():
        rows.append(Row("provider", f"{what} CPU us a message", per_message[part], "both cores at the quota",
                        cores_at_quota))  # fmt: skip
    for i, peak in enumerate(peaks):
        rows.append(Row("provider", f"worker {i} peak RSS MB", peak, "the issue's limit", PEAK_RSS_MB,
                        f"<= {PEAK_RSS_MB} MB", peak <= PEAK_RSS_MB))  # fmt: skip
    if full_only:
        return rows
    rows.append(
        Row("provider", f"msgs/s, one request at a time, {serial_sent} msgs", serial_rate, f"quota {QUOTA}/s", QUOTA)
    )
    small_rate, small_sent, small_unsent, small_429 = small
    rows += [
        Row("provider", f"msgs/s over {SMALL_QUOTA_SECONDS} s, quota {SMALL_QUOTA}", small_rate,
            f"quota {SMALL_QUOTA}/s", SMALL_QUOTA, f"within {SMALL_QUOTA_TOLERANCE:.0%}",
            abs(small_rate - SMALL_QUOTA) <= SMALL_QUOTA_TOLERANCE * SMALL_QUOTA),
        Row("provider", f"readers unsent at quota {SMALL_QUOTA} (429s: {small_429})", small_unsent, "none", 0,
            "every 429 handled", small_unsent == 0 and small_sent > 0),
    ]  # fmt: skip
    return rows


def provider_env(database_url: str, redis_url: str, provider_url: str, quota: int) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
        "ANYMAIL_POSTMARK_SERVER_TOKEN": "bench-token",
        "ANYMAIL_POSTMARK_API_URL": provider_url,
        "ANYMAIL_WEBHOOK_SECRET": "bench:webhook-secret",  # with DEBUG off, no provider goes without one
        "DELIVERY_RATE_PER_SECOND": str(quota),
        "LOG_LEVEL": "WARNING",
    }


class Provider:
    """The fake provider in a process of its own, so that serving 1,000 requests/s costs the senders no GIL."""

    def __init__(self, quota: int, keep: int = 0) -> None:
        from tests.smtp_sink import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_provider", str(self.port), str(LATENCY_SECONDS), str(quota), str(keep)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout.readline().strip() == "ready"

    def get(self, path: str) -> dict | list:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=60) as answer:  # noqa: S310 - our loopback server
            return json.loads(answer.read())

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}_reset", method="POST"), timeout=60).close()  # noqa: S310

    def stop(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def started_workers(env: dict[str, str], broker_url: str, tmp: Path) -> list[subprocess.Popen]:
    workers = [start_worker(env, tmp) for _ in range(WORKERS)]
    wait_for_workers(broker_url, WORKERS)
    return workers


def stop(workers: list[subprocess.Popen]) -> None:
    for process in workers:
        process.kill()
        process.wait()


def small_quota(database_url: str, broker_url: str, tmp: Path) -> tuple[float, int, int, int]:
    """A minute's worth of readers at 14/s: the rate the provider saw, first to last, and what was left unsent."""
    from newsletter.models import Delivery

    provider = Provider(SMALL_QUOTA)
    workers = started_workers(provider_env(database_url, broker_url, provider.url, SMALL_QUOTA), broker_url, tmp)
    try:
        prepare(SMALL_QUOTA_READERS)
        day = timezone.now().date()
        env = provider_env(database_url, broker_url, provider.url, SMALL_QUOTA)
        sent, _, _, _ = timed_send(env, day, workers)
        stats = provider.get(f"_stats?after={STEADY_AFTER_SECONDS}&window={SMALL_QUOTA_SECONDS}")
    finally:
        stop(workers)
        provider.stop()
    unsent = Delivery.objects.filter(digest__date=day).exclude(status=Delivery.Status.SENT).count()
    print(f"  quota {SMALL_QUOTA}/s: {json.dumps(stats)}", file=sys.stderr)
    return stats["window_rate"], sent, unsent, stats["refused"].get("429 quota", 0)


def one_at_a_time(database_url: str, broker_url: str, tmp: Path) -> tuple[int, float]:
    """The same readers as the 14/s minute, with DELIVERY_CONCURRENCY=1 and the 1,000/s quota: how fast two
    processes go one request at a time, as they did before requests went in flight together."""
    provider = Provider(QUOTA)
    env = provider_env(database_url, broker_url, provider.url, QUOTA) | {"DELIVERY_CONCURRENCY": "1"}
    workers = started_workers(env, broker_url, tmp)
    try:
        sent, rate, _, _ = timed_send(env, timezone.now().date() + timedelta(days=1), workers)
    finally:
        stop(workers)
        provider.stop()
    return sent, rate


def full_quota(database_url: str, broker: "PrivateRedis", tmp: Path, size: int) -> tuple:
    broker_url = broker.url
    provider = Provider(QUOTA, keep=KEEP_BODIES)
    env = provider_env(database_url, broker_url, provider.url, QUOTA)
    workers = started_workers(env, broker_url, tmp)
    try:
        prepare(size)
        day = timezone.now().date() + timedelta(days=1)  # sent again from scratch: today's papers are news then
        parts = {"provider": [provider.process.pid], "redis": [broker.process.pid], "postgres": postgres_pids()}
        before = machine_cpu(parts)
        started = time.monotonic()  # the provider's clock too (first_at, last_at): one clock for the machine
        sent, rate, peaks, cpu = timed_send(env, day, workers)
        ended = time.monotonic()
        shares = {part: seconds - before[part] for part, seconds in machine_cpu(parts).items()}
        wall = ended - started
        stats = provider.get("_stats")
        accepted_any = stats["first_at"] is not None  # a send that delivered nothing has no first message
        stats["lead"] = stats["first_at"] - started if accepted_any else math.nan
        stats["tail"] = ended - stats["last_at"] if accepted_any else math.nan
        print(f"  quota {QUOTA}/s: {json.dumps(stats)}", file=sys.stderr)
        bodies = provider.get("_bodies")
        provider.reset()
        concurrency = settings.DELIVERY_CONCURRENCY
        bare_rate = bare_loop(provider.url, broker_url, bodies, min(size, BARE_MESSAGES), concurrency, tmp)
    finally:
        stop(workers)
        provider.stop()
    return sent, wall, rate, stats["rate"], peaks, bare_rate, stats, cpu, shares


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes on this machine (none when the database is elsewhere)."""
    return [process.pid for process in psutil.process_iter(["name"]) if process.info["name"] == "postgres"]


def machine_cpu(parts: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds (user + system) so far: of each part's processes, of the children this process has waited for
    (`send_digest`), and of the whole machine (all but idle). A part's children count once they have ended: a
    database connection that ends during the send is in its server's children's time."""
    seconds = {part: sum(process_cpu(pid) for pid in pids) for part, pids in parts.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds["command"] = children.ru_utime + children.ru_stime
    machine = psutil.cpu_times()  # (a guest's time is in user's already; steal is the host's, not this machine's)
    seconds["machine"] = machine.user + machine.nice + machine.system + machine.irq + machine.softirq
    return seconds


def process_cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:  # a database connection that ended: its server counts it with its children
        return 0.0
    return times.user + times.system + times.children_user + times.children_system


def bare_loop(url: str, redis_url: str, bodies: list[str], messages: int, concurrency: int, tmp: Path) -> float:
    """The bodies the provider took, posted again by WORKERS processes with `concurrency` in flight each, each post
    after a token from the same kind of bucket (bench/bareposts.py): messages/s, first post to last answer (the
    processes' start, ~0.7 s of their ~10.8 s, left out: it had the bare loop below the send it bounds)."""
    if not bodies:
        return 0.0  # the send delivered nothing to post again
    bodies_file = tmp / "bodies.json"
    bodies_file.write_text(json.dumps(bodies))
    each = messages // WORKERS
    command = [sys.executable, "-m", "bench.bareposts", url, redis_url, str(bodies_file), str(each)]
    processes = [
        subprocess.Popen([*command, str(concurrency), str(QUOTA)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(WORKERS)
    ]
    spans = []
    for process in processes:
        out, _ = process.communicate()
        if process.returncode:
            raise RuntimeError(f"the bare loop failed: {' '.join(command)} exited {process.returncode}")
        spans.append([float(t) for t in out.split()])
    # From the first post to the last answer, as the send's figure at the provider: not the processes' start.
    return each * WORKERS / (max(end for _, end in spans) - min(start for start, _ in spans))
