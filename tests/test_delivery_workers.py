"""Acceptance: real PostgreSQL, a real Redis of our own, two Celery workers started as operators start them (the
Procfile's command, and Celery's own bare `celery -A newsletter worker`), `send_digest` as an operator runs it,
and a real SMTP server on loopback. Then the faults: the provider refusing everything with 421 for a while, and
550 for some addresses; workers killed with SIGKILL mid-send; Redis restarted empty mid-send.

What must hold afterwards: every active reader got the digest exactly once (duplicates at most the messages in
flight at the kills), nobody else did, the ledger explains every recipient, refused addresses past the limit
are suppressed, and send_digest's last lines and exit status say how the send ended. The full-size drills
(2,000 readers, two minutes of 421, the default backoff and lease) run in `BENCH_ONLY=outage make bench`."""

import time
from datetime import date

import pytest

from newsletter.models import Delivery
from subscribers.models import Subscriber
from tests import smtp_sink
from tests.workers_support import finish, ledger, population, process_env, send_digest, sent_by

TODAY = date(2026, 11, 28)
pytestmark = pytest.mark.clock("2026-11-28T07:00:00+00:00")
# Generous bounds for processes on a busy machine; a healthy run finishes far sooner.
SEND_TIMEOUT_SECONDS = 240
POLL_SECONDS = 0.05
# A worker that has not renewed its lease this long is dead: short, so the test does not wait long after a kill,
# and long enough that a live worker on a busy two-core machine renews it in time (every third of it).
LEASE_SECONDS = 10
# The provider's outage: longer than one report of send_digest (10 s), so it says what it waits for.
OUTAGE_SECONDS = 15


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
    return process_env(
        private_redis.url,
        {
            "EMAIL_BACKEND": "newsletter.mail.SMTPBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink.port),
            "EMAIL_TIMEOUT": "10",
            "OUTBOX_DIR": str(tmp_path / "outbox"),
            "DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
            "DELIVERY_STUCK_POLICY": "resend",
            "DELIVERY_RETRY_BASE_SECONDS": "0.5",
            "DELIVERY_RETRY_MAX_SECONDS": "3",
            "DELIVERY_REJECTION_LIMIT": "2",
            "LOG_LEVEL": "WARNING",
        },
    )


def assert_ledger_explains_everyone(groups: dict[str, list[str]], received) -> None:
    rows = dict(Delivery.objects.values_list("subscriber__email", "status"))
    assert {rows[e] for e in groups["active"]} == {"sent"}
    assert {rows[e] for e in groups["rejected"]} <= {"failed"}
    assert {rows[e] for e in groups["hash_suppressed"]} == {"skipped"}
    assert not set(rows) & set(groups["unsubscribed"] + groups["suppressed"])  # never on the list
    assert set(received) == set(groups["active"])  # nobody lost, nobody else mailed
    errors = Delivery.objects.filter(status="failed").values_list("error", flat=True)
    assert all("550" in e for e in errors)


def summary(groups: dict[str, list[str]], failed: int = 0) -> str:
    return f"sent={len(groups['active'])} skipped={len(groups['hash_suppressed'])} failed={failed} unsent=0"


@pytest.mark.django_db(transaction=True)
def test_a_procfile_worker_and_a_bare_worker_send_2000_readers_exactly_one_message_each(env, sink, workers, tmp_path):
    groups = population(TODAY, active=2000 - 50 - 50 - 20)
    first, second = workers.start("procfile"), workers.start("bare")
    code, lines = finish(send_digest(env, TODAY, tmp_path), tmp_path, SEND_TIMEOUT_SECONDS)

    assert (code, lines[-1]) == (0, summary(groups))
    assert max(sink.received.values()) == 1
    assert_ledger_explains_everyone(groups, sink.received)
    shares = [sent_by(workers.pids(first)), sent_by(workers.pids(second))]
    assert all(shares), shares  # both took a share: the bare worker serves the send queue too
    print(f"\nacceptance: {len(groups['active'])} active readers, sink received {sink.total}, per worker {shares}")


