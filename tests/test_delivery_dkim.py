"""DKIM for the mail we send over SMTP ourselves: the bytes a real SMTP server received, verified with dkimpy
against the public key (handed to it through its DNS lookup hook: no network), the bulk-sender headers inside
the signature, and nothing signed when no key is set."""

import base64
import re
from pathlib import Path

import dkim
import pytest
from django.core.exceptions import ImproperlyConfigured

from newsletter import pipeline
from tests import smtp_sink
from tests.delivery_support import digest_fixture, readers  # noqa: F401 - fixtures
from tests.helpers import manage

KEYS = Path(__file__).resolve().parent / "fixtures" / "dkim"
SELECTOR, DOMAIN = "digest2026", "papers.example.org"
PEM_BODY = re.compile(rb"-----[A-Z ]+-----")


def dns_record(public_pem: Path):
    """dkimpy's lookup hook answering our selector's TXT record, as DNS would, and nothing else."""
    key = base64.b64encode(base64.b64decode(PEM_BODY.sub(b"", public_pem.read_bytes())))

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return b"v=DKIM1; k=rsa; p=" + key if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return lookup


@pytest.fixture
def sink(settings):
    controller, handler, port = smtp_sink.start(keep=True, pipelining=True)
    settings.EMAIL_BACKEND = "newsletter.mail.SMTPBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 10
    yield handler
    controller.stop()


@pytest.fixture
def signing_key(settings):
    settings.DKIM_PRIVATE_KEY_PATH = str(KEYS / "test-private.pem")
    settings.DKIM_SELECTOR, settings.DKIM_DOMAIN = SELECTOR, DOMAIN
    settings.DIGEST_FROM_EMAIL = f"Daily Papers <digest@{DOMAIN}>"


def received(sink) -> list[bytes]:
    return [content for _, _, content in sink.kept]


def test_every_message_is_signed_and_verifies_against_the_public_key(digest, sink, signing_key):
    readers(3)
    assert pipeline.send(digest).sent == 3
    messages = received(sink)
    assert len(messages) == 3
    lookup = dns_record(KEYS / "test-public.pem")
    for message in messages:
        assert message.startswith(b"DKIM-Signature: ")
        assert dkim.verify(message, dnsfunc=lookup)
        assert f"d={DOMAIN}".encode() in message and f"s={SELECTOR}".encode() in message


def test_the_bulk_sender_headers_are_inside_the_signature(digest, sink, signing_key):
    readers(1)
    pipeline.send(digest)
    (message,) = received(sink)
    head = message.split(b"\r\n\r\n")[0].decode()
    signature = re.search(r"^DKIM-Signature: (.*?)\r\n(?=\S)", head, re.MULTILINE | re.DOTALL)[1]
    tags = dict(tag.strip().split("=", 1) for tag in re.sub(r"\s+", "", signature).split(";") if tag)
    signed = {name.lower() for name in tags["h"].split(":")}
    wanted = {"from", "subject", "date", "message-id", "list-id", "list-unsubscribe", "list-unsubscribe-post"}
    assert wanted <= signed
    assert all(re.search(rf"^{name}:", head, re.IGNORECASE | re.MULTILINE) for name in wanted)  # and present


def test_a_changed_header_or_the_wrong_key_fails_verification(digest, sink, signing_key):
    readers(1)
    pipeline.send(digest)
    (message,) = received(sink)
    tampered = re.sub(rb"List-Unsubscribe-Post: [^\r]*", b"List-Unsubscribe-Post: List-Unsubscribe=Nope", message)
    assert tampered != message
    assert not dkim.verify(tampered, dnsfunc=dns_record(KEYS / "test-public.pem"))
    assert not dkim.verify(message, dnsfunc=dns_record(KEYS / "other-public.pem"))


def test_without_a_key_nothing_is_signed(digest, sink):
    readers(1)
    pipeline.send(digest)
    (message,) = received(sink)
    assert b"DKIM-Signature" not in message


def test_a_key_without_a_selector_stops_the_settings():
    result = manage("check", DKIM_PRIVATE_KEY_PATH=str(KEYS / "test-private.pem"))
    assert result.returncode != 0 and "DKIM_SELECTOR" in result.stderr
    assert ImproperlyConfigured.__name__ in result.stderr
