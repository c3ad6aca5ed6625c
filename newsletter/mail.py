"""Mail backends that send our prebuilt message bytes (newsletter.emails.mime): the embedded .eml outbox, and
Django's SMTP backend with the same direct path. Providers' APIs go through django-anymail unchanged."""

import contextlib
import re
import smtplib
import threading
import uuid
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend

from newsletter.emails import signing
from newsletter.emails.header_values import envelope_address as parsed_envelope_address
from newsletter.emails.mime import wire_bytes


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


SMTP_START_MAIL_INPUT = 354  # the reply to DATA that asks for the message
SMTP_CLOSING = 421  # service not available: the server closes the session
SMTP_OK = 250
SMTP_WILL_FORWARD = 251  # a recipient accepted for forwarding
# A bare ASCII address needs no parsing (names, encodings, IDN): ours are stored so (subscribers.addresses keeps
# domains in punycode), and parsing them cost as much as building a message.
BARE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


def envelope_address(address: str, encoding: str) -> str:
    """The address for MAIL FROM / RCPT TO: no display name (smtplib would strip it every time), IDNA domain."""
    if BARE_ADDRESS.fullmatch(address):
        return address
    return _parsed_once(address, encoding)  # the sender, the same for every message: parsed once


_parsed_once = lru_cache(maxsize=64)(parsed_envelope_address)


def _reset(client: smtplib.SMTP) -> None:
    """RSET after a refusal, so the session can carry the next message; a server that has hung up already
    has nothing to reset (what smtplib.sendmail does on a refusal)."""
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        client.rset()


def _sent_as_is(msg: bytes | str) -> bool:
    """Bytes with no line starting with ".": RFC 5321 4.5.2's dot-stuffing would change nothing."""
    return isinstance(msg, bytes) and not msg.startswith(b".") and b"\n." not in msg


def _with_end_of_data(msg: bytes) -> bytes:
    """The message as DATA sends it: ended by a line holding a single "."."""
    return msg + (b".\r\n" if msg.endswith(b"\r\n") else b"\r\n.\r\n")


def _asks_smtputf8(options: tuple | list) -> bool:
    return any(option.lower() == "smtputf8" for option in options)


class FastPathClient:
    """smtplib's client with quicker paths for what our sends are made of: bare ASCII addresses go out without
    email.utils.parseaddr, and a message with no line starting with "." skips the dot-stuffing regex over
    its whole body (RFC 5321 4.5.2 changes nothing then). Everything else takes smtplib's own code."""

    def mail(self, sender: str, options: tuple = ()) -> tuple[int, bytes]:
        if not BARE_ADDRESS.fullmatch(sender) or _asks_smtputf8(options):
            return super().mail(sender, options)
        self.putcmd("mail", f"FROM:<{sender}>{_options(self, options)}")
        return self.getreply()

    def rcpt(self, recipient: str, options: tuple = ()) -> tuple[int, bytes]:
        if not BARE_ADDRESS.fullmatch(recipient):
            return super().rcpt(recipient, options)
        self.putcmd("rcpt", f"TO:<{recipient}>{_options(self, options)}")
        return self.getreply()

    def data(self, msg: bytes | str) -> tuple[int, bytes]:
        if not _sent_as_is(msg):
            return super().data(msg)
        self.putcmd("data")
        code, reply = self.getreply()
        if code != SMTP_START_MAIL_INPUT:
            raise smtplib.SMTPDataError(code, reply)
        self.send(_with_end_of_data(msg))
        return self.getreply()


