"""Signed links for one subscriber and one purpose. The token holds the subscriber's id, never the address;
Django's signing compares signatures in constant time."""

from django.core import signing

CONFIRM_MAX_AGE_SECONDS = 7 * 24 * 3600  # a confirmation link lives a week
SALT = "subscribers.tokens"


class Purpose:
    CONFIRM = "confirm"
    PREFERENCES = "prefs"
    UNSUBSCRIBE = "unsub"


def make_token(subscriber_id: int, purpose: str) -> str:
    return signing.dumps([subscriber_id, purpose], salt=SALT, compress=False)


def read_token(token: str, purpose: str, max_age: int | None = None) -> int | None:
    """The subscriber id the token was made for, or None if forged, expired or for another purpose."""
    try:
        subscriber_id, token_purpose = signing.loads(token, salt=SALT, max_age=max_age)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if token_purpose != purpose or not isinstance(subscriber_id, int):
        return None
    return subscriber_id
