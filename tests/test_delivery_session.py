"""The paths through which provider backends send (newsletter.sending.session): DirectSession, the lighter way
through requests, and LoopSession, the same from an event loop (newsletter.sending.bridge). Each puts the same
bytes on the wire as requests' own session, raises the same errors, honours the environment's proxy, and sends
anything it does not handle itself the full way."""

import asyncio
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiohttp
import pytest
import requests
import trustme
import uvloop
from anymail.exceptions import AnymailAPIError, AnymailRequestsAPIError
from django.core import mail

from newsletter.sending import bridge, failures
from newsletter.sending.session import DirectSession, LoopSession
from tests.fake_provider import FakeProvider

ANSWER = {
    "To": "reader@example.com",
    "SubmittedAt": "2026-12-06T10:00:00Z",
    "MessageID": "m-1",
    "ErrorCode": 0,
    "Message": "OK",
}
SLOW_PATH = "/slow"  # answers after the client's timeout


class Recorder(BaseHTTPRequestHandler):
    """Keeps each request's line, headers and body; answers as Postmark does."""

    seen: list[tuple[str, dict[str, str], bytes]]
    stop: threading.Event

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append((self.requestline, dict(self.headers.items()), body))
        if self.path == SLOW_PATH:
            self.stop.wait(5)
            return
        answer = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder():
    handler = type("Handler", (Recorder,), {"seen": [], "stop": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    handler.stop.set()
    server.shutdown()
    server.server_close()


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


def postmark_send(settings, url: str, direct: bool, **loop_session: object) -> mail.EmailMessage:
    """One anymail Postmark send: through requests' own session, a DirectSession, or (given its `client`) a
    LoopSession."""
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "token", "POSTMARK_API_URL": url}
    connection = mail.get_connection()
    connection.open()
    if loop_session:
        LoopSession.taking_over(connection, **loop_session)
        assert isinstance(connection.session, LoopSession)
    elif direct:
        DirectSession.taking_over(connection)
        assert isinstance(connection.session, DirectSession)
    message = mail.EmailMultiAlternatives("Today: 3 papers", "text", "digest@example.com", ["reader@example.com"])
    message.attach_alternative("<p>html</p>", "text/html")
    message.connection = connection
    try:
        message.send()
    finally:
        connection.close()
    return message


def on_loop(function, *args):
    """Run `function(client, *args)` as LoopWire runs a send: in a greenlet on an event loop, with that loop's
    aiohttp client."""

    async def main():
        async with aiohttp.ClientSession() as client:
            return await bridge.run(function, client, *args)

    return uvloop.run(main())


def loop_send(settings, url: str) -> mail.EmailMessage:
    return on_loop(lambda client: postmark_send(settings, url, direct=True, client=client))


def test_a_send_puts_the_same_request_on_the_wire_as_requests_own_session(settings, recorder, monkeypatch):
    server, handler = recorder
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    full = postmark_send(settings, url_of(server), direct=False)
    light = postmark_send(settings, url_of(server), direct=True)
    (line_full, headers_full, body_full), (line_light, headers_light, body_light) = handler.seen
    assert line_light == line_full == "POST /email HTTP/1.1"
    assert headers_light == headers_full
    assert body_light == body_full and json.loads(body_light)["To"] == "reader@example.com"
    # anymail reads the answer the same way: the provider's id for the message.
    assert light.anymail_status.message_id == full.anymail_status.message_id == "m-1"


def test_what_it_does_not_handle_goes_the_full_way(recorder):
    server, handler = recorder
    session, called = DirectSession(), []
    session.hooks["response"].append(lambda response, **kwargs: called.append(response.status_code))  # anymail's dump
    session.request("POST", f"{url_of(server)}email", data="{}", timeout=5)
    session.hooks["response"].clear()
    session.request("POST", f"{url_of(server)}email", files={"a": ("a.txt", b"attached")}, timeout=5)
    assert called == [200]  # the hook ran: the full path
    assert b"attached" in handler.seen[1][2]  # multipart, encoded by requests


def test_errors_are_requests_own_and_read_as_transient(settings):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nobody listens here once the socket closes
    with pytest.raises(AnymailRequestsAPIError) as refused:
        postmark_send(settings, f"http://127.0.0.1:{port}/", direct=True)
    assert isinstance(refused.value, requests.ConnectionError)
    assert failures.is_transient(refused.value) and failures.breaks_connection(refused.value)


def test_a_timeout_is_requests_read_timeout(recorder):
    server, _ = recorder
    with pytest.raises(requests.ReadTimeout):
        DirectSession().request("POST", f"{url_of(server)}{SLOW_PATH.lstrip('/')}", data="{}", timeout=0.3)


def test_the_environment_proxy_is_honoured(recorder, monkeypatch):
    server, handler = recorder
    monkeypatch.setenv("HTTP_PROXY", url_of(server))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = DirectSession()
    session.request("POST", "http://provider.invalid/email", data="{}", timeout=5)
    assert handler.seen[0][0] == "POST http://provider.invalid/email HTTP/1.1"  # the proxy got it, not the host


# --- LoopSession: the same from an event loop ---------------------------------------------------------------


def test_a_send_from_the_loop_puts_the_same_request_on_the_wire_as_requests_session(settings, recorder, monkeypatch):
    server, handler = recorder
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    full = postmark_send(settings, url_of(server), direct=False)
    looped = loop_send(settings, url_of(server))
    (line_full, headers_full, body_full), (line_loop, headers_loop, body_loop) = handler.seen
    assert line_loop == line_full == "POST /email HTTP/1.1"
    assert headers_loop == headers_full
    assert body_loop == body_full
    assert looped.anymail_status.message_id == full.anymail_status.message_id == "m-1"


def test_from_the_loop_a_refused_connection_is_requests_own_error_and_transient(settings):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(AnymailRequestsAPIError) as refused:
        loop_send(settings, f"http://127.0.0.1:{port}/")
    assert isinstance(refused.value, requests.ConnectionError)
    assert failures.is_transient(refused.value) and failures.breaks_connection(refused.value)


def test_from_the_loop_a_timeout_is_requests_read_timeout(recorder):
    server, _ = recorder

    def slow(client):
        session = LoopSession()
        session.client = client
        session.request("POST", f"{url_of(server)}{SLOW_PATH.lstrip('/')}", data="{}", timeout=0.3)

    with pytest.raises(requests.ReadTimeout):
        on_loop(slow)


def test_from_the_loop_a_429s_status_and_retry_after_reach_the_failure_rules(settings):
    provider = FakeProvider().start()
    provider.faults.plan["429"], provider.faults.every = 1, 1
    try:
        with pytest.raises(AnymailAPIError) as throttled:
            loop_send(settings, provider.url)
    finally:
        provider.stop()
    assert throttled.value.status_code == 429 and failures.throttled(throttled.value)
    assert failures.retry_after(throttled.value) == 1.0  # the provider's Retry-After header, read as requests would


def test_from_the_loop_a_proxy_and_hooks_go_through_requests_in_a_thread(recorder, monkeypatch):
    server, handler = recorder
    monkeypatch.setenv("HTTP_PROXY", url_of(server))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    called = []

    def both(client):
        session = LoopSession()
        session.client = client
        session.request("POST", "http://provider.invalid/email", data="{}", timeout=5)
        session.hooks["response"].append(lambda response, **kwargs: called.append(threading.current_thread().name))
        session.request("POST", "http://provider.invalid/email", data="{}", timeout=5)

    on_loop(both)
    assert [line for line, _, _ in handler.seen] == ["POST http://provider.invalid/email HTTP/1.1"] * 2
    assert called and called[0] != threading.current_thread().name  # requests ran in the loop's executor


def test_from_the_loop_tls_is_verified_as_requests_verifies_it(recorder, tmp_path, monkeypatch):
    server, handler = recorder
    authority = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(tls)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    url = f"https://127.0.0.1:{server.server_address[1]}/email"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)

    def post(client):
        session = LoopSession()
        session.client = client
        return session.request("POST", url, data="{}", timeout=5).status_code

    # A certificate from an authority requests does not trust (certifi's bundle): refused, as requests refuses it.
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(url, data="{}", timeout=5)
    with pytest.raises(requests.exceptions.SSLError):
        on_loop(post)
    # The environment's CA bundle, as requests reads it: trusted.
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    assert requests.post(url, data="{}", timeout=5).status_code == on_loop(post) == 200
    assert len(handler.seen) == 2


