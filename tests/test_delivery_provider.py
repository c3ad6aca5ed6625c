"""Sending through a provider's HTTP API as operators do: anymail's real Postmark backend posting to a fake
Postmark on loopback (tests/fake_provider.py) that answers after a latency, refuses past its quota and fails on
purpose. Many requests are in flight per process; the ledger's rules are the same as over SMTP. The same with
two worker processes and 5,000 readers: test_delivery_provider_workers.py."""

import gc
from datetime import timedelta

import pytest
import requests
import time_machine

from newsletter import pipeline
from newsletter.models import Delivery
from newsletter.sending import delivery, wire
from tests.delivery_support import NOON, digest_fixture, readers, statuses  # noqa: F401 - fixtures
from tests.fake_provider import FakeProvider, burst, busiest

POSTMARK = "anymail.backends.postmark.EmailBackend"


@pytest.fixture
def provider(settings):
    fake = FakeProvider(latency=0.05).start()
    settings.EMAIL_BACKEND = POSTMARK
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "test-token", "POSTMARK_API_URL": fake.url, "REQUESTS_TIMEOUT": 2}
    settings.DELIVERY_CONCURRENCY = 8
    settings.DELIVERY_RETRY_BASE_SECONDS = 0  # in-process retries run at once; the schedule is tested apart
    yield fake
    fake.stop()


def test_every_reader_gets_one_message_with_many_requests_in_flight(digest, provider):
    people = readers(60)
    counts = pipeline.send(digest)

    assert counts.summary() == "sent=60 skipped=0 failed=0 unsent=0"
    assert provider.accepted == {p.email: 1 for p in people}
    assert provider.most_in_flight > 1  # a process keeps several requests on the wire, not one at a time
    ids = set(Delivery.objects.values_list("message_id", flat=True))
    assert len(ids) == 60 and all(len(i) == 36 for i in ids)  # the provider's MessageID, kept in the ledger


def test_a_provider_with_one_request_at_a_time_gets_one_at_a_time(digest, provider, settings):
    settings.DELIVERY_CONCURRENCY = 1
    readers(10)
    assert pipeline.send(digest).sent == 10
    assert provider.most_in_flight == 1


def test_smtp_is_sent_one_message_at_a_time_whatever_the_concurrency(settings):
    settings.EMAIL_BACKEND, settings.DELIVERY_CONCURRENCY = "newsletter.mail.SMTPBackend", 32
    assert wire.concurrency() == 1
    settings.EMAIL_BACKEND = POSTMARK
    assert wire.concurrency() == 32


def test_each_backend_gets_its_wire(settings):
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "test-token", "POSTMARK_API_URL": "http://127.0.0.1:9/"}
    settings.DELIVERY_CONCURRENCY = 64
    expected = {
        POSTMARK: (wire.LoopWire, 64),  # requests underneath: sent from the event loop
        "anymail.backends.test.EmailBackend": (wire.PooledWire, wire.POOL_THREADS_MAX),  # no requests: threads
        "django.core.mail.backends.locmem.EmailBackend": (wire.Wire, 1),
    }
    for backend, (kind, in_flight) in expected.items():
        settings.EMAIL_BACKEND = backend
        with wire.open_wire(None) as line:
            assert (type(line), line.concurrency) == (kind, in_flight), backend


def test_injected_429s_5xx_and_timeouts_are_retried_until_everyone_has_one(digest, provider, settings):
    settings.ANYMAIL = settings.ANYMAIL | {"REQUESTS_TIMEOUT": 0.5}
    people = readers(80)
    provider.faults.plan.update({"429": 3, "500": 2, "503": 2, "timeout": 2})
    provider.faults.every = 7
    counts = pipeline.send(digest)

    assert counts.summary() == "sent=80 skipped=0 failed=0 unsent=0"
    assert provider.accepted == {p.email: 1 for p in people}
    assert provider.refused == {"429 injected": 3, "500": 2, "503": 2, "timeout": 2}
    # Every request the provider saw is one attempt in the ledger: the refused ones were tried again, and sent.
    assert sum(Delivery.objects.values_list("attempts", flat=True)) == len(provider.arrived_at) == 80 + 9


