"""Acceptance: real PostgreSQL, a real Redis of our own, Celery worker processes, `send_digest` as an operator
runs it, and a real SMTP server on loopback. Then the faults: workers killed with SIGKILL mid-send, Redis
restarted empty mid-send, the SMTP server refusing with 421/451 for a while and 550 for some addresses.

What must hold afterwards: every active reader got the digest, nobody else did, duplicates are at most the
messages in flight at the kills, and the ledger explains every recipient."""

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from django.db import connection

from newsletter.digest import build_digest
from newsletter.models import Delivery
from papers.ingest import fetch_and_ingest
from papers.models import Paper
from subscribers.models import Subscriber, Suppression, email_hash
from tests import clock, smtp_sink
from tests.conftest import require
from tests.private_redis import PrivateRedis

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2026, 11, 28)
pytestmark = pytest.mark.clock("2026-11-28T07:00:00+00:00")
# Generous bounds for processes on a busy machine; a healthy run finishes far sooner.
SEND_TIMEOUT_SECONDS = 150
POLL_SECONDS = 0.05
# A claim older than this is a dead worker's: short here so the test does not wait long after a kill,
# long enough that a live worker's batch of 20 local messages never reaches it.
CLAIM_TIMEOUT_SECONDS = 8


@pytest.fixture
def private_redis(tmp_path):
    require(shutil.which("redis-server") is not None, "this test needs redis-server (Debian's redis-server package)")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sink():
    # Offering PIPELINING, as most relays do: the workers' faults below then hit the pipelined path (the
    # one-command-at-a-time path is faulted in test_delivery_ledger, both ways).
    controller, handler, port = smtp_sink.start(pipelining=True)
    handler.port = port
    yield handler
    controller.stop()


@pytest.fixture
def env(postgres, private_redis, sink, tmp_path) -> dict[str, str]:
    db = connection.settings_dict
    return os.environ | {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": private_redis.url,
        "EMAIL_BACKEND": "newsletter.mail.SMTPBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(sink.port),
        "EMAIL_TIMEOUT": "10",
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "DELIVERY_CLAIM_TIMEOUT_SECONDS": str(CLAIM_TIMEOUT_SECONDS),
        "DELIVERY_STUCK_POLICY": "resend",
        "DELIVERY_RETRY_BASE_SECONDS": "0.2",
        "DELIVERY_RETRY_MAX_SECONDS": "2",
        "DELIVERY_MAX_ATTEMPTS": "10",
        "LOG_LEVEL": "WARNING",
    }


class Workers:
    """Celery worker processes, one sending process each (solo pool), killable with SIGKILL."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.processes: list[subprocess.Popen] = []

    def start(self) -> subprocess.Popen:
        log = (self.logs / f"worker-{len(self.processes)}.log").open("w")
        process = subprocess.Popen(
            clock.command("celery", "-A", "newsletter", "worker", "--pool", "solo", "--queues", "default,send",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING",
             "--hostname", f"test-{uuid.uuid4().hex[:8]}@%h"),
            cwd=ROOT, env=clock.env(self.env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> int:
        """SIGKILL, then the rows it held: the messages in flight at its death."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return Delivery.objects.filter(status="sending", claim_token__startswith=f"{process.pid:x}-").count()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def workers(env, tmp_path):
    pool = Workers(env, tmp_path)
    yield pool
    pool.stop_all()