def test_a_loop_session_outside_the_bridge_sends_as_a_direct_session(recorder):
    server, handler = recorder
    session = LoopSession()
    assert session.request("POST", f"{url_of(server)}email", data="{}", timeout=5).json()["MessageID"] == "m-1"
    assert handler.seen[0][0] == "POST /email HTTP/1.1"


# --- the bridge itself ---------------------------------------------------------------------------------------


def test_the_bridge_returns_what_the_call_returns_and_raises_awaited_errors_inside_it():
    async def fails():
        raise LookupError("awaited")

    def call(client, x):
        assert bridge.inside()
        try:
            bridge.wait_for(fails())
        except LookupError as exc:  # raised here, in the synchronous code, where the caller can handle it
            caught = str(exc)
        return x * 2, caught, bridge.wait_for(asyncio.sleep(0, result="slept"))

    assert on_loop(call, 21) == (42, "awaited", "slept")


def test_an_error_the_call_does_not_handle_leaves_the_bridge_and_waiting_outside_it_is_refused():
    def call(client):
        bridge.wait_for(asyncio.sleep(0))
        raise KeyError("not handled")

    with pytest.raises(KeyError):
        on_loop(call)
    assert not bridge.inside()
    with pytest.raises(RuntimeError, match="only for code run by"):
        bridge.wait_for(asyncio.sleep(0))
