"""The live HTTP client for sources.

Polite: a descriptive User-Agent, conditional GET (ETag / Last-Modified), and per-host minimum intervals shared
by every process through the database (arXiv asks for at most one request every 3 seconds, across machines).
Patient: timeouts, and retries with exponential backoff and jitter on 429 and 5xx. Bounded: 10 MB at most.
"""

import random
import time
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from papers.models import HostClock
from papers.sources import SourceError

MAX_RESPONSE_BYTES = 10 * 1024 * 1024  # the largest listing arXiv serves is far below this
# Answers that mean "try again later": rate limited, or the server (or its gateway) is briefly down.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Waits between attempts: 2 s, 4 s, 8 s ... plus up to 1 s of jitter so that workers do not retry in step.
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_JITTER_SECONDS = 1.0
# A server asking us to come back later than this is treated as down for this run; the next run tries again.
MAX_RETRY_AFTER_SECONDS = 120.0

# Replaced in tests so that waiting moves frozen time instead of sleeping.
sleep = time.sleep


class NetworkUnavailable(SourceError):
    """The source could not be reached at all (no network, DNS failure, refused connection)."""


@dataclass
class Fetched:
    url: str
    body: bytes | None  # None: 304 Not Modified, the copy we ingested last time is still current
    etag: str = ""
    last_modified: str = ""


def http_get(url: str, etag: str = "", last_modified: str = "") -> Fetched:
    """GET one URL politely; with validators from an earlier response, a conditional GET."""
    headers = {"User-Agent": settings.FETCH_USER_AGENT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    attempts = settings.FETCH_RETRIES + 1
    problem = ""
    with httpx.Client(timeout=settings.FETCH_TIMEOUT_SECONDS, follow_redirects=True, headers=headers) as client:
        for attempt in range(attempts):
            wait_turn(url)
            retry_after = None
            try:
                with client.stream("GET", url) as response:
                    if response.status_code == httpx.codes.NOT_MODIFIED:
                        return Fetched(url, None, etag, last_modified)
                    if response.status_code in RETRY_STATUSES:
                        problem = f"HTTP {response.status_code}"
                        retry_after = _retry_after(response.headers.get("Retry-After"))
                    elif response.is_error:
                        raise SourceError(f"{url}: HTTP {response.status_code}")
                    else:
                        return Fetched(
                            url,
                            _read_bounded(url, response),
                            response.headers.get("ETag", ""),
                            response.headers.get("Last-Modified", ""),
                        )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise NetworkUnavailable(f"{url}: unreachable ({exc})") from None
            except httpx.TimeoutException:
                problem = f"no answer within {settings.FETCH_TIMEOUT_SECONDS:g} s"
            except httpx.TransportError as exc:
                problem = f"connection failed ({exc})"
            if retry_after is not None and retry_after > MAX_RETRY_AFTER_SECONDS:
                break
            if attempt + 1 < attempts:
                sleep(backoff_seconds(attempt, retry_after))
    tries = attempt + 1
    raise SourceError(f"{url}: {problem} (gave up after {tries} attempt{'s' if tries > 1 else ''})")


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """How long to wait before attempt number `attempt + 1`: the server's Retry-After when it gave one."""
    base = retry_after if retry_after is not None else BACKOFF_BASE_SECONDS * 2**attempt
    return base + random.uniform(0, BACKOFF_JITTER_SECONDS)  # noqa: S311 - jitter, not cryptography


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None


def _read_bounded(url: str, response: httpx.Response) -> bytes:
    too_big = SourceError(f"{url}: response larger than {MAX_RESPONSE_BYTES // (1024 * 1024)} MB, not read")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise too_big
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def polite_interval(url: str) -> tuple[str, float]:
    """The rate-limited host a URL belongs to and its minimum interval; ("", 0) for hosts without one."""
    host = (urlsplit(url).hostname or "").lower()
    for domain, seconds in settings.FETCH_MIN_INTERVALS.items():
        if host == domain or host.endswith("." + domain):
            return domain, float(seconds)
    return "", 0.0


def wait_turn(url: str) -> None:
    """Take the next free slot on the host's shared clock, then wait for it. The row lock makes two processes
    that ask at once get consecutive slots instead of the same one."""
    host, interval = polite_interval(url)
    if not interval:
        return
    with transaction.atomic():
        clock, _ = HostClock.objects.select_for_update().get_or_create(host=host)
        now = timezone.now()
        start = max(now, clock.next_request_at or now)
        clock.next_request_at = start + timedelta(seconds=interval)
        clock.save(update_fields=["next_request_at"])
    delay = (start - now).total_seconds()
    if delay > 0:
        sleep(delay)