@pytest.mark.django_db(transaction=True)
def test_an_outage_then_refused_addresses_delay_mail_and_lose_nobody(env, sink, workers, tmp_path):
    groups = population(TODAY, active=600, rejected=12, refused_before=6)
    workers.start("procfile")
    workers.start("bare")
    sink.outage_seconds = OUTAGE_SECONDS  # from the first MAIL FROM on, every one refused with 421; then all is well
    code, lines = finish(send_digest(env, TODAY, tmp_path), tmp_path, SEND_TIMEOUT_SECONDS)

    assert (code, lines[-2:]) == (
        3,
        [
            f"12 readers failed: their errors are in the admin's delivery ledger; send_digest --date {TODAY} "
            "--retry-failed queues them again.",
            summary(groups, failed=12),
        ],
    )
    said = [line for line in lines if "readers waiting for a retry after 'SMTPSenderRefused: (421" in line]
    assert said and "4.3.2 Service not available" in said[0], lines
    assert max(sink.received.values()) == 1 and sink.refused["421"] > 0
    assert_ledger_explains_everyone(groups, sink.received)
    refused = Subscriber.objects.filter(email__startswith="reject").order_by("pk")
    # Refused before, refused again: past the limit of 2, suppressed. Refused once: still a reader.
    assert [(s.status, s.rejections) for s in refused] == [("suppressed", 2)] * 6 + [("active", 1)] * 6
    served_after = sink.last_new_at - sink.refuse_until

    # Retrying the failed rows leaves the suppressed alone; the others are refused a second time, and go.
    code, lines = finish(send_digest(env, TODAY, tmp_path, "--retry-failed"), tmp_path, SEND_TIMEOUT_SECONDS)
    assert (code, lines[-1]) == (3, summary(groups, failed=12))
    assert f"Failed deliveries of the {TODAY} digest queued again." in lines
    assert set(refused.values_list("status", "rejections")) == {("suppressed", 2)}
    assert sink.refused["550"] == 12 + 6 and max(sink.received.values()) == 1
    print(
        f"\noutage: {OUTAGE_SECONDS} s of 421 on {len(groups['active'])} readers; the last reader served "
        f"{served_after:.1f} s after it ended; refused {dict(sink.refused)}"
    )


@pytest.mark.django_db(transaction=True)
def test_two_kills_a_redis_restart_and_refusals_lose_nobody(env, sink, workers, private_redis, tmp_path):
    groups = population(TODAY, active=1000, rejected=12)
    sink.refuse_mail = 15  # 421 on the first MAIL FROMs: the connection closes, the chunk's rows wait
    sink.defer_rcpt = 10  # then 451 greylisting on some recipients
    running = [workers.start("procfile"), workers.start("bare")]
    command = send_digest(env, TODAY, tmp_path)

    kills_at = [250, 600]  # sent rows at which a worker dies: early, then mid-send
    # ... and how long after that row was recorded: at a batch boundary, or with messages of the batch out.
    kill_delays = [0.0, 0.08]
    restart_redis_at = 450
    in_flight: list[int] = []
    restarted, last_kill = False, 0.0
    deadline = time.monotonic() + SEND_TIMEOUT_SECONDS
    while (kills_at or not restarted) and command.poll() is None and time.monotonic() < deadline:
        sent = Delivery.objects.filter(status="sent").count()
        if kills_at and sent >= kills_at[0]:
            kills_at.pop(0)
            time.sleep(kill_delays.pop(0))
            victim = running.pop(0)
            in_flight.append(workers.kill(victim))
            last_kill = time.monotonic()
            running.append(workers.start(victim.kind))
        if not restarted and sent >= restart_redis_at:
            private_redis.restart()  # empty: every queued task is gone; the sweeper must notice
            restarted = True
        time.sleep(POLL_SECONDS)
    assert not kills_at and restarted, f"the faults were not all injected; ledger: {ledger()}"
    code, lines = finish(command, tmp_path, SEND_TIMEOUT_SECONDS)

    duplicates = sum(n - 1 for n in sink.received.values())
    print(
        f"\nkills: in flight at the kills {in_flight}, duplicates {duplicates}, last reader served "
        f"{sink.last_new_at - last_kill:.1f} s after the last kill (lease {LEASE_SECONDS} s), refused "
        f"{dict(sink.refused)}, ledger {ledger()}, summary {lines[-1]!r}"
    )
    assert (code, lines[-1]) == (3, summary(groups, failed=12))
    assert duplicates <= sum(in_flight)
    assert sink.refused["421"] == 15 and sink.refused["451"] == 10 and sink.refused["550"] >= 12
    assert_ledger_explains_everyone(groups, sink.received)
    assert Delivery.objects.filter(status="sent", attempts__gt=1).exists()  # retried, then delivered
