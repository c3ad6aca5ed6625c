"""DKIM signatures for the messages we hand to an SMTP server ourselves (newsletter.mail.SMTPBackend). A provider's
API signs with the keys it holds for the domain; a relay or our own MTA does not, and Gmail and Yahoo refuse
bulk mail without a signature aligned with the From domain.

Signing is on when DKIM_PRIVATE_KEY (the PEM text) or DKIM_PRIVATE_KEY_PATH, and DKIM_SELECTOR and DKIM_DOMAIN,
are set. The signature covers the headers a receiver judges a bulk message by, List-Unsubscribe-Post among
them: RFC 8058 one-click unsubscribe counts only when both List-Unsubscribe headers are signed.
"""

from functools import cache
from pathlib import Path

import dkim
from django.conf import settings

# Signed when present; listed even when absent, so nobody can add one on the way without breaking the signature.
SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
    b"Reply-To",
)
# relaxed/relaxed: a relay that refolds a header line or trims trailing blanks does not break the signature.
CANONICALIZATION = (b"relaxed", b"relaxed")


def enabled() -> bool:
    return bool((settings.DKIM_PRIVATE_KEY or settings.DKIM_PRIVATE_KEY_PATH) and settings.DKIM_SELECTOR)


@cache
def _key_from_file(path: str) -> bytes:
    return Path(path).read_bytes()


def private_key() -> bytes:
    if settings.DKIM_PRIVATE_KEY:
        return settings.DKIM_PRIVATE_KEY.encode()
    return _key_from_file(settings.DKIM_PRIVATE_KEY_PATH)


def sign(message: bytes) -> bytes:
    """The message with a DKIM-Signature header in front, or as it is when signing is off."""
    if not enabled():
        return message
    signature = dkim.sign(
        message,
        settings.DKIM_SELECTOR.encode(),
        settings.DKIM_DOMAIN.encode(),
        private_key(),
        canonicalize=CANONICALIZATION,
        include_headers=list(SIGNED_HEADERS),
    )
    return signature + message
