"""The bench's bare loop (bench/bench_provider.py): prebuilt request bodies posted to the fake provider with
`concurrency` in flight on one event loop, each post after a token from the same kind of Redis bucket the workers
use, through the same path as LoopWire's sends (newsletter.sending.bridge, LoopSession, LoopBucket); nothing
rendered, nothing recorded. Prints when its posting started and ended (time.monotonic()).
`python -m bench.bareposts URL REDIS_URL BODIES.json MESSAGES CONCURRENCY RATE`."""

import asyncio
import json
import sys
import time
from pathlib import Path

import redis
import uvloop

from newsletter.sending import bridge
from newsletter.sending.ratelimit import LoopBucket, TokenBucket, reserve_ahead
from newsletter.sending.session import LoopSession

HEADERS = {"Content-Type": "application/json", "Accept": "application/json", "X-Postmark-Server-Token": "bare"}
REQUEST_TIMEOUT_SECONDS = 30


async def post_all(url: str, tokens: LoopBucket, bodies: list[str], messages: int, concurrency: int) -> None:
    slots = asyncio.Semaphore(concurrency)
    async with LoopSession.client_for(concurrency) as client:
        session = LoopSession()
        session.client = client

        def post(body: str) -> None:
            bridge.wait_for(tokens.take())
            session.request("POST", f"{url}email", data=body, headers=HEADERS, timeout=REQUEST_TIMEOUT_SECONDS)

        async def one(i: int) -> None:
            async with slots:
                await bridge.run(post, bodies[i % len(bodies)])

        await asyncio.gather(*(one(i) for i in range(messages)))
    await tokens.close()


async def main(url: str, redis_url: str, bodies: list[str], messages: int, concurrency: int, rate: float) -> None:
    bucket = TokenBucket(redis.Redis.from_url(redis_url), "bench-bare", rate, ahead=reserve_ahead(rate))
    started = time.monotonic()
    await post_all(url, LoopBucket(bucket, redis_url), bodies, messages, concurrency)
    print(started, time.monotonic())  # the posting's own span, on the clock the other processes share


if __name__ == "__main__":
    url, redis_url, bodies_file = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    messages, concurrency, rate = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    uvloop.run(main(url, redis_url, json.loads(bodies_file.read_text()), messages, concurrency, rate))
