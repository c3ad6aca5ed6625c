"""Abuse and bad input on the sign-up form: a hostile-input table, rate limits per IP and per address."""

import html
import random
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.core.cache import cache

from subscribers.addresses import MESSAGES
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, make_token
from tests.helpers import read_outbox

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
NULL_MESSAGE = "Null characters are not allowed."
TOO_LONG_FIELD = MESSAGES["too_long"]

REFUSED = [
    # (what is typed, the message the reader sees)
    ("", MESSAGES["empty"]),
    ("   ", MESSAGES["empty"]),
    ("plainaddress", MESSAGES["invalid"]),
    ("@example.com", MESSAGES["invalid"]),
    ("ada@", MESSAGES["invalid"]),
    ("ada@example", MESSAGES["invalid"]),
    ("root@localhost", MESSAGES["invalid"]),
    ("ada@-example.com", MESSAGES["invalid"]),
    ("ada@example..com", MESSAGES["invalid"]),
    (".ada@example.com", MESSAGES["invalid"]),
    ("ada.@example.com", MESSAGES["invalid"]),
    ("ada..lovelace@example.com", MESSAGES["invalid"]),
    ("ada@[127.0.0.1]", MESSAGES["invalid"]),
    ("ada@exa\u202emple.com", MESSAGES["invalid"]),  # right-to-left override in the domain
    ("ada@xn--.com", MESSAGES["invalid"]),
    ("ada@b@example.com", MESSAGES["several"]),
    ("ada@example.com,bob@example.com", MESSAGES["several"]),
    ("ada@example.com;bob@example.com", MESSAGES["several"]),
    ("ada@example.com bob@example.com", MESSAGES["several"]),
    ("Ada Lovelace <ada@example.com>", MESSAGES["several"]),
    ('"ada"@example.com', MESSAGES["several"]),
    ("<script>alert(1)</script>@example.com", MESSAGES["several"]),
    ("ada@example.com%0d%0abcc:eve@example.com", MESSAGES["several"]),
    ("ada@example.com\r\nBcc: eve@example.com", MESSAGES["lines"]),
    ("ada@example.com\nBcc: eve@example.com", MESSAGES["lines"]),
    ("ada@example.com\rX-Injected: 1", MESSAGES["lines"]),
    ("ada@exam\tple.com", MESSAGES["lines"]),
    ("ada\u2028x@example.com", MESSAGES["lines"]),
    ("ada\x00@example.com", NULL_MESSAGE),
    ("a" * 65 + "@example.com", MESSAGES["too_long"]),
    ("ada@" + "b" * 250 + ".com", MESSAGES["too_long"]),
    ("ada@" + ("ä" * 12 + ".") * 14 + "com", MESSAGES["too_long"]),  # 189 characters, 273 in punycode
    ("x" * 5000 + "@example.com", TOO_LONG_FIELD),
    ("josé@example.com", MESSAGES["local_ascii"]),
    ("ада@example.com", MESSAGES["local_ascii"]),
]

ACCEPTED = [
    # (what is typed, the address stored)
    ("  Ada@EXAMPLE.com  ", "Ada@example.com"),
    ("ada@example.com.", "ada@example.com"),
    ("ada+papers@example.com", "ada+papers@example.com"),
    ("ada@exämple.com", "ada@xn--exmple-cua.com"),
    ("ada@BÜCHER.de", "ada@xn--bcher-kva.de"),
    ("ada@例え.テスト", "ada@xn--r8jz45g.xn--zckzah"),
    ("o'brien@example.ie", "o'brien@example.ie"),
]


def post(client, django_capture_on_commit_callbacks, data: dict):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post("/subscribe/", {"frequency": "daily", **data})


@pytest.mark.parametrize(("typed", "message"), REFUSED)
def test_hostile_addresses_are_refused_with_a_clear_message(
    client, django_capture_on_commit_callbacks, outbox, typed, message
):
    response = post(client, django_capture_on_commit_callbacks, {"email": typed})
    assert response.status_code == 400
    assert message in html.unescape(response.text)
    assert 'aria-invalid="true"' in response.text, "the field is marked for screen readers"
    assert "<script>alert(1)</script>" not in response.text, "what was typed comes back escaped"
    assert not Subscriber.objects.exists() and read_outbox(outbox) == []


