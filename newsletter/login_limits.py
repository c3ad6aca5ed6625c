"""Admin login rate limiting: failed attempts counted in the cache per username and per client address."""

import hashlib
import time

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest

KEY_PREFIX = "admin-login-failures"


def _keys(request: HttpRequest | None, username: str) -> list[tuple[str, int]]:
    # Fixed windows named by their number: the count resets when the window turns, whatever the cache's clock.
    window = int(time.time() // settings.ADMIN_LOGIN_WINDOW_SECONDS)
    # Hashed so a username typed into the form never lands in the cache as is.
    user_key = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    keys = [(f"{KEY_PREFIX}:{window}:user:{user_key}", settings.ADMIN_LOGIN_MAX_FAILURES_PER_USER)]
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    if address:
        keys.append((f"{KEY_PREFIX}:{window}:ip:{address}", settings.ADMIN_LOGIN_MAX_FAILURES_PER_IP))
    return keys


def is_locked(request: HttpRequest | None, username: str) -> bool:
    return any((cache.get(key) or 0) >= limit for key, limit in _keys(request, username))


def record_failure(request: HttpRequest | None, username: str) -> None:
    for key, _ in _keys(request, username):
        # add() creates the counter with an expiry that only cleans up; incr() is atomic on Redis.
        if not cache.add(key, 1, settings.ADMIN_LOGIN_WINDOW_SECONDS):
            try:
                cache.incr(key)
            except ValueError:  # expired between add() and incr()
                cache.add(key, 1, settings.ADMIN_LOGIN_WINDOW_SECONDS)


class RateLimitedAdminLoginForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "too_many": "Too many failed sign-in attempts. Wait up to %(minutes)d minutes and try again.",
    }

    def clean(self) -> dict:
        username = self.cleaned_data.get("username") or ""
        if is_locked(self.request, username):
            raise forms.ValidationError(
                self.error_messages["too_many"],
                code="too_many",
                params={"minutes": max(1, settings.ADMIN_LOGIN_WINDOW_SECONDS // 60)},
            )
        try:
            return super().clean()
        except forms.ValidationError:
            record_failure(self.request, username)
            raise
