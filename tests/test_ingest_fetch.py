"""The live client against a real loopback HTTP server: User-Agent, retries with backoff, conditional GET,
timeouts, the 10 MB cap, and the shared per-host clock (arXiv's one request every 3 seconds)."""

import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.utils import timezone

from papers import fetch
from papers.ingest import fetch_and_ingest
from papers.models import FetchRun, HostClock, Paper
from papers.sources import SourceError
from tests.conftest import fixture_path

LISTING = fixture_path("arxiv_rss2_combined_4items.xml").read_bytes()
HANG = "hang"  # a response that never comes


class Loopback:
    """A threaded HTTP/1.0 server on 127.0.0.1 answering from a queue of (status, headers, body) or HANG; it
    records each request's path and headers."""

    def __init__(self) -> None:
        self.responses: deque = deque()
        self.requests: list[tuple[str, dict]] = []
        self.release = threading.Event()
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                loopback.requests.append((self.path, dict(self.headers)))
                response = loopback.responses.popleft() if loopback.responses else (200, {}, LISTING)
                if response == HANG:
                    loopback.release.wait(10)
                    return
                status, headers, body = response
                self.send_response(status)
                for name, value in headers.items():
                    if value is not None:  # None: leave the header out
                        self.send_header(name, value)
                if "Content-Length" not in headers and body is not None:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/rss/cs.LG") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    loopback = Loopback()
    yield loopback
    loopback.close()


