"""Fixed-window counters in Django's cache (Redis in production, so every web process shares them)."""

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

KEY_PREFIX = "ratelimit"


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or with RATELIMIT_TRUSTED_PROXIES = n, the address the n-th proxy
    from our side saw in X-Forwarded-For (entries further left are whatever the client chose to send)."""
    proxies = settings.RATELIMIT_TRUSTED_PROXIES
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def hit(scope: str, key: str, limit: int, window_seconds: int) -> bool:
    """Count one event for (scope, key) in the current window. True while the count stays within `limit`."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # keys stay short and hold no address in clear
    cache_key = f"{KEY_PREFIX}:{scope}:{digest}"
    cache.add(cache_key, 0, timeout=window_seconds)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr: this is the first hit of a new window
        cache.add(cache_key, 1, timeout=window_seconds)
        count = 1
    return count <= limit
