"""A token bucket per mail provider, kept in Redis so every worker on every machine draws from the same one.

The refill and the take happen in one Lua script, atomically, on Redis's own clock, so workers with skewed
clocks still share one rate: a provider quota of 14 messages/s is never exceeded however many workers send.
"""

import asyncio
import math
import time
from collections import deque
from functools import cache

import redis
import redis.asyncio
from django.conf import settings

# KEYS[1]: the bucket hash. ARGV: rate (tokens/s), capacity, now in microseconds or "" for Redis's clock, how
# many tokens may be reserved ahead (0: none), and how many tokens are asked for (1 if absent). Tokens are
# counted in millionths, so with whole rates and microsecond clocks the arithmetic is exact. Returns one number
# per token given, in order: 0 when it was taken, a negative number when it was reserved (minus the microseconds
# until it is due). When not even the first can be given: one positive number, the microseconds until one may
# be taken or reserved.
TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local full = tonumber(ARGV[2]) * 1000000
local now
if ARGV[3] == "" then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[3])
end
local state = redis.call("HMGET", KEYS[1], "tokens", "at")
local tokens = tonumber(state[1]) or full
local at = tonumber(state[2]) or now
if now > at then
  tokens = math.min(full, tokens + (now - at) * rate)
  at = now
end
local ahead = (tonumber(ARGV[4]) or 0) * 1000000
local waits = {}
for i = 1, (tonumber(ARGV[5]) or 1) do
  if tokens >= 1000000 then
    tokens = tokens - 1000000
    waits[i] = 0
  elseif tokens - 1000000 >= -ahead then
    tokens = tokens - 1000000
    waits[i] = -math.max(1, math.ceil(-tokens / rate))
  else
    if i == 1 then
      waits[1] = math.ceil((1000000 - ahead - tokens) / rate)
    end
    break
  end