def test_a_429_delays_only_its_own_reader_by_the_retry_after(digest, provider, settings):
    settings.DELIVERY_CONCURRENCY = 4
    settings.DELIVERY_RETRY_BASE_SECONDS = 30  # an outage's backoff: a 429 asks for less, and gets it
    readers(30)
    provider.faults.plan.update({"429": 1})
    provider.faults.every = 5  # the fifth request is refused with 429, Retry-After: 1
    with time_machine.travel(NOON, tick=False):
        counts = delivery.send_chunk(digest.pk, delivery.start_send(digest.pk))
    (waiting,) = Delivery.objects.filter(status="queued")
    # One request too early says nothing of the others: the chunk goes on, paced by the token bucket.
    assert (counts.sent, counts.retry) == (29, 1) and sum(provider.accepted.values()) == 29
    # The provider's Retry-After, not an outage's backoff: it was only asked to slow down.
    assert waiting.next_attempt_at == NOON + timedelta(seconds=1) and "429" in waiting.error


def test_a_5xx_stops_the_chunk_and_the_rest_waits_as_long(digest, provider, settings):
    settings.DELIVERY_CONCURRENCY, settings.DELIVERY_RETRY_BASE_SECONDS = 4, 30
    readers(30)
    provider.faults.plan.update({"503": 1})
    provider.faults.every = 5
    with time_machine.travel(NOON, tick=False):
        counts = delivery.send_chunk(digest.pk, delivery.start_send(digest.pk))
    waiting = Delivery.objects.filter(status="queued")
    # Those on the wire when the 503 came back went out; nothing more was sent, and nothing is lost.
    assert counts.sent == Delivery.objects.filter(status="sent").count() >= 4
    assert counts.sent + waiting.count() == 30 and counts.retry == waiting.count()
    waits = {(r.next_attempt_at - NOON).total_seconds() for r in waiting}
    assert len(waits) == 1 and 15 <= waits.pop() <= 30  # an outage's backoff, the same for all of them
    assert sum(r.attempts for r in waiting) == 1 and all("503" in r.error for r in waiting)
    assert sum(provider.accepted.values()) == counts.sent


@pytest.fixture
def steady_heap():
    """This test process holds every test module collected: one full collection of its heap took 237 ms
    (measured), stalling every sender the loop runs, whose due tokens then left together and met the
    provider's quota. A worker process holds a fraction of that heap. What is here now is kept out of the
    collector's walks while the test runs."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def test_the_token_bucket_holds_a_pool_of_requests_to_the_quota(digest, provider, settings, redis_url, steady_heap):
    settings.REDIS_URL, settings.DELIVERY_RATE_PER_SECOND = redis_url, 20
    provider.quota = 20
    readers(60)
    assert pipeline.send(digest).sent == 60
    assert busiest(provider.arrived_at) <= 20 + burst(20)  # what the provider allows at once, no more
    assert sum(provider.accepted.values()) == 60  # and a 429, if bunched requests met one, was tried again


def test_the_fake_provider_speaks_postmarks_api_and_says_what_it_saw(provider):
    provider.quota = 0.001  # the two messages of its burst, then nothing for a long while
    provider.tokens = burst(provider.quota)
    post = requests.Session()
    answers = [
        post.post(f"{provider.url}email", json={"To": f"r{i}@example.com", "From": "a@example.com"}) for i in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].json()["ErrorCode"] == 0 and answers[2].headers["Retry-After"] == "1"
    stats = post.get(f"{provider.url}_stats").json()
    assert (stats["accepted"], stats["refused"], stats["busiest_second"]) == (2, {"429 quota": 1}, 2)
