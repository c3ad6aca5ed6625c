"""Sign-up with double opt-in, confirmation, preferences, one-click unsubscribe (RFC 8058), privacy, purge."""

import json
import re
from datetime import UTC, datetime, timedelta

import kombu.exceptions
import pytest
from django.core import signing
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from subscribers import services
from subscribers.models import Subscriber, Suppression, email_hash
from subscribers.tasks import purge_unconfirmed_task, send_confirmation_task, signup_task
from subscribers.tokens import SALT, Purpose, make_token, read_token
from tests.helpers import parts, read_outbox

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
CONFIRM_LINK = re.compile(r"http://[^/\s]+(/confirm/[^/\s]+/)")


@pytest.fixture
def signup(client, django_capture_on_commit_callbacks):
    def post(email: str, **fields) -> object:
        data = {"email": email, "frequency": "daily", "interests": "", **fields}
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/subscribe/", data)

    return post


def confirm_links(outbox) -> dict[str, str]:
    """{confirmation path: recipient} for every confirmation email in the outbox."""
    links = {}
    for message in read_outbox(outbox):
        text, html = parts(message)
        path = CONFIRM_LINK.search(text).group(1)
        assert CONFIRM_LINK.search(html).group(1) == path, "the HTML and text bodies carry the same link"
        links[path] = message["To"]
    return links


def test_new_pending_active_unsubscribed_pending_again(client, signup, outbox):
    response = signup("Ada@Example.COM", interests="diffusion models", categories=["cs.LG", "cs.CV"])
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    ada = Subscriber.objects.get()
    assert (ada.email, ada.status, ada.interests, ada.categories) == (
        "Ada@example.com",
        "pending",
        "diffusion models",
        ["cs.LG", "cs.CV"],
    )
    [message] = read_outbox(outbox)
    assert message["To"] == "Ada@example.com"
    assert message["Subject"] == "Confirm your Daily Papers subscription"
    [link] = confirm_links(outbox)

    page = client.get(link)  # a mail scanner following the link changes nothing
    assert page.status_code == 200
    assert "<script" not in page.text, "nothing on the page acts by itself: a person clicks"
    assert 'id="confirm-form"' in page.text and "Confirm my subscription</button>" in page.text
    ada.refresh_from_db()
    assert ada.status == "pending"

    done = client.post(link)
    assert done.status_code == 200 and "You're subscribed" in done.text
    ada.refresh_from_db()
    assert ada.status == "active" and ada.confirmed_at is not None
    assert client.post(link).status_code == 200, "a second POST (script and button both) is harmless"

    unsubscribe_path = f"/unsubscribe/{make_token(ada.pk, Purpose.UNSUBSCRIBE)}/"
    assert client.post(unsubscribe_path, {"List-Unsubscribe": "One-Click"}).status_code == 200
    ada.refresh_from_db()
    assert ada.status == "unsubscribed" and ada.unsubscribed_at is not None

    signup("ada@example.com", frequency="weekly")
    ada.refresh_from_db()
    assert ada.status == "pending" and ada.frequency == "weekly"
    assert Subscriber.objects.count() == 1, "the address matches whatever the case of its local part"
    [new_link] = confirm_links(outbox).keys() - {link}
    old_link = link
    assert client.post(old_link).status_code == 400, "the first sign-up's link can't confirm the second"
    ada.refresh_from_db()
    assert ada.status == "pending"
    assert client.post(new_link).status_code == 200
    ada.refresh_from_db()
    assert ada.status == "active"


