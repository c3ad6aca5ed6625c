"""The provider rate limit: one token bucket in a real Redis, shared by every worker, on a clock we control."""

import asyncio
import uuid

import pytest
import redis

from newsletter.sending.ratelimit import (
    RESERVE_SECONDS,
    TAKE_AHEAD_SECONDS,
    TAKE_MANY,
    LoopBucket,
    TokenBucket,
    provider_bucket,
    provider_name,
    reserve_ahead,
)

pytestmark = pytest.mark.clock("2026-11-28T07:00:00+00:00")

START = 1_800_000_000.0  # seconds; any fixed instant, the bucket only cares about differences
# Waits are whole microseconds, rounded up: the 140th token of ten seconds may come a microsecond late.
WINDOW_SLACK = 0.0005


@pytest.fixture
def client(redis_url) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def bucket(client: redis.Redis, rate: float, capacity: int = 1, name: str | None = None, ahead: int = 0) -> TokenBucket:
    return TokenBucket(client, name or f"test-{uuid.uuid4().hex}", rate, capacity, ahead)


def polled(buckets: list[TokenBucket], seconds: float, step: float = 0.003) -> int:
    """Ask for a token every `step` seconds of controlled time, round-robin across the buckets."""
    return sum(buckets[i % len(buckets)].try_take(now=START + i * step) == 0 for i in range(round(seconds / step) + 1))


def waited(buckets: list[TokenBucket], seconds: float) -> int:
    """Ask, and when refused ask again exactly as long after as the bucket said, taking turns."""
    now, count, turn = START, 0, 0
    while now <= START + seconds + WINDOW_SLACK:
        wait = buckets[turn % len(buckets)].try_take(now=now)
        count += wait == 0
        now += wait
        turn += 1
    return count


def test_a_quota_of_14_per_second_grants_exactly_14_a_second(client):
    # One token at the start (the bucket holds one), then one every 1/14 s: 1 + 14 × 10 over ten seconds.
    assert waited([bucket(client, 14)], seconds=10) == 141
    # Asked more often than that, it never grants more (a late ask loses what a one-token bucket cannot hold).
    assert polled([bucket(client, 14)], seconds=10) <= 141


def test_workers_share_one_bucket(client):
    name = f"shared-{uuid.uuid4().hex}"
    assert waited([bucket(client, 14, name=name) for _ in range(3)], seconds=10) == 141
    name = f"shared-{uuid.uuid4().hex}"
    assert polled([bucket(client, 14, name=name) for _ in range(3)], seconds=10) <= 141


def test_a_burst_allowance_is_granted_once_then_the_rate_holds(client):
    assert waited([bucket(client, 14, capacity=5)], seconds=10) == 5 + 140


def late(buckets: list[TokenBucket], seconds: float, lateness: float) -> int:
    """Senders that come back `lateness` seconds after they were told to (a thread the scheduler woke late);
    a reserved token is sent at its due instant plus the lateness, and that sender asks again at once."""
    now, count, turn = START, 0, 0
    while now <= START + seconds + WINDOW_SLACK:
        wait = buckets[turn % len(buckets)].try_take(now=now)
        if wait <= 0:
            count += 1
        now += abs(wait) + lateness
        turn += 1
    return count


def test_late_senders_lose_the_quota_unless_tokens_are_reserved_ahead(client):
    lost = late([bucket(client, 14)], seconds=10, lateness=0.01)
    assert lost < 141 - 10  # 10 ms late each time: over a tenth of the quota gone
    name = f"shared-{uuid.uuid4().hex}"
    # Three senders reserving ahead: each late one has its token waiting, and none is lost or spent twice.
    kept = late([bucket(client, 14, name=name, ahead=2) for _ in range(3)], seconds=10, lateness=0.01)
    assert 141 <= kept <= 141 + 2  # the two reserved ahead, due just after the ten seconds


def test_many_senders_each_ask_once_and_get_their_own_instant(client):
    # 64 sending threads (two workers of 32) on a 1,000/s quota ask together. With only two tokens reservable
    # ahead, 61 of them were told to ask again a millisecond later, and again: the workers spent more CPU
    # asking Redis than sending. With the provider's reservation depth each asks once, and the instants it
    # gets are the quota's, one millisecond apart, none twice.
    name = f"herd-{uuid.uuid4().hex}"
    shallow = [bucket(client, 1000, name=name, ahead=2).try_take(now=START) for _ in range(64)]
    assert sum(wait > 0 for wait in shallow) == 61
    deep = bucket(client, 1000, name=f"deep-{uuid.uuid4().hex}", ahead=reserve_ahead(1000))
    waits = [deep.try_take(now=START) for _ in range(64)]
    assert waits[0] == 0 and all(wait < 0 for wait in waits[1:])  # taken, then reserved: nobody asks again
    assert [round(-wait * 1000) for wait in waits[1:]] == list(range(1, 64))
    # The depth is a time: a minute of any quota, and never less than two tokens.
    assert reserve_ahead(1000) == 1000 * RESERVE_SECONDS and reserve_ahead(14) == 14 * RESERVE_SECONDS
    assert reserve_ahead(0.01) == 2


def test_one_ask_gives_several_tokens_each_at_its_own_instant(client):
    deep = bucket(client, 1000, ahead=reserve_ahead(1000))
    waits = deep.script(keys=[deep.key], args=deep.arguments(START, count=5))
    assert waits == [0, -1000, -2000, -3000, -4000]  # taken, then four reserved a millisecond apart (in µs)
    assert deep.try_take(now=START) == pytest.approx(-0.005)  # the next ask goes on where that one stopped
    shallow = bucket(client, 1000, ahead=2)
    assert shallow.script(keys=[shallow.key], args=shallow.arguments(START, count=5)) == [0, -1000, -2000]
    assert shallow.script(keys=[shallow.key], args=shallow.arguments(START, count=5)) == [1000]  # none: wait 1 ms


