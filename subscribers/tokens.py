"""Signed links for one subscriber and one purpose. The token holds the subscriber's id, never the address;
Django's signing compares signatures in constant time.

Preference and unsubscribe links carry no expiry and no state, so the links in every email ever sent keep
working. A confirmation link may also carry a short fingerprint of the subscriber's consent state (see
`subscribers.services.consent_state`): once that state moves on (confirmed, unsubscribed, signed up again)
an old confirmation link no longer matches and cannot be replayed.
"""

import hashlib
import hmac

from django.core import signing

CONFIRM_MAX_AGE_SECONDS = 7 * 24 * 3600  # a confirmation link lives a week
SALT = "subscribers.tokens"
# 64 bits of a SHA-256 over the state: enough to tell states apart, short enough to keep links short.
STATE_FINGERPRINT_CHARS = 16


class Purpose:
    CONFIRM = "confirm"
    PREFERENCES = "prefs"
    UNSUBSCRIBE = "unsub"


def _fingerprint(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()[:STATE_FINGERPRINT_CHARS]


def make_token(subscriber_id: int, purpose: str, state: str | None = None) -> str:
    payload: list = [subscriber_id, purpose]
    if state is not None:
        payload.append(_fingerprint(state))
    return signing.dumps(payload, salt=SALT, compress=False)


def read_token(token: str, purpose: str, max_age: int | None = None, state: str | None = None) -> int | None:
    """The subscriber id the token was made for, or None if forged, expired, for another purpose, or (when
    `state` is given) made for a state the subscriber is no longer in."""
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