@pytest.mark.parametrize(("typed", "stored"), ACCEPTED)
def test_addresses_are_normalized(client, django_capture_on_commit_callbacks, outbox, typed, stored):
    response = post(client, django_capture_on_commit_callbacks, {"email": typed})
    assert response.status_code == 200
    assert Subscriber.objects.get().email == stored
    [message] = read_outbox(outbox)
    assert message["To"] == stored


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "ada@example.com", "frequency": "hourly"}, "Select a valid choice."),
        ({"email": "ada@example.com", "categories": ["cs.LG", "cs.XX"]}, "Select a valid choice."),
        ({"email": "ada@example.com", "interests": "x" * 2001}, "at most 2000 characters"),
        ({"email": "ada@example.com", "interests": "ok\x00"}, NULL_MESSAGE),
        ({"email": ["ada@example.com", "eve@example.com"]}, ""),  # a repeated field: the last one counts
    ],
)
def test_other_fields_are_checked_too(client, django_capture_on_commit_callbacks, data, message):
    response = post(client, django_capture_on_commit_callbacks, data)
    if message:
        assert response.status_code == 400 and message in html.unescape(response.text)
        assert not Subscriber.objects.exists()
    else:
        assert response.status_code == 200
        assert list(Subscriber.objects.values_list("email", flat=True)) == ["eve@example.com"]


def test_interests_are_stored_as_typed_and_escaped_when_shown(client, django_capture_on_commit_callbacks):
    typed = "<b>graph</b> neural nets, \"quoted\" & 'single', {{ template }}"
    response = post(client, django_capture_on_commit_callbacks, {"email": "ada", "interests": typed})
    assert response.status_code == 400
    assert "<b>graph</b>" not in response.text and "&lt;b&gt;graph&lt;/b&gt;" in response.text
    assert "{{ template }}" in response.text, "template syntax in input is text, not code"


def test_wrong_method_and_garbage_bodies_never_500(client):
    assert client.get("/subscribe/").status_code == 405
    assert client.put("/subscribe/", "email=x").status_code == 405
    garbage = client.generic(
        "POST", "/subscribe/", b"\xff\xfe\x00garbage", content_type="application/x-www-form-urlencoded"
    )
    assert garbage.status_code == 400
    broken = client.generic("POST", "/subscribe/", b"--x\r\n", content_type="multipart/form-data; boundary=x")
    assert broken.status_code in (400, 403)


def test_rate_limit_per_ip(client, django_capture_on_commit_callbacks, settings):
    settings.SUBSCRIBE_RATE_PER_IP = 3
    for n in range(3):
        assert post(client, django_capture_on_commit_callbacks, {"email": f"r{n}@example.com"}).status_code == 200
    limited = post(client, django_capture_on_commit_callbacks, {"email": "r9@example.com"})
    assert limited.status_code == 429
    assert "Too many sign-up attempts from here. Please wait an hour and try again." in html.unescape(limited.text)
    assert 'value="r9@example.com"' in limited.text, "what was typed is kept"
    assert not Subscriber.objects.filter(email="r9@example.com").exists()
    other_ip = client.post("/subscribe/", {"email": "r9@example.com", "frequency": "daily"}, REMOTE_ADDR="10.0.0.9")
    assert other_ip.status_code == 200


def test_rate_limit_per_address_whatever_the_ip(client, django_capture_on_commit_callbacks, settings, outbox):
    settings.SUBSCRIBE_RATE_PER_ADDRESS = 2
    for n in range(2):
        client.post("/subscribe/", {"email": "Ada@example.com", "frequency": "daily"}, REMOTE_ADDR=f"10.0.0.{n}")
    limited = client.post("/subscribe/", {"email": "ada@EXAMPLE.com", "frequency": "daily"}, REMOTE_ADDR="10.0.0.7")
    assert limited.status_code == 429
    assert (
        client.post(
            "/subscribe/", {"email": "bob@example.com", "frequency": "daily"}, REMOTE_ADDR="10.0.0.7"
        ).status_code
        == 200
    )


