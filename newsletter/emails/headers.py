"""The headers that make our digests mail a receiver can file, thread and de-duplicate: the Message-ID and the
list headers (RFC 2369, RFC 2919, RFC 8058 one-click unsubscribe)."""

from email.utils import make_msgid
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.crypto import salted_hmac

from newsletter.models import Digest
from subscribers.models import Subscriber

# A digest's Message-ID: an HMAC of (digest, subscriber) under SECRET_KEY with this salt, 128 bits of it in hex.
MESSAGE_ID_SALT = "newsletter.emails.headers.digest_message_id"
MESSAGE_ID_HEX = 32


@lru_cache(maxsize=8)
def site_domain(site_url: str) -> str:
    return urlsplit(site_url).hostname or "localhost"


def digest_message_id(digest: Digest, subscriber: Subscriber) -> str:
    """One reader's copy of one digest has one Message-ID, on every attempt and from every worker process, so a
    receiver can drop a duplicate (a retry after a lost reply, a resend after a worker died mid-message). An
    HMAC under SECRET_KEY: nobody can work out another reader's, or tie one to a reader."""
    mac = salted_hmac(MESSAGE_ID_SALT, f"{digest.pk}:{subscriber.pk}", algorithm="sha256").hexdigest()
    return f"<{digest.date:%Y%m%d}.{mac[:MESSAGE_ID_HEX]}@{site_domain(settings.SITE_URL)}>"


def fresh_message_id() -> str:
    """A Message-ID of its own, for a message that is no reader's copy (an editor's test)."""
    return make_msgid(domain=site_domain(settings.SITE_URL))


def list_headers(unsubscribe_url: str, message_id: str) -> dict[str, str]:
    return {
        "Message-ID": message_id,
        "List-Id": settings.DIGEST_LIST_ID,
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
