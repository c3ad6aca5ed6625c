"""The lighter path through requests that provider backends send with (newsletter.sending.session): the same bytes
on the wire as requests' own session, the same errors, the environment's proxy honoured, and anything it does
not handle itself sent the full way."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from anymail.exceptions import AnymailRequestsAPIError
from django.core import mail

from newsletter.sending import failures
from newsletter.sending.session import DirectSession

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


def postmark_send(settings, url: str, direct: bool) -> mail.EmailMessage:
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "token", "POSTMARK_API_URL": url}
    connection = mail.get_connection()
    connection.open()
    if direct:
        DirectSession.taking_over(connection)
        assert isinstance(connection.session, DirectSession)
    message = mail.EmailMultiAlternatives("Today: 3 papers", "text", "digest@example.com", ["reader@example.com"])
    message.attach_alternative("<p>html</p>", "text/html")
    message.connection = connection
    message.send()
    connection.close()
    return message


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