def test_confirmation_is_queued_after_commit_not_sent_inside_the_request(
    client, outbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post("/subscribe/", {"email": "ada@example.com", "frequency": "daily"})
    assert read_outbox(outbox) == [] and len(callbacks) == 1
    callbacks[0]()
    assert len(read_outbox(outbox)) == 1


def test_pending_signup_again_resends_and_both_links_work(client, signup, outbox):
    signup("ada@example.com")
    signup("ada@example.com")
    assert len(read_outbox(outbox)) == 2
    links = list(confirm_links(outbox))  # made in the same second for the same state: possibly one link
    assert client.post(links[0]).status_code == 200
    assert Subscriber.objects.get().status == "active"
    assert client.post(links[-1]).status_code == 200  # "already confirmed", not an error


def test_active_reader_is_not_changed_or_mailed_by_a_signup(signup, outbox):
    Subscriber.objects.create(email="ada@example.com", status="active", interests="speech", frequency="daily")
    signup("ada@example.com", interests="spam", frequency="weekly")
    ada = Subscriber.objects.get()
    assert (ada.status, ada.interests, ada.frequency) == ("active", "speech", "daily")
    assert read_outbox(outbox) == []


@pytest.mark.parametrize("how", ["status", "hash"])
def test_suppressed_addresses_are_never_reactivated_by_signup(signup, outbox, how):
    if how == "status":
        Subscriber.objects.create(email="gone@example.com", status="suppressed")
    else:
        Suppression.objects.create(email_hash=email_hash("gone@example.com"), reason="deleted")
    response = signup("Gone@Example.com")
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert read_outbox(outbox) == []
    assert list(Subscriber.objects.values_list("status", flat=True)) == (["suppressed"] if how == "status" else [])


def test_signup_responses_are_identical_whatever_the_state(client, signup):
    Subscriber.objects.create(email="pending@example.com", status="pending")
    Subscriber.objects.create(email="active@example.com", status="active")
    Subscriber.objects.create(email="left@example.com", status="unsubscribed")
    Subscriber.objects.create(email="bounced@example.com", status="suppressed")
    Suppression.objects.create(email_hash=email_hash("deleted@example.com"), reason="deleted")
    responses = [signup(f"{who}@example.com") for who in ("new", "pending", "active", "left", "bounced", "deleted")] + [
        signup("bot@example.com", website="http://spam.example")
    ]
    shapes = {(r.status_code, r.content, tuple(sorted(r.headers.items())), tuple(r.cookies)) for r in responses}
    assert len(shapes) == 1


STATES = ["new", "pending", "active", "unsubscribed", "suppressed", "deleted"]


def make_state(who: str) -> None:
    if who == "deleted":  # only the hash is left
        Suppression.objects.create(email_hash=email_hash(f"{who}@example.com"), reason="deleted")
    elif who != "new":
        Subscriber.objects.create(email=f"{who}@example.com", status=who)


def test_every_signup_does_the_same_work_whatever_the_state(client, django_capture_on_commit_callbacks):
    """Timing must not tell a known address from a new one either: no statement in the request, one task each
    (it records the request and finds out whether to mail, after the response)."""
    work = {}
    for who in STATES:
        make_state(who)
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks() as tasks:
            assert client.post("/subscribe/", {"email": f"{who}@example.com", "frequency": "daily"}).status_code == 200
        work[who] = (len(queries), len(tasks))
    assert set(work.values()) == {(0, 1)}, work


def test_a_confirmation_task_run_again_sends_nothing_twice(signup, outbox):
    """acks_late: a worker lost after sending but before its ack gets the task run again by another worker."""
    services.request_subscription(services.SignUp(email="ada@example.com"))
    ada = Subscriber.objects.get()
    assert send_confirmation_task(ada.pk) is True
    assert send_confirmation_task(ada.pk) is False, "the redelivered task finds the send claimed"
    assert len(read_outbox(outbox)) == 1
    signup("ada@example.com")  # a new request is a new email
    assert len(read_outbox(outbox)) == 2


def test_each_signup_mails_once_whatever_order_its_tasks_run_in(client, django_capture_on_commit_callbacks, outbox):
    """acks_late: a sign-up task may run twice (a worker lost before its ack), or after a later one."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for _ in range(2):
            client.post("/subscribe/", {"email": "ada@example.com", "frequency": "daily"})
    first, second = callbacks
    for queue_task in (first, first, second, first, second):
        queue_task()
    assert len(read_outbox(outbox)) == 2, "one email per sign-up request, none for a rerun or a stale task"
    for link in confirm_links(outbox):
        assert client.post(link).status_code == 200
    assert Subscriber.objects.get().status == "active"


def test_a_confirmation_that_could_not_be_sent_is_sent_by_the_next_run(settings, outbox):
    services.request_subscription(services.SignUp(email="ada@example.com"))
    ada = Subscriber.objects.get()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2  # nothing listens on 1
    with pytest.raises(OSError):
        send_confirmation_task(ada.pk)
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    assert send_confirmation_task(ada.pk) is True
    assert len(read_outbox(outbox)) == 1


def test_honeypot_looks_like_success_but_does_nothing(signup, outbox):
    response = signup("bot@example.com", website="http://spam.example")
    assert "Check your inbox" in response.text
    assert not Subscriber.objects.exists() and read_outbox(outbox) == []


# --- Tokens ---------------------------------------------------------------------------------------


def test_tokens_hold_no_address_and_refuse_forgery(client, signup, outbox):
    signup("ada@example.com")
    [link] = confirm_links(outbox)
    token = link.split("/")[2]
    payload = token.rpartition(".")[0]
    assert "ada" not in payload and "example" not in payload
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    other_id = token.replace(token.split(".")[0], signing.b62_encode(signing.b62_decode(token.split(".")[0]) + 1), 1)
    bad_tokens = (forged, other_id, token.replace(".", ".x", 1), "x" * 40, token[:-2] + "é", token + "A" * 200,
                  signing.dumps([1, "confirm"], salt="other"), token.replace(".confirm.", ".unsub.", 1))  # fmt: skip
    for bad in bad_tokens:
        response = client.post(f"/confirm/{bad}/")
        assert response.status_code == 400 and "This link doesn't work" in response.text
    assert Subscriber.objects.get().status == "pending"


def test_a_token_for_one_purpose_is_refused_for_another(client):
    ada = Subscriber.objects.create(email="ada@example.com", status="active")
    unsubscribe_token = make_token(ada.pk, Purpose.UNSUBSCRIBE)
    assert client.post(f"/confirm/{unsubscribe_token}/").status_code == 400
    assert client.get(f"/preferences/{unsubscribe_token}/").status_code == 404
    assert (
        client.post(
            f"/unsubscribe/{make_token(ada.pk, Purpose.PREFERENCES)}/", {"List-Unsubscribe": "One-Click"}
        ).status_code
        == 404
    )
    ada.refresh_from_db()
    assert ada.status == "active"
    with pytest.raises(TypeError):
        make_token(True, Purpose.UNSUBSCRIBE)  # type: ignore[arg-type]
    assert read_token(signing.dumps([True, "unsub"], salt=SALT), Purpose.UNSUBSCRIBE) is None


def test_links_in_emails_sent_before_the_token_format_changed_still_work(client, settings):
    """Earlier emails carry `signing.dumps` tokens; they keep working, under the current or a fallback key."""
    ada = Subscriber.objects.create(email="ada@example.com", status="active")
    old = signing.dumps([ada.pk, "unsub"], salt=SALT, compress=False)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-key-" * 5, [settings.SECRET_KEY]
    new = make_token(ada.pk, Purpose.UNSUBSCRIBE)
    assert read_token(old, Purpose.UNSUBSCRIBE) == ada.pk == read_token(new, Purpose.UNSUBSCRIBE)
    assert read_token(old, Purpose.PREFERENCES) is None
    settings.SECRET_KEY_FALLBACKS = []
    assert read_token(old, Purpose.UNSUBSCRIBE) is None
    assert client.post(f"/unsubscribe/{new}/", {"List-Unsubscribe": "One-Click"}).status_code == 200
    ada.refresh_from_db()
    assert ada.status == "unsubscribed"


def test_confirmation_links_expire_after_seven_days(client, signup, outbox, time_machine):
    time_machine.move_to(NOW, tick=False)
    signup("ada@example.com")
    signup("bob@example.com")
    by_recipient = {to: path for path, to in confirm_links(outbox).items()}
    ada_link, bob_link = by_recipient["ada@example.com"], by_recipient["bob@example.com"]
    time_machine.move_to(NOW + timedelta(days=7, seconds=-5), tick=False)
    assert client.post(ada_link).status_code == 200
    time_machine.move_to(NOW + timedelta(days=7, seconds=5), tick=False)
    assert client.get(bob_link).status_code == 400
    assert client.post(bob_link).status_code == 400
    assert dict(Subscriber.objects.values_list("email", "status")) == {
        "ada@example.com": "active",
        "bob@example.com": "pending",
    }


def test_unsubscribe_and_preference_links_in_old_emails_keep_working(client, time_machine):
    time_machine.move_to(NOW, tick=False)
    ada = Subscriber.objects.create(email="ada@example.com", status="active")
    preferences_link = f"/preferences/{make_token(ada.pk, Purpose.PREFERENCES)}/"
    unsubscribe_link = f"/unsubscribe/{make_token(ada.pk, Purpose.UNSUBSCRIBE)}/"
    time_machine.move_to(NOW + timedelta(days=3 * 365), tick=False)
    assert client.get(preferences_link).status_code == 200
    assert client.post(unsubscribe_link, {"List-Unsubscribe": "One-Click"}).status_code == 200
    ada.refresh_from_db()
    assert ada.status == "unsubscribed"


# --- One-click unsubscribe (RFC 8058) ------------------------------------------------------------


@pytest.fixture
def ada():
    return Subscriber.objects.create(email="ada@example.com", status="active")


def gmail_post(path: str, content_type: str, body: bytes):
    """The request a mailbox provider makes: a bare POST, no cookies, no CSRF token, no Referer."""
    browserless = Client(enforce_csrf_checks=True)
    return browserless.generic(
        "POST", path, body, content_type=content_type, HTTP_USER_AGENT="Mozilla/5.0 (compatible; Google-Safety)"
    )


def test_one_click_post_exactly_as_gmail_sends_it(ada, time_machine):
    time_machine.move_to(NOW, tick=False)
    path = f"/unsubscribe/{make_token(ada.pk, Purpose.UNSUBSCRIBE)}/"
    response = gmail_post(path, "application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click")
    assert response.status_code == 200, "200 itself: providers don't follow redirects"
    assert "You're unsubscribed" in response.text
    assert not response.cookies, "no cookie is set for a provider's request"
    ada.refresh_from_db()
    assert ada.status == "unsubscribed" and ada.unsubscribed_at == NOW
    time_machine.move_to(NOW + timedelta(days=1), tick=False)
    again = gmail_post(path, "application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click")
    assert again.status_code == 200
    ada.refresh_from_db()
    assert ada.unsubscribed_at == NOW, "idempotent: a repeat changes nothing"


def test_one_click_post_as_multipart(ada):
    boundary = "----provider7MA4YWxkTrZu0gW"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    ).encode()
    path = f"/unsubscribe/{make_token(ada.pk, Purpose.UNSUBSCRIBE)}/"
    response = gmail_post(path, f"multipart/form-data; boundary={boundary}", body)
    assert response.status_code == 200
    ada.refresh_from_db()
    assert ada.status == "unsubscribed"


def test_unsubscribe_get_shows_one_button_and_changes_nothing(client, ada):
    response = client.get(f"/unsubscribe/{make_token(ada.pk, Purpose.UNSUBSCRIBE)}/")
    assert response.status_code == 200
    assert response.text.count("<button") == 1
    assert "/preferences/" not in response.text, "the unsubscribe link opens no other page"
    ada.refresh_from_db()
    assert ada.status == "active"


@pytest.mark.parametrize("body", [b"", b"List-Unsubscribe=Yes", b"unsubscribe=One-Click"])
def test_a_post_without_the_one_click_body_is_refused(ada, body):
    response = gmail_post(
        f"/unsubscribe/{make_token(ada.pk, Purpose.UNSUBSCRIBE)}/", "application/x-www-form-urlencoded", body
    )
    assert response.status_code == 400
    ada.refresh_from_db()
    assert ada.status == "active"


def test_csrf_is_still_required_everywhere_else(ada):
    strict = Client(enforce_csrf_checks=True)
    refused = strict.post("/subscribe/", {"email": "x@example.com", "frequency": "daily"})
    assert refused.status_code == 403 and "Reload the page and send the form again" in refused.text
    prefs = f"/preferences/{make_token(ada.pk, Purpose.PREFERENCES)}/"
    assert strict.post(prefs, {"frequency": "weekly"}).status_code == 403
    assert strict.post(f"{prefs}privacy/").status_code == 403
    assert strict.post(f"/privacy/{make_token(ada.pk, Purpose.PRIVACY)}/delete/", {"confirm": "yes"}).status_code == 403
    assert strict.post(f"/unsubscribe/{make_token(ada.pk, Purpose.UNSUBSCRIBE)}/resubscribe/").status_code == 403
    assert Subscriber.objects.filter(pk=ada.pk).exists()


# --- Preferences and privacy ---------------------------------------------------------------------


def test_preferences_change_every_setting(client, ada):
    path = f"/preferences/{make_token(ada.pk, Purpose.PREFERENCES)}/"
    page = client.get(path)
    assert page.status_code == 200 and "ada@example.com" in page.text and "Europe/Berlin" in page.text
    data = {
        "interests": "speech synthesis\nrobot learning",
        "categories": ["cs.RO", "eess.AS"],
        "frequency": "weekly",
        "delivery_hour": "6",
        "time_zone": "America/Argentina/Buenos_Aires",
        "papers_per_digest": "7",
    }
    response = client.post(path, data)
    assert response.status_code == 302 and response["Location"] == f"{path}?saved=1"
    assert "Saved." in client.get(response["Location"]).text
    ada.refresh_from_db()
    assert (ada.interests, ada.categories, ada.frequency, ada.delivery_hour, ada.time_zone, ada.papers_per_digest) == (
        "speech synthesis\nrobot learning",
        ["cs.RO", "eess.AS"],
        "weekly",
        6,
        "America/Argentina/Buenos_Aires",
        7,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time_zone", "Mars/Olympus_Mons"),
        ("time_zone", "../../etc/passwd"),
        ("delivery_hour", "24"),
        ("delivery_hour", "-1"),
        ("papers_per_digest", "0"),
        ("papers_per_digest", "31"),
        ("papers_per_digest", "1e9"),
        ("frequency", "hourly"),
        ("categories", "cs.XX"),
        ("interests", "x" * 2001),
        ("interests", "ok\x00not"),
    ],
)
def test_preferences_refuse_bad_values_clearly(client, ada, field, value):
    path = f"/preferences/{make_token(ada.pk, Purpose.PREFERENCES)}/"
    data = {"frequency": "daily", "delivery_hour": "8", "time_zone": "UTC", "papers_per_digest": "10"} | {field: value}
    response = client.post(path, data)
    assert response.status_code == 400
    assert 'class="field-error"' in response.text
    fresh = Subscriber.objects.get(pk=ada.pk)
    assert (fresh.frequency, fresh.delivery_hour, fresh.papers_per_digest, fresh.interests) == ("daily", 8, 10, "")


def test_preferences_page_escapes_what_readers_typed(client, ada):
    ada.interests = '<script>alert("x")</script> "><img src=x onerror=alert(1)>'
    ada.save()
    response = client.get(f"/preferences/{make_token(ada.pk, Purpose.PREFERENCES)}/")
    assert "<script>alert" not in response.text and "<img src=x" not in response.text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in response.text


def test_data_download_and_delete_for_good(client, signup, ada, outbox):
    path = f"/privacy/{make_token(ada.pk, Purpose.PRIVACY)}/"
    download = client.get(f"{path}data.json")
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    data = json.loads(download.content)
    assert data["email"] == "ada@example.com" and data["status"] == "active" and data["deliveries"] == []
    assert {"interests", "categories", "frequency", "delivery_hour", "time_zone", "papers_per_digest"} <= set(data)

    assert client.post(f"{path}delete/", {}).status_code == 302, "the checkbox is the confirmation"
    assert Subscriber.objects.filter(pk=ada.pk).exists()
    gone = client.post(f"{path}delete/", {"confirm": "yes"})
    assert gone.status_code == 200 and "Your data is deleted" in gone.text
    assert not Subscriber.objects.exists()
    [row] = Suppression.objects.all()
    assert (row.email_hash, row.reason) == (email_hash("ada@example.com"), "deleted")
    assert "ada@" not in row.detail and "ada@" not in str(row)

    assert signup("ADA@example.com").status_code == 200
    assert not Subscriber.objects.exists() and read_outbox(outbox) == []
    assert client.get(path).status_code == 404
    assert client.get(f"/preferences/{make_token(ada.pk, Purpose.PREFERENCES)}/").status_code == 404
    one_click = gmail_post(
        f"/unsubscribe/{make_token(ada.pk, Purpose.UNSUBSCRIBE)}/",
        "application/x-www-form-urlencoded",
        b"List-Unsubscribe=One-Click",
    )
    assert one_click.status_code == 200, "nothing left to mail: the provider hears success"
    assert not Subscriber.objects.exists()


def test_unconfirmed_signups_are_purged_after_fourteen_days(time_machine):
    time_machine.move_to(NOW, tick=False)
    old = NOW - timedelta(days=14, minutes=1)
    Subscriber.objects.create(email="stale@example.com", status="pending", requested_at=old, created_at=old)
    Subscriber.objects.create(email="legacy@example.com", status="pending", created_at=old)
    recent = Subscriber.objects.create(email="recent@example.com", status="pending", created_at=old)
    recent.requested_at = NOW - timedelta(days=13)  # asked again: the clock restarts
    recent.save()
    Subscriber.objects.create(email="reader@example.com", status="active", created_at=old, requested_at=old)
    Subscriber.objects.create(email="left@example.com", status="unsubscribed", created_at=old, requested_at=old)
    assert purge_unconfirmed_task.delay().get() == 2
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == [
        "left@example.com",
        "reader@example.com",
        "recent@example.com",
    ]
    assert services.purge_unconfirmed(NOW) == 0, "idempotent"


def test_the_purge_is_scheduled_daily(settings):
    [entry] = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"].endswith("purge_unconfirmed_task")]
    assert entry["schedule"].hour == {3} and entry["schedule"].minute == {15}


# --- Page safety ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/unsubscribe/bad/", "/confirm/bad/", "/preferences/bad/"])
def test_every_page_has_a_content_security_policy_and_no_inline_script(client, path):
    response = client.get(path)
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert re.search(r"<script(?![^>]*\bsrc=)", response.text) is None
    assert re.search(r"<[^>]+\son[a-z]+\s*=", response.text) is None, "no inline event handlers either"


def test_an_address_stored_twice_in_different_case_still_gets_one_answer(signup, outbox):
    Subscriber.objects.create(email="Ada@example.com", status="unsubscribed")
    Subscriber.objects.create(email="ADA@example.com", status="active")
    assert signup("ada@example.com").status_code == 200
    assert Subscriber.objects.order_by("pk").first().status == "pending"
    assert len(read_outbox(outbox)) == 1


def test_signup_is_answered_even_when_the_broker_is_down(
    client, caplog, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args: object, **kwargs: object) -> None:
        raise kombu.exceptions.OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(signup_task, "apply_async", broker_down)  # what Celery raises when Redis is gone
    with (
        caplog.at_level("ERROR", logger="subscribers.after_response"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post("/subscribe/", {"email": "ada@example.com", "frequency": "daily"})
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert "work after the response failed" in caplog.text and "Connection refused" in caplog.text
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/subscribe/", {"email": "ada@example.com", "frequency": "daily"})
    assert Subscriber.objects.get().status == "pending", "with the broker back, signing up again works"
