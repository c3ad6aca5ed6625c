"""Acceptance: a send through a provider's HTTP API as operators run it. Real PostgreSQL, a Redis of our own, two
Celery workers started as operators start them (the Procfile's command and Celery's bare one), `send_digest`,
anymail's Postmark backend, and a fake Postmark on loopback (tests/fake_provider.py) with 50 ms of latency and a
quota of 200 messages/s, answering on purpose with 429s, 5xx and no answer at all.

What must hold: every active reader got exactly one message, nobody else did, the ledger explains every one of
them (the provider's message id on each sent row, one attempt per request the provider saw), the provider
accepted no more than its quota in any second, and the workers never asked for more than it over time. And with a
worker killed mid-send, its requests out: nobody lost, the only duplicates among the rows it held. The full-size
figures are `BENCH_ONLY=provider make bench`."""

import time
from datetime import date

import pytest

from newsletter.models import Delivery
from tests.fake_provider import FakeProvider, burst, busiest
from tests.workers_support import finish, held_by, population, process_env, send_digest, sent_by

TODAY = date(2026, 11, 28)
pytestmark = pytest.mark.clock("2026-11-28T07:00:00+00:00")
SEND_TIMEOUT_SECONDS = 400  # generous for processes on a busy machine; 5,000 messages at 200/s take 25 s
QUOTA = 200  # messages/s
LATENCY_SECONDS = 0.05
# Injected faults, one every FAULT_EVERY requests, the kinds taking turns: spread over the whole send.
FAULTS = {"429": 15, "500": 10, "503": 10, "timeout": 8}
FAULT_EVERY = 97
REQUEST_TIMEOUT_SECONDS = 2  # anymail gives up on an unanswered request after this long
RATE_WINDOW_SECONDS = 5  # the rate our workers asked for is judged over windows this long
REQUEST_DELAY_SECONDS = 0.5  # at most this long from a token to its request at the provider, on a loaded machine
POLL_SECONDS = 0.05


@pytest.fixture
def provider():
    fake = FakeProvider(latency=LATENCY_SECONDS, quota=QUOTA).start()
    yield fake
    fake.stop()


@pytest.fixture
def env(postgres, private_redis, provider, tmp_path) -> dict[str, str]:
    return process_env(
        private_redis.url,
        {
            "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
            "ANYMAIL_POSTMARK_SERVER_TOKEN": "acceptance-token",
            "ANYMAIL_POSTMARK_API_URL": provider.url,
            "ANYMAIL_REQUESTS_TIMEOUT": str(REQUEST_TIMEOUT_SECONDS),
            "DELIVERY_RATE_PER_SECOND": str(QUOTA),
            "DELIVERY_RETRY_BASE_SECONDS": "0.5",
            "DELIVERY_RETRY_MAX_SECONDS": "3",
            "OUTBOX_DIR": str(tmp_path / "outbox"),
            "LOG_LEVEL": "WARNING",
        },
    )


