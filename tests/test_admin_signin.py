"""Admin sign-in throttling that cannot lock staff out: failures count per user name AND client address together
(django-axes), so a stranger's wrong passwords never block the right password from another address, and a burst
of failures from one address never blocks other staff behind it. The address is the one the configured number
of trusted proxies saw, whatever the client wrote into X-Forwarded-For itself."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.admin_support import MORNING, PASSWORD

pytestmark = pytest.mark.django_db
LOGIN = reverse("admin:login")
LIMIT = 5  # the default ADMIN_LOGIN_MAX_FAILURES
PROXY = "10.0.0.254"  # the load balancer in front: every request's socket address once it is configured


def attempt(username: str, password: str, address: str = "198.51.100.7", **headers: str):
    """One sign-in from a fresh browser, as the admin's form posts it: 302 to the admin when it signs in."""
    form = {"username": username, "password": password, "next": "/admin/"}
    return Client().post(LOGIN, form, REMOTE_ADDR=address, **headers)


def signed_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


@pytest.fixture
def staff(db, settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; the throttle is the subject
    User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    User.objects.create_superuser("eve", "eve@example.com", PASSWORD)


@pytest.fixture(autouse=True)
def _morning():
    with time_machine.travel(MORNING, tick=False) as clock:
        yield clock


def test_a_strangers_wrong_passwords_never_block_the_right_password_from_another_address(staff):
    for _ in range(LIMIT - 1):
        assert "correct username and password" in attempt("admin", "guess", "203.0.113.9").text
    assert attempt("admin", "guess", "203.0.113.9").status_code == 429, "the fifth failure locks that pair"
    assert signed_in(attempt("admin", PASSWORD, "198.51.100.7")), "the real admin, from their own address"


def test_the_address_that_failed_is_locked_out_for_that_user_name_even_with_the_right_password(staff, _morning):
    for _ in range(LIMIT):
        attempt("admin", "guess", "203.0.113.9")
    locked = attempt("admin", PASSWORD, "203.0.113.9")
    assert locked.status_code == 429 and not signed_in(locked)
    assert "Too many failed sign-in attempts" in locked.text
    assert signed_in(attempt("eve", PASSWORD, "203.0.113.9")), "another user at that address is not blocked"
    _morning.shift(timedelta(minutes=15, seconds=1))
    assert signed_in(attempt("admin", PASSWORD, "203.0.113.9")), "the lock lifts after the cool-off"


def test_twenty_failures_from_one_address_do_not_lock_out_other_staff_behind_it(staff, settings):
    settings.RATELIMIT_TRUSTED_PROXIES = 1
    office = {"HTTP_X_FORWARDED_FOR": "192.0.2.10"}  # the office's NAT address, as the proxy saw it
    for n in range(20):
        assert not signed_in(attempt(f"guess{n}", "wrong", PROXY, **office))
    assert signed_in(attempt("admin", PASSWORD, PROXY, **office))
    assert signed_in(attempt("eve", PASSWORD, PROXY, **office))


def test_behind_a_proxy_the_client_address_is_the_one_the_proxy_saw(staff, settings):
    settings.RATELIMIT_TRUSTED_PROXIES = 1
    for n in range(LIMIT):
        # The attacker writes a new X-Forwarded-For each time; the proxy appends the address it saw.
        attempt("admin", "guess", PROXY, HTTP_X_FORWARDED_FOR=f"10.{n}.0.1, 203.0.113.9")
    spoofed = attempt("admin", PASSWORD, PROXY, HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.9")
    assert spoofed.status_code == 429, "what the client wrote itself does not move it to another address"
    assert signed_in(attempt("admin", PASSWORD, PROXY, HTTP_X_FORWARDED_FOR="198.51.100.7")), "the real admin"
