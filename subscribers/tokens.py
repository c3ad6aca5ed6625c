"""Signed links for one subscriber and one purpose. The token holds the subscriber's id, never the address;
signatures are compared in constant time. The purpose is signed with the rest, so a token made for one purpose
never reads for another: each link can do only its own job (least privilege).

- confirm: confirms a sign-up; a week, and bound to the consent state (below).
- unsub: unsubscribes, and asks to subscribe again; the List-Unsubscribe URL, which mailbox providers keep.
- prefs: shows and edits preferences.
- privacy: downloads or deletes the reader's data; mailed on request from the preferences page, one hour.
- rate: "more like this" / "less like this" on one paper. Its state is the paper (`rating_state`), so a token
  made for one paper never rates another; no expiry, like the other links in a digest.
- follow: follows (and unfollows) an author of one paper; bound to the paper like `rate`, minted on the rating
  page that a digest's link opens.

Preference and unsubscribe links carry no expiry and no state, so the links in every email ever sent keep
working (until the key that signed them leaves SECRET_KEY_FALLBACKS). A confirmation link also carries a short
fingerprint of the subscriber's consent state (see `subscribers.services.consent_state`): once that state moves
on (confirmed, unsubscribed, signed up again) an old confirmation link no longer matches and cannot be replayed.

A token is `<id>.<purpose>.<time>.<fingerprint>.<signature>` (id and time in base 62, the signature an
HMAC-SHA256 of the rest under a key derived from SECRET_KEY, as Django's signing derives its keys). Every
digest carries two of these, so the key is derived once per process, not once per token as
`django.core.signing` does; the JSON tokens that `signing.dumps` made for earlier emails are still read.
"""

import base64
import hashlib
import hmac
import time
from functools import lru_cache

from django.conf import settings
from django.core import signing

CONFIRM_MAX_AGE_SECONDS = 7 * 24 * 3600  # a confirmation link lives a week
# A link that reads or deletes everything we hold lives an hour: long enough to open the email, short enough
# that an old inbox or a forwarded message gives nothing away.
PRIVACY_MAX_AGE_SECONDS = 3600
SALT = "subscribers.tokens"
# 64 bits of a SHA-256 over the state: enough to tell states apart, short enough to keep links short.
STATE_FINGERPRINT_CHARS = 16
SEPARATOR = "."
TOKEN_FIELDS = 5
# Longer than any token we make (a 64-bit id, a purpose, a time, a fingerprint, 43 signature characters):
# anything longer is refused before any work is done on it.
MAX_TOKEN_CHARS = 200


class Purpose:
    CONFIRM = "confirm"
    PREFERENCES = "prefs"
    UNSUBSCRIBE = "unsub"
    PRIVACY = "privacy"
    RATE = "rate"
    FOLLOW = "follow"


# How long a token of each purpose is read; the others have no age limit.
MAX_AGE_SECONDS = {Purpose.CONFIRM: CONFIRM_MAX_AGE_SECONDS, Purpose.PRIVACY: PRIVACY_MAX_AGE_SECONDS}


def rating_state(paper_id: int) -> str:
    """What a rating token is bound to: the paper it rates."""
    return f"paper:{paper_id}"