@pytest.mark.django_db(transaction=True)
def test_5000_readers_through_a_provider_api_at_its_quota_with_faults_get_one_message_each(
    env, provider, workers, tmp_path
):
    groups = population(TODAY, active=5000)
    provider.faults.plan.update(FAULTS)
    provider.faults.every = FAULT_EVERY
    first, second = workers.start("procfile"), workers.start("bare")
    code, lines = finish(send_digest(env, TODAY, tmp_path), tmp_path, SEND_TIMEOUT_SECONDS)

    skipped = len(groups["hash_suppressed"])
    assert (code, lines[-1]) == (0, f"sent=5000 skipped={skipped} failed=0 unsent=0")
    # Every active reader exactly once, nobody else.
    assert provider.accepted == {email: 1 for email in groups["active"]}
    assert provider.refused["429 injected"] + provider.refused["500"] + provider.refused["503"] == 35
    assert provider.refused["timeout"] == FAULTS["timeout"]
    # The ledger explains each: sent, with the id the provider gave that very message.
    rows = dict(Delivery.objects.filter(status="sent").values_list("subscriber__email", "message_id"))
    assert rows == provider.message_ids
    # Every request the provider saw is one attempt in the ledger: each refused one was tried again.
    attempts = Delivery.objects.exclude(status="skipped").values_list("attempts", flat=True)  # skipped: never sent
    assert sum(attempts) == len(provider.arrived_at)
    assert len(provider.arrived_at) >= 5000 + sum(FAULTS.values())
    assert set(Delivery.objects.exclude(status="sent").values_list("status", flat=True)) == {"skipped"}
    # Never above the quota. What the provider accepted, in any second: at most its quota and burst. What our
    # workers asked of it: the bucket's tokens fall due at most at the rate, plus the one it holds, in any window
    # (a token reserved ahead is used at its own instant, not when it was reserved); a request reaches the
    # provider up to REQUEST_DELAY_SECONDS after its token on a busy machine, so a window of RATE_WINDOW_SECONDS
    # sees at most the tokens due in that window and that delay.
    assert busiest(provider.accepted_at) <= QUOTA + burst(QUOTA)
    most = busiest(provider.arrived_at, RATE_WINDOW_SECONDS)
    assert most <= QUOTA * (RATE_WINDOW_SECONDS + REQUEST_DELAY_SECONDS) + 1, provider.stats()
    shares = [sent_by(workers.pids(first)), sent_by(workers.pids(second))]
    assert all(shares), shares
    print(
        f"\nprovider acceptance: {provider.stats()}, busiest {RATE_WINDOW_SECONDS} s asked {most}, per worker {shares}"
    )


KILL_READERS = 2000
KILL_LEASE_SECONDS = 10  # short, so the test does not wait long after the kill; a live worker renews it in time
KILL_AT_SENT = 600  # sent rows at which a worker dies: mid-send, with its requests in flight


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_with_many_requests_in_flight_loses_nobody(env, provider, workers, tmp_path):
    """SIGKILL to a worker mid-send, with requests out (up to DELIVERY_CONCURRENCY) and the next batches claimed
    and rendered: the rows it held in `sending` wait for its lease to run out, then go again ("resend", the
    default policy). Every reader gets the digest; the only duplicates are among those rows, the requests the
    provider took before the kill."""
    groups = population(TODAY, active=KILL_READERS)
    env = workers.env = env | {"DELIVERY_LEASE_SECONDS": str(KILL_LEASE_SECONDS)}
    running = [workers.start("procfile"), workers.start("bare")]
    command = send_digest(env, TODAY, tmp_path)
    deadline = time.monotonic() + SEND_TIMEOUT_SECONDS
    in_flight = 0
    while command.poll() is None and time.monotonic() < deadline:
        if Delivery.objects.filter(status="sent").count() >= KILL_AT_SENT:
            held = {process: held_by(workers.pids(process)) for process in running}
            victim = max(running, key=held.get)
            if held[victim]:  # else both are between chunks this instant: look again
                in_flight = workers.kill(victim)
                workers.start(victim.kind)
                break
        time.sleep(POLL_SECONDS)
    assert in_flight > 0, "the kill found nothing in flight: it came too late or too early"
    code, lines = finish(command, tmp_path, SEND_TIMEOUT_SECONDS)

    skipped = len(groups["hash_suppressed"])
    assert (code, lines[-1]) == (0, f"sent={KILL_READERS} skipped={skipped} failed=0 unsent=0")
    assert set(provider.accepted) == set(groups["active"])  # nobody lost, nobody else mailed
    duplicates = sum(n - 1 for n in provider.accepted.values())
    assert duplicates <= in_flight
    rows = dict(Delivery.objects.filter(status="sent").values_list("subscriber__email", "message_id"))
    assert rows == provider.message_ids  # each row names the message the provider took last for that reader
    assert Delivery.objects.filter(status="sent", interruptions__gt=0).count() == in_flight
    print(f"\nprovider kill: {in_flight} rows in flight at the kill, {duplicates} taken twice, {provider.stats()}")
