"""Sending: personalized digests through the real pipeline (`send_digest` fanning out to Celery worker
processes, ranking, rendering, the ledger) into a loopback SMTP server, next to a bare smtplib loop sending
the very same messages (the bytes the server received) over one connection, in the same run.

Memory: each worker's peak RSS over a send of size/5 messages, then over a send of `size` messages by the
same processes; flat means a worker holds one chunk at a time, whatever the size of the send.
Everything runs on its own database (<bench db>_send), its own redis-server and its own SMTP server.
"""

import os
import pickle
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import psutil
from django.utils import timezone

from bench import Row, own_database, smtp_env
from bench.bench_daily import wait_for_workers

ROOT = Path(__file__).resolve().parent.parent
WORKERS = max(2, os.cpu_count() or 2)  # one sending process per core
SAMPLE_SECONDS = 0.2  # how often worker memory is sampled
TARGET_SHARE_OF_RAW = 0.7  # the target: the pipeline at >= 70% of a bare smtplib loop
FLAT_MEMORY_GROWTH = 1.10  # "flat": a five times larger send grows a worker's peak by at most 10%
INTERESTED_SHARE = 10  # one reader in ten has interests ("For you"); the rest get the trending section
# The size: at least this many messages, so the rate is the send's, not the command's start-up.
MIN_MESSAGES = 10_000


def run(size: int) -> list[Row]:
    size = max(size, MIN_MESSAGES)
    from tests.private_redis import PrivateRedis
    from tests.smtp_sink import free_port

    with own_database("send") as database_url:
        tmp = Path(tempfile.mkdtemp(prefix="bench-send-"))
        broker = PrivateRedis(tmp)
        broker.start()
        port = free_port()
        sink = subprocess.Popen(
            [sys.executable, "-m", "tests.smtp_sink", str(port)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert sink.stdout.readline().strip() == "ready"
        env = smtp_env(database_url, broker.url, port)
        workers: list[subprocess.Popen] = []
        first_day = timezone.now().date()
        try:
            reset()
            prepare(size // 5)
            workers = [start_worker(env, tmp) for _ in range(WORKERS)]
            wait_for_workers(broker.url, WORKERS)
            small_sent, small_rate, small_peaks, _ = timed_send(env, first_day, workers)
            sink_command(sink, f"dump {tmp / 'discard.pickle'}")
            prepare(size)
            big_sent, rate, peaks, _ = timed_send(env, first_day + timedelta(days=1), workers)
            sink_command(sink, f"dump {tmp / 'messages.pickle'}")
            raw = raw_rate(tmp / "messages.pickle", port)
        finally:
            for process in workers:
                process.kill()
                process.wait()
            sink.stdin.close()
            sink.wait()
            broker.stop()
    rows = [
        Row("send", f"digests/s, {WORKERS} workers, {big_sent} msgs", rate, "bare smtplib, one connection", raw,
            f">= {TARGET_SHARE_OF_RAW:.0%} of bare", rate >= TARGET_SHARE_OF_RAW * raw),
        Row("send", f"digests/s, {WORKERS} workers, {small_sent} msgs", small_rate),
    ]  # fmt: skip
    for i, (small, big) in enumerate(zip(small_peaks, peaks, strict=True)):
        rows.append(
            Row("send", f"worker {i} peak RSS MB, {big_sent} msgs", big, f"same worker, {small_sent} msgs", small,
                f"<= {FLAT_MEMORY_GROWTH:.0%} (flat)", big <= FLAT_MEMORY_GROWTH * small)
        )  # fmt: skip
    return rows


def reset() -> None:
    """This benchmark's own database starts with no readers and no digests, so each size is what it says."""
    from django.core.management import call_command

    from newsletter.models import Digest
    from subscribers.models import Subscriber

    call_command("migrate", verbosity=0)
    Digest.objects.all().delete()
    Subscriber.objects.all().delete()


def prepare(readers: int) -> None:
    """`readers` active subscribers in all (added to those already there), and the sample papers."""
    from papers.ingest import fetch_and_ingest
    from papers.models import Paper
    from subscribers.models import Subscriber

    if not Paper.objects.exists():
        fetch_and_ingest("hf", offline=True)
        fetch_and_ingest("json", offline=True)
    Paper.objects.update(listed=timezone.now().date())  # news today and tomorrow, whenever the bench runs
    have = Subscriber.objects.count()
    Subscriber.objects.bulk_create(
        (
            Subscriber(
                email=f"bench-{uuid.uuid4().hex[:12]}@example.com",
                status=Subscriber.Status.ACTIVE,
                interests="language models, reinforcement learning, diffusion" if i % INTERESTED_SHARE == 0 else "",
            )
            for i in range(max(0, readers - have))
        ),
        batch_size=5000,
    )


def start_worker(env: dict[str, str], logs: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "newsletter", "worker", "--pool", "solo", "--queues", "default,send",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING",
         "--hostname", f"bench-{uuid.uuid4().hex[:8]}@%h"],
        cwd=ROOT, env=env, stdout=(logs / f"worker-{uuid.uuid4().hex[:6]}.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def timed_send(
    env: dict[str, str], day: date, workers: list[subprocess.Popen]
) -> tuple[int, float, list[float], float]:
    """Run `send_digest` for `day`, sampling each worker's RSS and CPU time; messages sent, messages/s over the
    command's wall time, each worker's peak RSS (MB), and the CPU seconds the workers spent between them."""
    from newsletter.models import Delivery, Digest

    Digest.objects.filter(date=day).delete()
    started = time.perf_counter()
    command = subprocess.Popen(
        [sys.executable, "manage.py", "send_digest", "--date", day.isoformat()],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    peaks = [0.0] * len(workers)
    watched = [psutil.Process(process.pid) for process in workers]
    cpu_at_start = sum(sum(process.cpu_times()[:2]) for process in watched)  # user + system
    while command.poll() is None:
        for i, process in enumerate(watched):
            peaks[i] = max(peaks[i], process.memory_info().rss / 2**20)
        time.sleep(SAMPLE_SECONDS)
    cpu = sum(sum(process.cpu_times()[:2]) for process in watched) - cpu_at_start  # the workers outlive the send
    elapsed = time.perf_counter() - started
    summary = command.stdout.read().strip().splitlines()[-1]
    sent = Delivery.objects.filter(digest__date=day, status=Delivery.Status.SENT).count()
    print(f"  send_digest {day}: {summary} in {elapsed:.1f} s", file=sys.stderr)
    return sent, sent / elapsed, peaks, cpu


def sink_command(sink: subprocess.Popen, line: str) -> str:
    sink.stdin.write(line + "\n")
    sink.stdin.flush()
    return sink.stdout.readline().strip()


def raw_rate(messages_file: Path, port: int) -> float:
    """The same messages, bytes as received, through one smtplib connection: the ceiling for this sink."""
    messages = pickle.loads(messages_file.read_bytes())  # noqa: S301 - our own file, written by our own sink
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for mail_from, rcpt_tos, content in messages:
            smtp.sendmail(mail_from, rcpt_tos, content)
    return len(messages) / (time.perf_counter() - started)