def population(active: int, rejected: int = 0) -> dict[str, list[str]]:
    """Active readers (one in ten with interests), some refused by the server with 550, some unsubscribed,
    some suppressed by status and some only by a Suppression entry (e.g. a bounce recorded by hash)."""
    groups = {
        "active": [f"reader{i}@example.com" for i in range(active)],
        "rejected": [f"reject{i}@example.com" for i in range(rejected)],
        "unsubscribed": [f"left{i}@example.com" for i in range(active // 40)],
        "suppressed": [f"bounced{i}@example.com" for i in range(active // 40)],
        "hash_suppressed": [f"complained{i}@example.com" for i in range(active // 100)],
    }
    status = {"unsubscribed": "unsubscribed", "suppressed": "suppressed"}
    Subscriber.objects.bulk_create(
        Subscriber(
            email=email,
            status=status.get(group, "active"),
            interests="language models, reinforcement learning" if i % 10 == 0 else "",
        )
        for group, emails in groups.items()
        for i, email in enumerate(emails)
    )
    Suppression.objects.bulk_create(
        Suppression(email_hash=email_hash(e), reason=Suppression.Reason.COMPLAINT) for e in groups["hash_suppressed"]
    )
    fetch_and_ingest("hf", offline=True)
    fetch_and_ingest("json", offline=True)
    Paper.objects.update(listed=TODAY)  # news on TODAY
    build_digest(TODAY)
    return groups


def send_digest(env: dict[str, str], logs: Path) -> subprocess.Popen:
    return subprocess.Popen(
        clock.command("manage.py", "send_digest", "--date", TODAY.isoformat()),
        cwd=ROOT, env=clock.env(env), stdout=subprocess.PIPE, stderr=(logs / "send_digest.log").open("w"), text=True,
    )  # fmt: skip


def sent_count() -> int:
    return Delivery.objects.filter(status="sent").count()


def finish(command: subprocess.Popen, logs: Path) -> str:
    try:
        out, _ = command.communicate(timeout=SEND_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        command.kill()
        pytest.fail(f"send_digest did not finish; ledger: {ledger()}; logs: {(logs / 'send_digest.log').read_text()}")
    return out.strip().splitlines()[-1]


def ledger() -> dict[str, int]:
    return dict(Counter(Delivery.objects.values_list("status", flat=True)))


def assert_ledger_explains_everyone(groups: dict[str, list[str]], received: Counter) -> None:
    rows = dict(Delivery.objects.values_list("subscriber__email", "status"))
    assert {rows[e] for e in groups["active"]} == {"sent"}
    assert {rows[e] for e in groups["rejected"]} <= {"failed"}
    assert {rows[e] for e in groups["hash_suppressed"]} == {"skipped"}
    assert not set(rows) & set(groups["unsubscribed"] + groups["suppressed"])  # never on the list
    assert set(received) == set(groups["active"])  # nobody lost, nobody else mailed
    errors = Delivery.objects.filter(status="failed").values_list("error", flat=True)
    assert all("550" in e for e in errors)


@pytest.mark.django_db(transaction=True)
def test_two_workers_send_2000_readers_exactly_one_message_each(env, sink, workers, tmp_path):
    groups = population(active=2000 - 50 - 50 - 20)
    first, second = workers.start(), workers.start()
    summary = finish(send_digest(env, tmp_path), tmp_path)

    assert summary == f"sent={len(groups['active'])} skipped={len(groups['hash_suppressed'])} failed=0"
    assert max(sink.received.values()) == 1
    assert_ledger_explains_everyone(groups, sink.received)
    by_worker = Counter(
        t.split("-")[0] for t in Delivery.objects.filter(status="sent").values_list("claim_token", flat=True)
    )
    assert set(by_worker) == {f"{first.pid:x}", f"{second.pid:x}"}  # both processes took a share
    print(f"\nacceptance: {len(groups['active'])} active readers, sink received {sink.total}, per worker {by_worker}")


@pytest.mark.django_db(transaction=True)
def test_kills_a_redis_restart_and_refusals_lose_nobody(env, sink, workers, private_redis, tmp_path):
    # Fewer readers than the 2,000 above keeps the file's runtime reasonable; the faults are what is tested.
    groups = population(active=600, rejected=12)
    sink.refuse_mail = 15  # 421 on the first MAIL FROMs: the connection closes, the chunk is retried later
    sink.defer_rcpt = 10  # then 451 greylisting on some recipients
    running = [workers.start(), workers.start()]
    command = send_digest(env, tmp_path)

    kills_at = [80, 220, 380]  # sent rows at which a worker dies: early, middle, late
    # ... and how long after that row was recorded: at a batch boundary, or with messages of the batch out.
    kill_delays = [0.0, 0.06, 0.12]
    restart_redis_at = 300
    in_flight: list[int] = []
    restarted = False
    deadline = time.monotonic() + SEND_TIMEOUT_SECONDS
    while (kills_at or not restarted) and command.poll() is None and time.monotonic() < deadline:
        sent = sent_count()
        if kills_at and sent >= kills_at[0]:
            kills_at.pop(0)
            time.sleep(kill_delays.pop(0))
            victim = running.pop(len(in_flight) % len(running))
            in_flight.append(workers.kill(victim))
            running.append(workers.start())
        if not restarted and sent >= restart_redis_at:
            private_redis.restart()  # empty: every queued task is gone; the sweeper must notice
            restarted = True
        time.sleep(POLL_SECONDS)
    assert not kills_at and restarted, f"the faults were not all injected; ledger: {ledger()}"
    summary = finish(command, tmp_path)

    duplicates = sum(n - 1 for n in sink.received.values())
    counts = ledger()
    print(
        f"\nfaults: in flight at the kills {in_flight}, duplicates {duplicates}, refused {dict(sink.refused)}, "
        f"ledger {counts}, summary {summary!r}"
    )
    assert summary == f"sent={len(groups['active'])} skipped={len(groups['hash_suppressed'])} failed=12"
    assert duplicates <= sum(in_flight)
    assert sink.refused["421"] == 15 and sink.refused["451"] == 10 and sink.refused["550"] >= 12
    assert_ledger_explains_everyone(groups, sink.received)
    assert Delivery.objects.filter(status="sent", attempts__gt=1).exists()  # retried, then delivered