end
redis.call("HSET", KEYS[1], "tokens", string.format("%.17g", tokens), "at", string.format("%.0f", at))
redis.call("PEXPIRE", KEYS[1], math.ceil(full / rate / 1000) + 60000)
return waits
"""
KEY_PREFIX = "delivery:bucket:"
# A sender asks for its next token a little late (a sleeping thread wakes when the scheduler and the GIL let
# it), and a bucket that holds one token loses the time in between: on a busy two-core machine, 5% of a 14/s
# quota. Reserving the next tokens ahead, each due at its own instant, loses none of it, and spends no more.
# And every sender that finds no token to reserve must ask again: with 64 threads on a 1,000/s quota and two
# reservations, 62 threads asked Redis every millisecond, which cost the workers more CPU than the sending.
# So the bucket reserves up to RESERVE_SECONDS of the rate ahead: more than there are threads sending, so each
# asks once per message and sleeps until its instant. Tokens held when a send stops (a 429, an outage) go
# unused: at most one per sender in flight, a moment of the quota, never more than it.
RESERVE_SECONDS = 60
RESERVE_AHEAD_MIN = 2
# Connections a LoopBucket keeps to Redis. It asks for the tokens of every sender waiting at once, in one round
# trip, so one connection carries thousands of tokens a second.
LOOP_CONNECTIONS = 1
# Tokens a LoopBucket asks for at once, at most. One round trip a token cost a worker ~0.2 ms of CPU a message
# (a tenth of its work at a 1,000/s quota) and Redis as much again; at most this many ahead of their senders
# go unused when a send stops: at a 1,000/s quota, 32 ms of it.
TAKE_MANY = 32
# A LoopBucket asks for this much of the quota at once even for one sender waiting (at 1,000/s, 4 tokens; at
# 250/s or less, one): senders arrive one at a time, as the worker renders them, and each round trip to Redis
# cost the worker ~0.1 ms of CPU and Redis as much again. The tokens left when the wire closes go unused: at
# most this much of the quota per chunk.
TAKE_AHEAD_SECONDS = 0.004


class TokenBucket:
    def __init__(self, client: redis.Redis, name: str, rate: float, capacity: int = 1, ahead: int = 0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.key = KEY_PREFIX + name
        self.rate = rate
        self.capacity = max(1, capacity)
        self.ahead = ahead  # tokens that may be reserved before they are due
        self.script = client.register_script(TAKE_SCRIPT)

    def try_take(self, now: float | None = None) -> float:
        """Take one token if there is one: 0.0. Else, while fewer than `ahead` are reserved, reserve the next:
        minus the seconds until it is due (it is ours then, with no need to ask again). Else the seconds to wait
        before asking again. `now` (seconds) is for tests."""
        return self.script(keys=[self.key], args=self.arguments(now))[0] / 1_000_000

    def arguments(self, now: float | None, count: int = 1) -> list:
        return [self.rate, self.capacity, "" if now is None else str(round(now * 1_000_000)), self.ahead, count]

    def take(self, sleep=time.sleep) -> None:
        """Block until a token is ours."""
        while (wait := self.try_take()) > 0:
            sleep(wait)
        if wait < 0:
            sleep(-wait)  # reserved: due then


class LoopBucket:
    """A TokenBucket taken from an event loop (newsletter.sending.wire's LoopWire): the same key, rate and
    reservations, through an asyncio Redis client, so a sender's round trip to Redis is awaited while the loop
    goes on with the others (made blocking from the loop's one thread, each cost every sender ~1 ms on a busy
    machine: a quarter of a send's time). The senders waiting for a token ask together: one round trip reserves
    a token for each of them (up to TAKE_MANY), each due at its own instant, as one at a time would have."""

    def __init__(self, bucket: TokenBucket, url: str) -> None:
        self.bucket = bucket
        pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=LOOP_CONNECTIONS)
        self.client = redis.asyncio.Redis(connection_pool=pool)
        self.script = self.client.register_script(TAKE_SCRIPT)
        self.held: deque[float] = deque()  # the loop's times at which the tokens reserved and not handed out fall due
        self.asking: asyncio.Future | None = None
        self.waiting = 0  # senders waiting for a token
        self.least = max(1, min(TAKE_MANY, math.floor(bucket.rate * TAKE_AHEAD_SECONDS)))  # tokens per ask

    async def take(self) -> None:
        """Wait until a token is ours."""
        loop = asyncio.get_running_loop()
        self.waiting += 1
        try:
            while not self.held:
                if self.asking is None or self.asking.done():
                    self.asking = asyncio.ensure_future(self.ask(min(max(self.waiting, self.least), TAKE_MANY)))
                await asyncio.shield(self.asking)
        finally:
            self.waiting -= 1
        due = self.held.popleft() - loop.time()
        if due > 0:
            await asyncio.sleep(due)

    async def ask(self, count: int) -> None:
        """Tokens for `count` senders; with none to give yet, wait until one may be asked for."""
        waits = await self.script(keys=[self.bucket.key], args=self.bucket.arguments(None, count))
        now = asyncio.get_running_loop().time()
        if waits[0] > 0:
            await asyncio.sleep(waits[0] / 1_000_000)
            return
        self.held.extend(now - wait / 1_000_000 for wait in waits)

    async def close(self) -> None:
        await self.client.aclose()


def provider_name() -> str:
    """The bucket's name: one per provider, e.g. "anymail.backends.postmark" or "django...smtp"."""
    return settings.EMAIL_BACKEND.rsplit(".", 1)[0]


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def reserve_ahead(rate: float) -> int:
    """How many tokens a provider's bucket lets senders reserve before they are due."""
    return max(RESERVE_AHEAD_MIN, math.ceil(rate * RESERVE_SECONDS))


def provider_bucket() -> TokenBucket | None:
    """The configured provider's bucket, or None when there is no limit (or no Redis to share it through)."""
    if settings.DELIVERY_RATE_PER_SECOND <= 0 or not settings.REDIS_URL:
        return None
    return TokenBucket(
        _client(settings.REDIS_URL),
        provider_name(),
        settings.DELIVERY_RATE_PER_SECOND,
        settings.DELIVERY_RATE_BURST,
        ahead=reserve_ahead(settings.DELIVERY_RATE_PER_SECOND),
    )


def on_loop(bucket: TokenBucket | None) -> LoopBucket | None:
    """The provider's bucket for senders on an event loop (made where the loop runs: its client is the loop's)."""
    return LoopBucket(bucket, settings.REDIS_URL) if bucket is not None else None
