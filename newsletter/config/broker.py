"""kombu's Redis transport, with one publishing client per channel.

kombu builds a new redis.Redis for every message it publishes (`Channel.conn_or_acquire`), and redis-py fills a
table of ~200 response callbacks each time: a quarter of the CPU that queueing a task costs a web request (a
sign-up queues its confirmation email). The clients all draw on the channel's one connection pool and are
thread-safe, so one per channel does the same work. Selected by CELERY_BROKER_TRANSPORT when REDIS_URL is set.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    @cached_property
    def _shared_client(self) -> redis.Redis:
        return self._create_client()

    @contextmanager
    def conn_or_acquire(self, client: redis.Redis | None = None) -> Iterator[redis.Redis]:
        yield client or self._shared_client


class Transport(kombu_redis.Transport):
    Channel = Channel
