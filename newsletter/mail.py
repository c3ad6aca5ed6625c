"""Mail backends that send our prebuilt message bytes (newsletter.mime): the embedded .eml outbox, and
Django's SMTP backend with the same direct path. Providers' APIs go through django-anymail unchanged."""

import re
import smtplib
import uuid
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend
from django.core.mail.message import sanitize_address

from newsletter.mime import wire_bytes


class OutboxBackend(BaseEmailBackend):
    """Writes `<uuid>.eml`; the write is atomic (temp file + rename), so a reader never sees half a
    message and a crash leaves no partial file."""

    def __init__(self, fail_silently: bool = False, outbox_dir: str | Path | None = None, **kwargs) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.outbox_dir = Path(outbox_dir or settings.OUTBOX_DIR)

    def send_messages(self, email_messages: list[EmailMessage]) -> int:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            try:
                self.write(message)
            except OSError:
                if not self.fail_silently:
                    raise
                continue
            sent += 1
        return sent

    def write(self, message: EmailMessage) -> None:
        name = f"{uuid.uuid4().hex}.eml"
        tmp = self.outbox_dir / f".{name}.tmp"
        tmp.write_bytes(wire_bytes(message))
        tmp.rename(self.outbox_dir / name)


# A bare ASCII address needs none of sanitize_address's parsing (names, encodings, IDN): ours are stored
# so (subscribers.addresses keeps domains in punycode), and parsing them cost as much as building a message.
BARE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


@lru_cache(maxsize=64)
def _sanitized(address: str, encoding: str) -> str:
    return sanitize_address(address, encoding)


def envelope_address(address: str, encoding: str) -> str:
    """The address for MAIL FROM / RCPT TO, as Django's sanitize_address gives it."""
    if BARE_ADDRESS.fullmatch(address):
        return address
    return _sanitized(address, encoding)  # the sender, the same for every message: parsed once


class SMTPBackend(DjangoSMTPBackend):
    """Django's SMTP backend (same settings, connection handling and errors), sending our messages' bytes
    as written by newsletter.mime instead of through the email package's generator."""

    def _send(self, email_message: EmailMessage) -> bool:
        recipients = email_message.recipients()
        if not recipients:
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        envelope_from = envelope_address(email_message.from_email, encoding)
        envelope_to = [envelope_address(address, encoding) for address in recipients]
        data = wire_bytes(email_message)
        try:
            self.connection.sendmail(envelope_from, envelope_to, data)
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True
