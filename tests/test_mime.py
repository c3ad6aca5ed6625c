"""The directly written message bytes (newsletter.emails.mime) against Django's own message for the same email:
the same headers and parts once parsed, CRLF only, no line past 998 bytes, and the same refusals."""

import email
import smtplib
from email import policy
from email.utils import parseaddr

import pytest
from django.core.mail import BadHeaderError, get_connection

from newsletter.emails.mime import TemplatedEmail, wire_bytes
from tests import smtp_sink

HEADERS = ("Subject", "From", "To", "Message-ID", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post")
LONG_URL = "https://papers.example.org/unsubscribe/" + "A1b2C3d4" * 14 + "/"


def make(subject="Daily Papers, Nov 28: a paper", text="Hello\n", html="<p>Hello</p>\n", to="reader@example.com",
         from_email="Daily Papers <digest@example.org>", **headers) -> TemplatedEmail:  # fmt: skip
    message = TemplatedEmail(subject, text, from_email, [to], headers={"Message-ID": "<1.2@example.org>", **headers})
    message.attach_alternative(html, "text/html")
    return message


def parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


def assert_same_as_django(message: TemplatedEmail) -> bytes:
    ours, django = parsed(message.wire_bytes()), parsed(message.message().as_bytes(linesep="\r\n"))
    for name in HEADERS:
        assert str(ours[name] or "").strip() == str(django[name] or "").strip(), name
    assert ours.get_content_type() == "multipart/alternative"
    assert [(p.get_content_type(), p.get_content()) for p in ours.iter_parts()] == [
        (p.get_content_type(), p.get_content()) for p in django.iter_parts()
    ]
    return message.wire_bytes()


def assert_wire_clean(data: bytes) -> None:
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


CASES = {
    "ascii": {},
    "unicode subject": {"subject": "Daily Papers, Nov 28: Ψ-Diffusion — scaling ∑ attention to 10⁶ tokens 🚀"},
    "long ascii subject": {"subject": "Daily Papers, Nov 28: " + "a very long title that goes on " * 8},
    "unicode sender name": {"from_email": "Тётя Papers <digest@example.org>"},
    "idn recipient": {"to": "reader@bücher.example"},
    "unicode bodies": {"text": "Ünïcödé — αβγ\n" * 50, "html": "<p>Ünïcödé — αβγ</p>\n" * 50},
    "mixed line breaks": {"text": "one\rtwo\r\nthree\nfour", "html": "<p>a</p>\r<p>b</p>\r\n<p>c</p>"},
    "long unsubscribe link": {"List-Unsubscribe": f"<{LONG_URL}>", "List-Id": "Daily Papers <daily.example.org>"},
    "dot lines": {"text": ".\n..\n.hidden\n", "html": ".\n<p>.</p>\n"},
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_same_message_as_django(case):
    data = assert_same_as_django(make(**case))
    assert_wire_clean(data)
    assert b"Content-Transfer-Encoding: 8bit" in data


def test_header_injection_is_refused_as_django_does():
    for field in ({"subject": "Hi\r\nBcc: victim@example.com"}, {"List-Id": "x\nBcc: victim@example.com"}):
        with pytest.raises(BadHeaderError):
            make(**field).message()
        with pytest.raises(BadHeaderError):
            make(**field).wire_bytes()


def test_overlong_body_line_falls_back_to_quoted_printable():
    message = make(html="<p>" + "x" * 3000 + "</p>")
    data = assert_same_as_django(message)
    assert b"quoted-printable" in data
    assert_wire_clean(data)


def test_other_shapes_use_the_email_package():
    message = make()
    message.attach("notes.txt", "attached", "text/plain")
    assert b"notes.txt" in message.wire_bytes()
    plain = TemplatedEmail("s", "body", "a@example.org", ["b@example.org"])
    assert parsed(wire_bytes(plain)).get_content().strip() == "body"


def test_boundary_differs_per_message_and_is_not_in_the_body():
    first, second = make().wire_bytes(), make().wire_bytes()
    boundary = parsed(first).get_boundary()
    assert boundary and boundary != parsed(second).get_boundary()
    assert first.count(boundary.encode()) == 4  # in the header, before each part, and closing


@pytest.fixture(params=[False, True], ids=["one-command-at-a-time", "pipelining"])
def sink(request):
    """The sink, without and with PIPELINING on offer: every SMTP test runs both ways."""
    controller, handler, port = smtp_sink.start(keep=True, pipelining=request.param)
    yield handler, port
    controller.stop()


def test_smtp_backend_delivers_the_bytes(sink):
    handler, port = sink
    message = make(subject="Ψ paper", to="reader@bücher.example")
    assert get_connection("newsletter.mail.SMTPBackend", host="127.0.0.1", port=port).send_messages([message]) == 1
    ((_, envelope_to, content),) = handler.kept
    assert envelope_to == ["reader@xn--bcher-kva.example"]
    got = parsed(content)
    assert got["Subject"] == "Ψ paper"
    assert [p.get_content().replace("\r\n", "\n") for p in got.iter_parts()] == ["Hello\n", "<p>Hello</p>\n"]


def test_smtp_backend_raises_refusals(sink):
    handler, port = sink
    backend = get_connection("newsletter.mail.SMTPBackend", host="127.0.0.1", port=port)
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        backend.send_messages([make(to=f"{smtp_sink.REJECTED_PREFIX}someone@example.com")])
    assert handler.refused["550"] == 1


@pytest.mark.parametrize(
    ("to", "text"),
    [
        ("reader@example.com", "Hello\n"),  # our fast paths: bare address, nothing to dot-stuff
        ("reader@example.com", ".\n..\n.starts with a dot\n"),  # smtplib's dot-stuffing
        ("Ada Lovelace <ada@example.com>", "Hello\n"),  # smtplib's address parsing
        ("reader@bücher.example", ".leading dot\n"),
    ],
)
def test_smtp_client_paths_deliver_the_same_message(sink, to, text):
    handler, port = sink
    message = make(to=to, text=text, html=text.replace("\n", "<br>\n"), Date="Sat, 28 Nov 2026 09:00:00 -0000")
    assert get_connection("newsletter.mail.SMTPBackend", host="127.0.0.1", port=port).send_messages([message]) == 1
    ((_, envelope_to, content),) = handler.kept
    assert envelope_to == [parseaddr(to)[1].replace("bücher", "xn--bcher-kva")]
    expected = message.wire_bytes()
    same_boundary = content.replace(parsed(content).get_boundary().encode(), parsed(expected).get_boundary().encode())
    assert same_boundary.rstrip(b"\r\n") == expected.rstrip(b"\r\n")


def test_with_pipelining_a_message_takes_two_writes_instead_of_four(sink):
    handler, port = sink
    backend = get_connection("newsletter.mail.SMTPBackend", host="127.0.0.1", port=port)
    backend.open()
    writes = []
    send = backend.connection.send
    backend.connection.send = lambda data: (writes.append(data), send(data))[1]
    assert backend.send_messages([make(to="a@example.com"), make(to="b@example.com")]) == 2
    backend.close()
    per_message = [w for w in writes if not str(w).lower().startswith(("ehlo", "quit"))]
    assert len(per_message) == (4 if handler.pipelining else 8)
    assert handler.received == {"a@example.com": 1, "b@example.com": 1}


def test_after_a_refusal_the_same_session_delivers_the_next_message(sink):
    """Pipelined replies are read in full, refusals or not: the session stays in step."""
    handler, port = sink
    backend = get_connection("newsletter.mail.SMTPBackend", host="127.0.0.1", port=port)
    backend.open()
    session = backend.connection
    with pytest.raises(smtplib.SMTPSenderRefused):
        backend.send_messages([make(from_email=f"{smtp_sink.REJECTED_PREFIX}@example.org")])
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        backend.send_messages([make(to=f"{smtp_sink.REJECTED_PREFIX}@example.com")])
    assert backend.send_messages([make(to="reader@example.com")]) == 1
    assert backend.connection is session
    backend.close()
    assert handler.received == {"reader@example.com": 1}
    assert handler.refused == {"550 sender": 1, "550": 1}