class PipeliningClient(FastPathClient):
    """Sends MAIL FROM, RCPT TO and DATA in one write when the server offers PIPELINING (RFC 2920), then reads
    their replies: two round trips per message instead of four. Most relays and providers' SMTP endpoints
    offer it, and on loopback it more than doubles what one connection carries. Replies are read in full
    whatever they say, so the session stays in step; refusals raise what smtplib.sendmail raises, with the
    same RSET or close. Messages outside our fast paths (display names, SMTPUTF8, dot-stuffing) take
    smtplib's own sendmail."""

    def sendmail(
        self, from_addr: str, to_addrs: str | list[str], msg: bytes | str, mail_options=(), rcpt_options=()
    ) -> dict:
        recipients = [to_addrs] if isinstance(to_addrs, str) else list(to_addrs)
        self.ehlo_or_helo_if_needed()
        if not (
            self.has_extn("pipelining")
            and _sent_as_is(msg)
            and recipients
            and all(BARE_ADDRESS.fullmatch(address) for address in [from_addr, *recipients])
            and not _asks_smtputf8([*mail_options, *rcpt_options])
        ):
            return super().sendmail(from_addr, to_addrs, msg, mail_options, rcpt_options)
        options = [f"size={len(msg)}"] if self.does_esmtp and self.has_extn("size") else []
        options += mail_options
        commands = [f"MAIL FROM:<{from_addr}>{_options(self, tuple(options))}"]
        commands += [f"RCPT TO:<{address}>{_options(self, tuple(rcpt_options))}" for address in recipients]
        self.send("\r\n".join([*commands, "DATA", ""]))
        code, reply = self.getreply()
        if code == SMTP_CLOSING:
            self.close()
            raise smtplib.SMTPSenderRefused(code, reply, from_addr)
        refused_sender = (code, reply) if code != SMTP_OK else None
        refused = {}
        for address in recipients:
            code, reply = self.getreply()
            if code not in (SMTP_OK, SMTP_WILL_FORWARD):
                refused[address] = (code, reply)
            if code == SMTP_CLOSING:
                self.close()
                if refused_sender:
                    raise smtplib.SMTPSenderRefused(*refused_sender, from_addr)
                raise smtplib.SMTPRecipientsRefused(refused)
        code, reply = self.getreply()  # to DATA
        if code == SMTP_START_MAIL_INPUT and (refused_sender or len(refused) == len(recipients)):
            self.send(b".\r\n")  # a server that took DATA with no one to deliver to: end it, empty
            self.getreply()
        if refused_sender:
            _reset(self)
            raise smtplib.SMTPSenderRefused(*refused_sender, from_addr)
        if len(refused) == len(recipients):
            _reset(self)
            raise smtplib.SMTPRecipientsRefused(refused)
        if code != SMTP_START_MAIL_INPUT:
            raise smtplib.SMTPDataError(code, reply)
        self.send(_with_end_of_data(msg))
        code, reply = self.getreply()
        if code != SMTP_OK:
            if code == SMTP_CLOSING:
                self.close()
            else:
                _reset(self)
            raise smtplib.SMTPDataError(code, reply)
        return refused


def _options(client: smtplib.SMTP, options: tuple) -> str:
    return " " + " ".join(options) if options and client.does_esmtp else ""


class SMTPClient(PipeliningClient, smtplib.SMTP):
    pass


class SMTPSSLClient(PipeliningClient, smtplib.SMTP_SSL):
    pass


class SMTPBackend(DjangoSMTPBackend):
    """Django's SMTP backend (same settings, connection handling and errors), sending our messages' bytes
    as written by newsletter.emails.mime instead of through the email package's generator."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sending = threading.RLock()  # one batch at a time on the one connection, as Django's backend does

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return SMTPSSLClient if self.use_ssl else SMTPClient

    def send_messages(self, email_messages: list[EmailMessage]) -> int:
        """What Django's send_messages does (open the connection unless open, close it after if this call
        opened it), each message sent by send_one."""
        if not email_messages:
            return 0
        with self.sending:
            opened = self.open()
            if not self.connection or opened is None:  # open() failed silently: nothing can be sent
                return 0
            try:
                return sum(self.send_one(message) for message in email_messages)
            finally:
                if opened:
                    self.close()

    def send_one(self, email_message: EmailMessage) -> bool:
        recipients = email_message.recipients()
        if not recipients:
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        envelope_from = envelope_address(email_message.from_email, encoding)
        envelope_to = [envelope_address(address, encoding) for address in recipients]
        data = signing.sign(wire_bytes(email_message))
        try:
            self.connection.sendmail(envelope_from, envelope_to, data)
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True
