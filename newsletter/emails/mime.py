"""The bytes on the wire for our own emails: multipart/alternative, a text and an HTML part, 8-bit UTF-8.

Python's email package builds a message tree and walks it back into bytes, folding every header and
splitting every body line on the way; for a 25 KB digest that took more time than rendering it. Our emails
always have the same shape, so `TemplatedEmail.wire_bytes()` writes that shape directly:
- header values are checked and encoded as Django's message() does (no CR/LF, RFC 2047 for non-ASCII, IDN
  addresses: newsletter.emails.header_values) and folded at spaces;
- bodies are sent as they are, line breaks made CRLF; they qualify for 8-bit only with every line under
  RFC 5322's 998 bytes (the renderer folds long HTML lines), otherwise the message falls back to
  Django's quoted-printable path, as does anything else unusual (attachments, Cc, other subtypes).

Django's `message()` is left as it is, so providers' API backends (anymail) see an ordinary message.
"""

import secrets
import time
from email.utils import formatdate
from functools import lru_cache

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.core.mail.utils import DNS_NAME

from newsletter.emails.header_values import encoded_value

# RFC 5322: a line SHOULD stay within 78 characters and MUST within 998 (without CRLF).
FOLD_AT = 78
MAX_LINE_BYTES = 998
CRLF = "\r\n"
LF = "\n"
ADDRESSES = ("from", "to")  # written from the message's own fields, before the extra headers
# Each part's headers; Python's email package adds a MIME-Version to each part too, which RFC 2045 does not ask for.
PART_HEADERS = 'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'


def fold(name: str, value: str) -> str:
    """`Name: value` folded at spaces into lines of at most FOLD_AT characters where the words allow."""
    line = f"{name}: {value}"
    if len(line) <= FOLD_AT:
        return line
    lines, current = [], f"{name}:"
    for word in value.split(" "):
        if len(current) + 1 + len(word) > FOLD_AT and current != f"{name}:":
            lines.append(current)
            current = ""
        current = f"{current} {word}"
    lines.append(current)
    return CRLF.join(lines)


def header(name: str, value: str) -> str:
    """One header, checked (no line breaks: BadHeaderError), encoded and folded as Django would."""
    value = encoded_value(name, value, "utf-8")
    if LF in value:  # an RFC 2047 encoding, already folded by the email package
        return f"{name}: {value.replace(CRLF, LF).replace(LF, CRLF)}"
    return fold(name, value)


# Every reader of a digest gets the same subject and sender: encoded once (RFC 2047 costs ~20 us a header).
shared_header = lru_cache(maxsize=256)(header)


def crlf(body: str) -> bytes | None:
    """The body as UTF-8 with CRLF line breaks, or None when some line is too long to go as 8-bit text."""
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    data = body.encode()
    if len(data) > MAX_LINE_BYTES and max(map(len, data.split(b"\n"))) > MAX_LINE_BYTES:
        return None
    return data.replace(b"\n", b"\r\n")


def date_header() -> str:
    """The Date header (what Django's message() writes), formatted once per second, not per message."""
    return _formatted_date(int(time.time()), settings.EMAIL_USE_LOCALTIME)


@lru_cache(maxsize=1)
def _formatted_date(second: int, localtime: bool) -> str:
    return formatdate(second, localtime=localtime)


class TemplatedEmail(EmailMultiAlternatives):
    """An EmailMultiAlternatives whose SMTP and outbox bytes are written directly (see the module doc)."""

    def wire_bytes(self) -> bytes:
        """The whole message, as Django's `message().as_bytes(linesep="\\r\\n")` would send it."""
        return self._fast_bytes() or self.message().as_bytes(linesep=CRLF)

    def _fast_bytes(self) -> bytes | None:
        plain_shape = (
            self.content_subtype == "plain"
            and not (self.attachments or self.cc or self.reply_to)
            and len(self.alternatives) == 1
            and self.alternatives[0][1] == "text/html"
            and (self.encoding or settings.DEFAULT_CHARSET).lower() in ("utf-8", "utf8")
        )
        if not plain_shape:
            return None
        try:
            text, html = crlf(self.body), crlf(self.alternatives[0][0])
        except UnicodeEncodeError:  # a lone surrogate: let the email package deal with it
            return None
        if text is None or html is None:
            return None
        boundary = f"=_{secrets.token_hex(16)}"
        if boundary.encode() in text or boundary.encode() in html:
            return None
        extra = {k.lower(): k for k in self.extra_headers}
        lines = [
            f'Content-Type: multipart/alternative; boundary="{boundary}"',
            "MIME-Version: 1.0",
            shared_header("Subject", self.subject),
            shared_header("From", self.extra_headers.get(extra.get("from", ""), self.from_email)),
            header("To", ", ".join(map(str, self.to))),
        ]
        if "date" not in extra:
            lines.append(f"Date: {date_header()}")
        if "message-id" not in extra:
            lines.append(f"Message-ID: {make_msgid(domain=DNS_NAME)}")
        lines += [header(name, value) for name, value in self.extra_headers.items() if name.lower() not in ADDRESSES]
        head = f"{CRLF.join(lines)}{CRLF}{CRLF}--{boundary}{CRLF}{PART_HEADERS.format(subtype='plain')}"
        between = f"{CRLF}--{boundary}{CRLF}{PART_HEADERS.format(subtype='html')}"
        return b"".join((head.encode(), text, between.encode(), html, f"{CRLF}--{boundary}--{CRLF}".encode()))


def wire_bytes(message: EmailMultiAlternatives) -> bytes:
    """Any Django message as bytes: the direct path for ours, the email package for the rest."""
    if isinstance(message, TemplatedEmail):
        return message.wire_bytes()
    return message.message().as_bytes(linesep=CRLF)