def evalsha_calls(client: redis.Redis) -> int:
    return client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)


def test_senders_on_a_loop_ask_together_and_still_go_one_instant_each(client, redis_url):
    # 64 senders of one worker's loop want a token at once from a 1,000/s bucket. Asking one round trip each
    # cost the worker a tenth of its CPU at that quota; together, a round trip carries up to TAKE_MANY tokens.
    # Each sender still goes at its own token's instant: 64 tokens take 63 ms at 1,000/s, however they were
    # asked for.
    shared = bucket(client, 1000, ahead=reserve_ahead(1000))

    async def senders() -> list[float]:
        tokens = LoopBucket(shared, redis_url)
        loop = asyncio.get_running_loop()

        async def one() -> float:
            await tokens.take()
            return loop.time()

        try:
            return await asyncio.gather(*(one() for _ in range(64)))
        finally:
            await tokens.close()

    asked_before = evalsha_calls(client)
    went = sorted(asyncio.run(senders()))
    asks = evalsha_calls(client) - asked_before
    assert asks <= -(-64 // TAKE_MANY) + 1  # the first ask is for one sender: the others join as it goes
    assert went[-1] - went[0] >= 0.063 - WINDOW_SLACK


@pytest.mark.parametrize(("rate", "asks"), [(1000, 3), (14, 12)])
def test_a_loop_asks_for_a_few_milliseconds_of_a_fast_quota_at_once(client, redis_url, rate, asks):
    # Senders come to a worker's loop one at a time, as the worker renders them. At 1,000/s a round trip to
    # Redis for each one's token cost the worker ~0.1 ms of CPU (and Redis as much): an ask takes
    # TAKE_AHEAD_SECONDS of the quota, 4 tokens, and the next senders use what is left. A slow quota still
    # asks one at a time: what a closing wire leaves unused is never more than a token.
    shared = bucket(client, rate, ahead=reserve_ahead(rate))

    async def one_at_a_time() -> list[float]:
        tokens = LoopBucket(shared, redis_url)
        loop = asyncio.get_running_loop()
        went = []
        try:
            for _ in range(12):
                await tokens.take()
                went.append(loop.time())
        finally:
            await tokens.close()
        return went

    before = evalsha_calls(client)
    went = asyncio.run(one_at_a_time())
    assert evalsha_calls(client) - before == asks
    assert asks == -(-12 // max(1, int(rate * TAKE_AHEAD_SECONDS)))
    assert went[-1] - went[0] >= 11 / rate - WINDOW_SLACK  # each still at its own instant


def test_a_refused_take_says_how_long_to_wait(client):
    b = bucket(client, 4)
    assert b.try_take(now=START) == 0
    assert b.try_take(now=START) == pytest.approx(0.25)
    assert b.try_take(now=START + 0.1) == pytest.approx(0.15)
    assert b.try_take(now=START + 0.25) == 0


def test_take_sleeps_until_the_token_is_there(client):
    b = bucket(client, 2)
    slept = []
    b.take(sleep=slept.append)
    assert slept == []
    b.try_take()  # the clock here is Redis's own: the next token is about half a second away
    b.take(sleep=slept.append)
    assert slept and 0 < slept[0] <= 0.5
    reserving, slept = bucket(client, 2, ahead=1), []
    reserving.take(sleep=slept.append)
    reserving.take(sleep=slept.append)  # the next, reserved: due in half a second, taken without asking again
    assert len(slept) == 1 and 0 < slept[0] <= 0.5


def test_the_bucket_is_per_provider_and_off_without_a_rate(settings, redis_url):
    settings.REDIS_URL = redis_url
    settings.DELIVERY_RATE_PER_SECOND = 0
    assert provider_bucket() is None
    settings.DELIVERY_RATE_PER_SECOND, settings.EMAIL_BACKEND = 14, "anymail.backends.postmark.EmailBackend"
    assert provider_bucket().key.endswith("anymail.backends.postmark")
    assert provider_name() == "anymail.backends.postmark"


@pytest.mark.django_db(transaction=True)
def test_every_message_sent_draws_one_token_from_the_providers_bucket(settings, redis_url, outbox):
    from datetime import date

    from newsletter import pipeline
    from newsletter.digests.build import build_digest
    from papers.ingest import fetch_and_ingest
    from papers.models import Paper
    from subscribers.models import Subscriber

    settings.REDIS_URL = redis_url
    # Next to no refill (one token every 1,000 s), room for ten: what is left is what was not taken.
    settings.DELIVERY_RATE_PER_SECOND, settings.DELIVERY_RATE_BURST = 0.001, 10
    client = redis.Redis.from_url(redis_url)
    client.delete(provider_bucket().key)
    fetch_and_ingest("hf", offline=True)
    Paper.objects.update(listed=date(2026, 11, 28))
    Subscriber.objects.bulk_create(Subscriber(email=f"r{i}@example.com", status="active") for i in range(4))
    assert pipeline.send(build_digest(date(2026, 11, 28))).sent == 4
    tokens = float(client.hget(provider_bucket().key, "tokens")) / 1_000_000
    assert tokens == pytest.approx(10 - 4, abs=0.05)
