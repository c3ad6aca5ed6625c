"""What a provider's error means for one reader's row: try again later (and when), give up, or give up and count
a permanent refusal of the address against it.

Transient errors (timeouts, refused or dropped connections, HTTP 429/5xx, SMTP 4xx) are retried for a window
measured in hours (DELIVERY_RETRY_WINDOW_HOURS), with exponential backoff and full jitter, each row at its
own time (`Delivery.next_attempt_at`): an outage of the provider delays mail, it does not use up a fixed
number of attempts. Permanent rejections fail the row at once; a refusal of the recipient at RCPT counts like
a hard bounce.
"""

import random
import smtplib
from datetime import datetime, timedelta

import redis
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.conf import settings

from newsletter.models import Delivery

# SMTP reply that closes the connection: the rest of the chunk must wait for a new one.
SMTP_SERVICE_UNAVAILABLE = 421
ERROR_TEXT_LIMIT = 1000
HTTP_TOO_MANY_REQUESTS = 429


def smtp_code(exc: BaseException) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return max((code for code, _ in exc.recipients.values()), default=None)
    return getattr(exc, "smtp_code", None)


def is_transient(exc: BaseException) -> bool:
    """Worth another try later: timeouts, dropped connections, HTTP 429/5xx, SMTP 4xx (421, 450, 451...)."""
    if isinstance(exc, AnymailRecipientsRefused):
        return False
    if isinstance(exc, AnymailAPIError):
        return exc.status_code is None or exc.status_code == HTTP_TOO_MANY_REQUESTS or exc.status_code >= 500
    code = smtp_code(exc)
    if code is not None:
        return 400 <= code < 500
    return isinstance(exc, OSError | TimeoutError | redis.RedisError)


def refuses_recipient(exc: BaseException) -> bool:
    """The receiving side refused this address for good: SMTP 5xx at RCPT TO, or the provider's rejection of
    the recipient. Not a refused sender or message (554 at DATA): those say nothing about the reader."""
    if isinstance(exc, AnymailRecipientsRefused):
        return True
    return isinstance(exc, smtplib.SMTPRecipientsRefused) and (smtp_code(exc) or 0) >= 500


def breaks_connection(exc: BaseException) -> bool:
    """A transient refusal of one recipient, or a provider's 429 (one request too early: the token bucket paces
    the next ones), leaves the connection usable; anything else ends the chunk."""
    if throttled(exc):
        return False
    return not (isinstance(exc, smtplib.SMTPRecipientsRefused) and smtp_code(exc) != SMTP_SERVICE_UNAVAILABLE)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_LIMIT]


def backoff(retries: int) -> float:
    """Seconds before the next try after `retries` earlier retries: exponential, capped, with full jitter so
    that rows (and workers) refused together do not come back in step."""
    ceiling = min(settings.DELIVERY_RETRY_MAX_SECONDS, settings.DELIVERY_RETRY_BASE_SECONDS * 2**retries)
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


def retry_after(exc: BaseException | None) -> float:
    """The seconds a provider's 429 or 503 asked us to wait (its Retry-After, in seconds), else 0."""
    response = getattr(exc, "response", None)
    value = getattr(response, "headers", {}).get("Retry-After", "") if response is not None else ""
    try:
        return max(0.0, float(value))
    except ValueError:  # an HTTP date, or nonsense: our own backoff decides
        return 0.0


def throttled(exc: BaseException | None) -> bool:
    """The provider's 429: we were too fast, it is not down."""
    return isinstance(exc, AnymailAPIError) and exc.status_code == HTTP_TOO_MANY_REQUESTS


def retry_later(row: Delivery, error: str, now: datetime, exc: BaseException | None = None) -> bool:
    """Queue the row for another try at its own time, or fail it once its retry window is over. Returns whether
    it will be tried again. A 429 with a Retry-After waits just that long (the provider says when it will take
    the message; backing off further would only slow the send below its quota); other errors back off, and
    never sooner than a Retry-After."""
    if row.retry_until is None:
        row.retry_until = now + timedelta(hours=settings.DELIVERY_RETRY_WINDOW_HOURS)
    if now >= row.retry_until:
        hours = settings.DELIVERY_RETRY_WINDOW_HOURS
        row.status, row.next_attempt_at = Delivery.Status.FAILED, None
        row.error = f"gave up after {hours:g} h of transient errors ({row.attempts} tries); the last: {error}"
        row.error = row.error[:ERROR_TEXT_LIMIT]
        return False
    asked = retry_after(exc)
    wait = timedelta(seconds=asked if asked and throttled(exc) else max(backoff(max(row.attempts - 1, 0)), asked))
    row.status, row.error = Delivery.Status.QUEUED, error
    row.next_attempt_at = min(now + wait, row.retry_until)
    return True
