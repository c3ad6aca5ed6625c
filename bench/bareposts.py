"""The bench's bare loop (bench/bench_provider.py): prebuilt request bodies posted to the fake provider by
`concurrency` threads, each post after a token from the same kind of Redis bucket the workers use, through the
same HTTP path (newsletter.sending.session.DirectSession); nothing rendered, nothing recorded.
`python -m bench.bareposts URL REDIS_URL BODIES.json MESSAGES CONCURRENCY RATE`."""

import json
import sys
import threading
from pathlib import Path

import redis

from newsletter.sending.ratelimit import TokenBucket, reserve_ahead
from newsletter.sending.session import DirectSession

HEADERS = {"Content-Type": "application/json", "Accept": "application/json", "X-Postmark-Server-Token": "bare"}
REQUEST_TIMEOUT_SECONDS = 30


def post_all(url: str, bucket: TokenBucket, bodies: list[str], messages: int, concurrency: int) -> None:
    turns = iter(range(messages))
    lock = threading.Lock()

    def post() -> None:
        session = DirectSession()
        while True:
            with lock:
                i = next(turns, None)
            if i is None:
                return
            bucket.take()
            body = bodies[i % len(bodies)]
            session.request("POST", f"{url}email", data=body, headers=HEADERS, timeout=REQUEST_TIMEOUT_SECONDS)

    threads = [threading.Thread(target=post) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    url, redis_url, bodies_file = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    messages, concurrency, rate = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    bucket = TokenBucket(redis.Redis.from_url(redis_url), "bench-bare", rate, ahead=reserve_ahead(rate))
    post_all(url, bucket, json.loads(bodies_file.read_text()), messages, concurrency)