@pytest.fixture
def slept(monkeypatch) -> list[float]:
    """Waits the client asked for, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(fetch, "sleep", waits.append)
    return waits


@pytest.fixture(autouse=True)
def _no_host_limits(settings):
    settings.FETCH_MIN_INTERVALS = {}
    settings.FETCH_RETRIES = 3


@pytest.mark.django_db
def test_sends_the_descriptive_user_agent_and_returns_the_body(server, settings, slept):
    settings.FETCH_USER_AGENT = "daily-papers-digest/1.0 (+https://papers.example.org; mailto:ops@example.org)"
    got = fetch.http_get(server.url())
    assert got.body == LISTING
    assert server.requests[0][1]["User-Agent"] == settings.FETCH_USER_AGENT
    assert slept == []


@pytest.mark.django_db
def test_retries_429_and_503_with_backoff_honouring_retry_after(server, slept):
    server.responses.extend([(429, {"Retry-After": "7"}, b"slow down"), (503, {}, b"down"), (200, {}, LISTING)])
    assert fetch.http_get(server.url()).body == LISTING
    assert len(server.requests) == 3
    assert 7 <= slept[0] < 7 + fetch.BACKOFF_JITTER_SECONDS  # the server's Retry-After
    assert 4 <= slept[1] < 4 + fetch.BACKOFF_JITTER_SECONDS  # second retry: 2 s × 2


@pytest.mark.django_db
def test_gives_up_after_the_configured_retries_with_one_clear_line(server, settings, slept):
    settings.FETCH_RETRIES = 2
    server.responses.extend([(502, {}, b"")] * 3)
    with pytest.raises(SourceError, match=r"HTTP 502 \(gave up after 3 attempts\)"):
        fetch.http_get(server.url())
    assert len(server.requests) == 3 and len(slept) == 2


@pytest.mark.django_db
def test_a_client_error_is_not_retried(server, slept):
    server.responses.append((404, {}, b"no such listing"))
    with pytest.raises(SourceError, match="HTTP 404"):
        fetch.http_get(server.url())
    assert len(server.requests) == 1 and slept == []


@pytest.mark.django_db
def test_a_retry_after_beyond_reason_ends_the_run_instead_of_waiting(server, slept):
    server.responses.append((429, {"Retry-After": "3600"}, b""))
    with pytest.raises(SourceError, match=r"HTTP 429 \(gave up after 1 attempt\)"):
        fetch.http_get(server.url())
    assert slept == []


@pytest.mark.django_db
def test_timeouts_are_retried_then_reported(server, settings, slept):
    settings.FETCH_TIMEOUT_SECONDS = 0.2
    settings.FETCH_RETRIES = 1
    server.responses.extend([HANG, HANG])
    with pytest.raises(SourceError, match=r"no answer within 0.2 s \(gave up after 2 attempts\)"):
        fetch.http_get(server.url())
    assert len(slept) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("declared", [True, False])
def test_a_response_over_10_mb_is_refused(server, slept, declared):
    body = b"<rss>" + b" " * fetch.MAX_RESPONSE_BYTES + b"</rss>"
    # Without Content-Length the body runs until the connection closes: the cap must hold while streaming.
    server.responses.append((200, {} if declared else {"Content-Length": None}, body))
    with pytest.raises(SourceError, match="larger than 10 MB"):
        fetch.http_get(server.url())


@pytest.mark.django_db
def test_conditional_get_304_means_no_reparse(server, slept):
    validators = {"ETag": '"listing-1"', "Last-Modified": "Thu, 24 Sep 2026 04:00:00 GMT"}
    server.responses.append((200, validators, LISTING))
    spec = f"feed:{server.url()}"
    first = fetch_and_ingest(spec)
    assert (first.status, first.created) == ("ok", 4)
    Paper.objects.filter(canonical_id="2609.26811").update(title="Edited here")  # a re-read would undo this
    server.responses.append((304, {}, None))
    second = fetch_and_ingest(spec)
    headers = server.requests[1][1]
    assert headers["If-None-Match"] == '"listing-1"'
    assert headers["If-Modified-Since"] == "Thu, 24 Sep 2026 04:00:00 GMT"
    assert (second.status, second.fetched, second.created, second.updated) == ("unchanged", 4, 0, 0)
    assert Paper.objects.get(canonical_id="2609.26811").title == "Edited here"
    server.responses.append((200, validators, LISTING))
    forced = fetch_and_ingest(spec, force=True)  # an operator's --force asks unconditionally and reads it all
    assert "If-None-Match" not in server.requests[2][1]
    assert (forced.status, forced.updated) == ("ok", 1)


@pytest.mark.django_db
def test_after_papers_were_deleted_the_next_fetch_is_unconditional_and_restores_them(server, slept):
    server.responses.append((200, {"ETag": '"listing-1"'}, LISTING))
    spec = f"feed:{server.url()}"
    fetch_and_ingest(spec)
    Paper.objects.filter(canonical_id="2609.26811").delete()
    run = fetch_and_ingest(spec)
    assert "If-None-Match" not in server.requests[1][1]
    assert (run.status, run.created) == ("ok", 1)


@pytest.mark.django_db
def test_same_bytes_from_a_server_without_validators_are_not_parsed_again(server, slept):
    spec = f"feed:{server.url()}"
    assert fetch_and_ingest(spec).created == 4
    again = fetch_and_ingest(spec)
    assert again.status == FetchRun.Status.UNCHANGED
    changed = LISTING.replace(b"Random Polytope Descriptors", b"Random Polytope Descriptors, revised")
    server.responses.append((200, {}, changed))
    assert fetch_and_ingest(spec).updated == 1


@pytest.mark.django_db
def test_live_hf_fetch_asks_for_the_day_and_ingests(server, slept, monkeypatch):
    from papers.sources import hf

    monkeypatch.setattr(hf, "HF_API_URL", server.url("/api/daily_papers"))
    server.responses.append((200, {}, fixture_path("hf_daily_papers_5items.json").read_bytes()))
    run = fetch_and_ingest("hf", day=datetime(2026, 7, 31, tzinfo=UTC).date())
    assert server.requests[0][0] == "/api/daily_papers?date=2026-07-31"
    assert (run.status, run.created) == ("ok", 5)


@pytest.mark.django_db
def test_fetch_source_task_fetches_the_spec_it_is_given(server, slept):
    from papers.tasks import fetch_source

    run_id = fetch_source.delay(f"feed:{server.url()}").get()
    run = FetchRun.objects.get(pk=run_id)
    assert (run.source, run.status, run.created) == (f"feed:{server.url()}", "ok", 4)
    assert Paper.objects.count() == 4


@pytest.mark.django_db
def test_a_server_error_page_instead_of_a_feed_fails_the_run(server, slept):
    server.responses.append((200, {"Content-Type": "text/html"}, b"<html><body>Maintenance</body></html>"))
    with pytest.raises(SourceError, match="not a feed"):
        fetch_and_ingest(f"feed:{server.url()}")
    assert FetchRun.objects.get().status == FetchRun.Status.FAILED


@pytest.mark.django_db
def test_requests_to_a_rate_limited_host_are_three_seconds_apart(server, settings, monkeypatch):
    settings.FETCH_MIN_INTERVALS = {"127.0.0.1": 3.0}
    waits: list[float] = []
    with time_machine.travel(datetime(2026, 11, 27, 4, 30, tzinfo=UTC), tick=False) as traveller:

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            traveller.shift(seconds)

        monkeypatch.setattr(fetch, "sleep", sleep)
        fetch.http_get(server.url())
        fetch.http_get(server.url())
        traveller.shift(10)  # a quiet spell: the next request need not wait
        fetch.http_get(server.url())
        # Another process has just taken the next slot: we wait for the one after it.
        HostClock.objects.filter(host="127.0.0.1").update(next_request_at=timezone.now() + timedelta(seconds=2))
        fetch.http_get(server.url())
    assert waits == [3.0, 2.0]
    assert len(server.requests) == 4


@pytest.mark.django_db
def test_retries_to_a_rate_limited_host_also_keep_the_interval(server, settings, monkeypatch):
    settings.FETCH_MIN_INTERVALS = {"127.0.0.1": 3.0}
    server.responses.append((503, {}, b""))
    monkeypatch.setattr(fetch, "BACKOFF_BASE_SECONDS", 0.5)
    monkeypatch.setattr(fetch, "BACKOFF_JITTER_SECONDS", 0.0)
    waits: list[float] = []
    with time_machine.travel(datetime(2026, 11, 27, 4, 30, tzinfo=UTC), tick=False) as traveller:
        monkeypatch.setattr(fetch, "sleep", lambda seconds: (waits.append(seconds), traveller.shift(seconds)))
        fetch.http_get(server.url())
    assert waits == [0.5, 2.5]  # the backoff, then the rest of the 3-second slot


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_get_consecutive_slots(postgres, settings, monkeypatch):
    settings.FETCH_MIN_INTERVALS = {"arxiv.org": 3.0}
    waits: list[float] = []
    monkeypatch.setattr(fetch, "sleep", waits.append)
    barrier = threading.Barrier(3)

    def worker() -> None:
        from django.db import connection

        barrier.wait()
        try:
            fetch.wait_turn("https://rss.arxiv.org/rss/cs.LG")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(waits) == 2  # the first worker goes at once
    assert [round(w) for w in sorted(waits)] == [3, 6]