def test_rate_limit_trusts_forwarded_for_only_from_configured_proxies(client, settings):
    settings.SUBSCRIBE_RATE_PER_IP = 1
    spoofed = {"HTTP_X_FORWARDED_FOR": "1.1.1.1"}
    assert client.post("/subscribe/", {"email": "a@example.com", "frequency": "daily"}, **spoofed).status_code == 200
    spoofed = {"HTTP_X_FORWARDED_FOR": "2.2.2.2"}
    assert client.post("/subscribe/", {"email": "b@example.com", "frequency": "daily"}, **spoofed).status_code == 429
    settings.RATELIMIT_TRUSTED_PROXIES = 1
    behind = {"HTTP_X_FORWARDED_FOR": "6.6.6.6, 3.3.3.3"}  # the client may prepend anything; the proxy appends
    assert client.post("/subscribe/", {"email": "c@example.com", "frequency": "daily"}, **behind).status_code == 200
    behind = {"HTTP_X_FORWARDED_FOR": "7.7.7.7, 3.3.3.3"}
    assert client.post("/subscribe/", {"email": "d@example.com", "frequency": "daily"}, **behind).status_code == 429


def test_rate_limit_window_reopens(client, settings, time_machine):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "window"}}
    settings.SUBSCRIBE_RATE_PER_IP = 1
    time_machine.move_to(NOW, tick=False)
    assert client.post("/subscribe/", {"email": "a@example.com", "frequency": "daily"}).status_code == 200
    assert client.post("/subscribe/", {"email": "b@example.com", "frequency": "daily"}).status_code == 429
    time_machine.move_to(NOW + timedelta(seconds=settings.SUBSCRIBE_RATE_WINDOW_SECONDS + 1), tick=False)
    assert client.post("/subscribe/", {"email": "b@example.com", "frequency": "daily"}).status_code == 200


def test_rate_limit_counts_are_shared_through_redis(client, settings, redis_url):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    cache.clear()
    settings.SUBSCRIBE_RATE_PER_IP = 2
    codes = [
        client.post("/subscribe/", {"email": f"s{n}@example.com", "frequency": "daily"}).status_code for n in range(3)
    ]
    assert codes == [200, 200, 429]
    keys = [key.decode() for key in redis.Redis.from_url(redis_url).keys("*ratelimit:signup-ip:*")]
    assert keys and all("127.0.0.1" not in key for key in keys)
    cache.clear()


FUZZ_ALPHABET = "aé@.,;<>\"'\r\n\t\x00 \u202e\u2028xn--ü例%+=?/\\[]{}()" + "".join(map(chr, range(0x20, 0x7F)))
FUZZ_ROUNDS = 50  # a fixed seed: the same inputs every run, so a failure reproduces


def test_random_input_never_causes_a_server_error(client, settings, ada_prefs_path):
    settings.SUBSCRIBE_RATE_PER_IP = settings.SUBSCRIBE_RATE_PER_ADDRESS = 10**9
    rng = random.Random(7)

    def noise(longest: int) -> str:
        return "".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(0, longest)))

    for _ in range(FUZZ_ROUNDS):
        signup = {
            "email": noise(40) + rng.choice(["@example.com", "", "@" + noise(10)]),
            "interests": noise(50),
            "frequency": rng.choice(["daily", "weekly", noise(5)]),
            "categories": [noise(6), "cs.LG"],
        }
        assert client.post("/subscribe/", signup).status_code in (200, 400), signup
        preferences = {
            "interests": noise(30),
            "frequency": rng.choice(["daily", noise(3)]),
            "delivery_hour": noise(3),
            "time_zone": rng.choice(["UTC", noise(20)]),
            "papers_per_digest": noise(4),
            "categories": noise(5),
        }
        assert client.post(ada_prefs_path, preferences).status_code in (302, 400), preferences


def test_oversized_bodies_and_too_many_fields_are_refused(client):
    many = {"email": "ada@example.com", "frequency": "daily", "categories": ["cs.LG"] * 5000}
    assert client.post("/subscribe/", many).status_code == 400
    huge = {"email": "ada@example.com", "frequency": "daily", "interests": "x" * 3_000_000}
    assert client.post("/subscribe/", huge).status_code == 400
    assert not Subscriber.objects.exists()


@pytest.fixture
def ada_prefs_path() -> str:
    ada = Subscriber.objects.create(email="ada@example.com", status="active")
    return f"/preferences/{make_token(ada.pk, Purpose.PREFERENCES)}/"
