"""The live HTTP client for sources: descriptive User-Agent, timeouts, bounded size."""

import httpx
from django.conf import settings

from papers.sources import SourceError

MAX_RESPONSE_BYTES = 10 * 1024 * 1024  # the largest listing arXiv serves is far below this


class NetworkUnavailable(SourceError):
    """The source could not be reached at all (no network, DNS failure, refused connection)."""


def http_get(url: str) -> bytes:
    headers = {"User-Agent": settings.FETCH_USER_AGENT}
    try:
        client = httpx.Client(timeout=settings.FETCH_TIMEOUT_SECONDS, follow_redirects=True, headers=headers)
        with client, client.stream("GET", url) as response:
            response.raise_for_status()
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise SourceError(f"{url}: response larger than {MAX_RESPONSE_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise NetworkUnavailable(f"{url}: unreachable ({exc})") from None
    except httpx.HTTPStatusError as exc:
        raise SourceError(f"{url}: HTTP {exc.response.status_code}") from None
    except httpx.HTTPError as exc:
        raise NetworkUnavailable(f"{url}: {exc}") from None