def _fingerprint(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()[:STATE_FINGERPRINT_CHARS]


@lru_cache(maxsize=8)
def _mac(secret: str) -> hmac.HMAC:
    """An HMAC keyed for this secret, copied for each token: the key is derived once per process."""
    key = hashlib.sha256(f"{SALT}signer{secret}".encode()).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


def _signature(secret: str, value: str) -> str:
    return _sign(_mac(secret), value)


def _sign(mac: hmac.HMAC, value: str) -> str:
    signer = mac.copy()
    signer.update(value.encode())
    return base64.urlsafe_b64encode(signer.digest()).rstrip(b"=").decode()


def _encoded_id(subscriber_id: int | None) -> str:
    """The subscriber id as a token holds it; None (an admin preview's stand-in reader) reads as nobody."""
    if subscriber_id is None:
        subscriber_id = 0
    if not isinstance(subscriber_id, int) or isinstance(subscriber_id, bool) or subscriber_id < 0:
        raise TypeError(f"a subscriber id is an int, not {subscriber_id!r}")
    return signing.b62_encode(subscriber_id)


def make_token(subscriber_id: int | None, purpose: str, state: str | None = None) -> str:
    """A token for this subscriber; None (the stand-in reader of an admin preview) makes one that reads as
    nobody."""
    return make_tokens(subscriber_id, (purpose,), state)[0]


def make_tokens(subscriber_id: int | None, purposes: tuple[str, ...], state: str | None = None) -> list[str]:
    """One token per purpose for one subscriber (a digest carries two), sharing the work they have in common."""
    fingerprint = _fingerprint(state) if state is not None else ""
    encoded_id, encoded_time, mac = _encoded_id(subscriber_id), _now_b62(), _mac(settings.SECRET_KEY)
    tokens = []
    for purpose in purposes:
        value = f"{encoded_id}{SEPARATOR}{purpose}{SEPARATOR}{encoded_time}{SEPARATOR}{fingerprint}"
        tokens.append(f"{value}{SEPARATOR}{_sign(mac, value)}")
    return tokens


def rating_tokens(subscriber_id: int | None, paper_ids: list[int]) -> list[str]:
    """One rating token per paper for one reader (a digest carries one per paper it shows)."""
    head = f"{_encoded_id(subscriber_id)}{SEPARATOR}{Purpose.RATE}{SEPARATOR}{_now_b62()}{SEPARATOR}"
    mac, tokens = _mac(settings.SECRET_KEY), []
    for paper_id in paper_ids:
        value = head + _paper_fingerprint(paper_id)
        tokens.append(f"{value}{SEPARATOR}{_sign(mac, value)}")
    return tokens


@lru_cache(maxsize=4096)
def _paper_fingerprint(paper_id: int) -> str:
    """A rating token's fingerprint for one paper: every reader's digest carries the day's few hundred papers."""
    return _fingerprint(rating_state(paper_id))


def _now_b62() -> str:
    """The current second in base 62, encoded once per second, not per token."""
    return _b62_second(int(time.time()))


@lru_cache(maxsize=1)
def _b62_second(second: int) -> str:
    return signing.b62_encode(second)


def read_token(token: str, purpose: str, max_age: int | None = None, state: str | None = None) -> int | None:
    """The subscriber id the token was made for, or None if forged, expired (older than `max_age`, by default
    the purpose's MAX_AGE_SECONDS), for another purpose, or (when `state` is given) made for a state the
    subscriber is no longer in."""
    if max_age is None:
        max_age = MAX_AGE_SECONDS.get(purpose)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        return None
    fields = token.split(SEPARATOR)
    if len(fields) != TOKEN_FIELDS:
        return _read_json_token(token, purpose, max_age, state)
    value, signature = token.rpartition(SEPARATOR)[::2]
    secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    if not any(hmac.compare_digest(signature.encode(), _signature(secret, value).encode()) for secret in secrets):
        return None
    encoded_id, token_purpose, encoded_time, fingerprint, _ = fields
    try:
        subscriber_id, made_at = signing.b62_decode(encoded_id), signing.b62_decode(encoded_time)
    except ValueError:
        return None
    if token_purpose != purpose or subscriber_id <= 0:
        return None
    if max_age is not None and time.time() - made_at > max_age:
        return None
    if state is not None and not hmac.compare_digest(fingerprint.encode(), _fingerprint(state).encode()):
        return None
    return subscriber_id


def _read_json_token(token: str, purpose: str, max_age: int | None, state: str | None) -> int | None:
    """Tokens made by `django.core.signing.dumps([id, purpose(, fingerprint)])`, in emails sent before."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(payload, list) or len(payload) not in (2, 3):
        return None
    subscriber_id, token_purpose = payload[0], payload[1]
    if token_purpose != purpose or not isinstance(subscriber_id, int) or isinstance(subscriber_id, bool):
        return None
    if state is not None:
        if len(payload) != 3 or not isinstance(payload[2], str):
            return None
        if not hmac.compare_digest(payload[2], _fingerprint(state)):
            return None
    return subscriber_id
