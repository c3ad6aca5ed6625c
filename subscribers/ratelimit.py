"""Fixed-window counters in Django's cache (Redis in production, so every web process shares them)."""

import functools
import hashlib
import re

import redis
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest

KEY_PREFIX = "ratelimit"
CACHE_ALIAS = "default"


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or with RATELIMIT_TRUSTED_PROXIES = n, the address the n-th proxy
    from our side saw in X-Forwarded-For (entries further left are whatever the client chose to send)."""
    proxies = settings.RATELIMIT_TRUSTED_PROXIES
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def _counter_key(scope: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # keys stay short and hold no address in clear
    return f"{KEY_PREFIX}:{scope}:{digest}"


def hit_all(counters: list[tuple[str, str, int]], window_seconds: int) -> bool:
    """Count one event on each (scope, key, limit) counter in the current window; True while every count stays
    within its limit. Every counter is counted, even past the first one over its limit."""
    keys = [_counter_key(scope, key) for scope, key, _ in counters]
    backend = caches[CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        counts = _redis_counts(backend, keys, window_seconds)
    else:
        counts = [_cache_count(backend, key, window_seconds) for key in keys]
    return all(count <= limit for count, (_, _, limit) in zip(counts, counters, strict=True))


def write_server(location: str | list[str]) -> str:
    """The server Django's RedisCache writes to: the first of its LOCATION (a list, or a string split at , or ;)."""
    servers = re.split("[;,]", location) if isinstance(location, str) else location
    return servers[0]


@functools.lru_cache(maxsize=8)
def redis_client(url: str) -> redis.Redis:
    """Our own client for the cache's server, one per URL: Django's cache builds a new client object for every
    call, and redis-py fills a table of ~200 response callbacks each time (clients are thread-safe)."""
    return redis.Redis.from_url(url)


def _redis_counts(backend: RedisCache, keys: list[str], window_seconds: int) -> list[int]:
    # One round trip for every counter (Django's add + incr would take three each): start the window unless
    # it is running, then count. Keys as the cache makes them, on the server it writes to.
    pipe = redis_client(write_server(settings.CACHES[CACHE_ALIAS]["LOCATION"])).pipeline(transaction=False)
    for key in keys:
        full_key = backend.make_and_validate_key(key)
        pipe.set(full_key, 0, ex=window_seconds, nx=True)
        pipe.incr(full_key)
    return pipe.execute()[1::2]


def _cache_count(backend: BaseCache, key: str, window_seconds: int) -> int:
    backend.add(key, 0, window_seconds)
    try:
        return backend.incr(key)
    except ValueError:  # expired between add and incr: this is the first hit of a new window
        backend.add(key, 1, window_seconds)
        return 1
