"""Nobody but the reader acts for the reader. Each attack on readers' trust, replayed as it was reproduced
against the product, with the safe outcome it meets now. The exhaustive tables live beside the features:
tests/test_webhooks.py, test_reader_links.py, test_admin_reader_keys.py, test_admin_signin.py,
test_get_changes_nothing.py, test_render_unsafe_text.py and, in a real browser, test_browser_scanner.py."""

import io
import json
import re
import secrets
import sys
from urllib.parse import urlencode

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_started
from django.db import close_old_connections
from django.test import Client
from django.urls import reverse

from newsletter.emails import render
from newsletter.models import Delivery, Digest, DigestPaper, WebhookEvent
from papers import caches
from papers.models import Paper
from papers.ranking import Pick
from subscribers.models import Subscriber, Suppression
from subscribers.tokens import Purpose, make_token
from tests.admin_support import MORNING, PASSWORD, editor_client, make_morning
from tests.helpers import parts, read_outbox, reader_tokens_in
from tests.test_webhooks import FORGED, SECRET, basic_auth, bounce, use_provider

pytestmark = pytest.mark.clock("2026-11-28T07:00:00+00:00")


@pytest.fixture
def john(db) -> Subscriber:
    """The reader the providers' sample events name."""
    john = Subscriber.objects.create(email="john@example.com", status="active", interests="speech")
    digest = Digest.objects.create(date=MORNING.date(), status=Digest.Status.SENT)
    Delivery.objects.create(digest=digest, subscriber=john, status=Delivery.Status.SENT, message_id="m1")
    return john


def untouched(reader: Subscriber) -> bool:
    reader_now = Subscriber.objects.filter(pk=reader.pk).first()
    return (
        reader_now is not None
        and reader_now.status == "active"
        and not Suppression.objects.exists()
        and not WebhookEvent.objects.exists()
    )


# --- Provider webhooks --------------------------------------------------------------------------------


@pytest.mark.parametrize("record", ["HardBounce", "SpamComplaint", "SubscriptionChange"])
def test_a_made_up_postmark_event_without_the_secret_changes_nothing(client, john, settings, record):
    use_provider(settings, "postmark")  # ANYMAIL_WEBHOOK_SECRET unset, the default
    payload = bounce(record) if record != "SubscriptionChange" else {"RecordType": record, "Recipient": john.email,
                                                                      "SuppressSending": True}  # fmt: skip
    assert client.post("/anymail/postmark/tracking/", payload, content_type="application/json").status_code == 503
    assert untouched(john)


@pytest.mark.parametrize("esp", ["sendgrid", "mailjet"])
def test_the_same_through_sendgrid_and_mailjet(client, john, settings, esp):
    payload, _ = FORGED[esp]
    url = f"/anymail/{esp}/tracking/"
    use_provider(settings, "postmark", WEBHOOK_SECRET=SECRET)  # another provider configured: no such endpoint
    assert client.post(url, json.dumps(payload), content_type="application/json").status_code == 404
    use_provider(settings, esp)  # this one, without its secret
    assert client.post(url, json.dumps(payload), content_type="application/json").status_code == 503
    assert untouched(john)


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1,2,3]", b'{"Email": "\xff\xfe"}'])
def test_malformed_bodies_with_the_right_credentials_are_a_400_not_a_500(client, john, settings, body):
    use_provider(settings, "postmark", WEBHOOK_SECRET=SECRET)
    response = client.post("/anymail/postmark/tracking/", body, content_type="application/json", **basic_auth())
    assert response.status_code == 400
    assert untouched(john)


def test_mailgun_without_its_signing_key_refuses_instead_of_failing(client, john, settings):
    use_provider(settings, "mailgun")
    payload, _ = FORGED["mailgun"]
    response = client.post("/anymail/mailgun/tracking/", json.dumps(payload), content_type="application/json")
    assert response.status_code == 503
    assert untouched(john)


# --- Reader links -------------------------------------------------------------------------------------


def test_the_list_unsubscribe_url_leads_to_no_preferences_export_or_deletion(client, john):
    unsubscribe = f"/unsubscribe/{make_token(john.pk, Purpose.UNSUBSCRIBE)}/"
    page = client.get(unsubscribe).text
    assert "/preferences/" not in page and "data.json" not in page and "delete" not in page.lower()
    assert set(reader_tokens_in(page)) <= {Purpose.UNSUBSCRIBE}


def test_a_forged_token_cannot_delete_a_reader(client, john):
    real = make_token(john.pk, Purpose.PREFERENCES)
    forged = real[:-1] + ("A" if real[-1] != "A" else "B")
    for path in (f"/preferences/{forged}/delete/", f"/privacy/{forged}/delete/"):
        response = client.post(path, {"confirm": "yes"})
        assert 400 <= response.status_code < 500 and "This link doesn't work" in response.text
        assert "Your data is deleted" not in response.text
    assert client.post(f"/preferences/{real}/delete/", {"confirm": "yes"}).status_code == 410, "nor a real one"
    assert untouched(john)


# --- Editors never hold a reader's keys ---------------------------------------------------------------


@pytest.fixture
def morning(db):
    with time_machine.travel(MORNING, tick=False):
        yield make_morning()


def test_an_editor_s_preview_and_test_email_give_no_way_into_a_reader_s_data(morning, outbox):
    editor, _ = editor_client()
    preview = reverse("admin:newsletter_digest_preview", args=[morning.digest.pk])
    page = editor.get(preview, {"subscriber": morning.ada.email}).text
    act = reverse("admin:newsletter_digest_act", args=[morning.digest.pk, "send_test"])
    editor.post(f"{act}?subscriber={morning.ada.email}")
    [message] = read_outbox(outbox)
    test_email = [str(message["List-Unsubscribe"]), *parts(message)]
    assert reader_tokens_in(page) == {} and reader_tokens_in("\n".join(test_email)) == {}
    stranger = Client()  # whatever links the editor has, without a login
    for path in set(re.findall(r"/(?:preferences|unsubscribe)/[\w.:-]+/", page + "\n".join(test_email))):
        assert stranger.get(f"{path}").status_code == 404
        assert stranger.post(f"{path}delete/", {"confirm": "yes"}).status_code in (404, 410)
    assert Subscriber.objects.filter(pk=morning.ada.pk, status="active").exists()


# --- Sign-in throttling -------------------------------------------------------------------------------


def sign_in(username: str, password: str, address: str):
    form = {"username": username, "password": password, "next": "/admin/"}
    return Client().post(reverse("admin:login"), form, REMOTE_ADDR=address)


@pytest.fixture
def staff(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    User.objects.create_superuser("eve", "eve@example.com", PASSWORD)


def test_five_wrong_passwords_for_admin_do_not_lock_the_real_admin_out(staff):
    for _ in range(5):
        sign_in("admin", "guess", "203.0.113.9")
    assert sign_in("admin", PASSWORD, "198.51.100.7")["Location"] == "/admin/"


def test_twenty_failures_from_one_address_do_not_lock_out_the_staff_behind_it(staff):
    for n in range(20):
        sign_in(f"user{n}", "guess", "192.0.2.10")
    assert sign_in("admin", PASSWORD, "192.0.2.10")["Location"] == "/admin/"
    assert sign_in("eve", PASSWORD, "192.0.2.10")["Location"] == "/admin/"


# --- Scanners and GETs change nothing -----------------------------------------------------------------


def test_opening_a_confirmation_link_confirms_nothing(client, db, outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/subscribe/", {"email": "pat@example.com", "frequency": "daily"})
    [message] = read_outbox(outbox)
    link = re.search(r"/confirm/[^/\s]+/", parts(message)[0]).group(0)
    page = client.get(link)
    assert page.status_code == 200 and "<script" not in page.text, "no page acts on load"
    assert Subscriber.objects.get().status == "pending"
    assert client.post(link).status_code == 200 and Subscriber.objects.get().status == "active", "a click does"


def test_opening_today_s_digest_in_the_admin_keeps_the_editor_s_edits(morning):
    editor, user = editor_client()
    dropped = DigestPaper.objects.filter(digest=morning.digest).order_by("position").last()
    dropped.delete()  # the editor's edit: one paper out of today's draft
    edited = list(DigestPaper.objects.filter(digest=morning.digest).values_list("pk", "paper_id"))
    today = reverse("admin:newsletter_digest_today")
    assert editor.get(today).status_code == 302  # an editor's browser sent there by any page
    cross_site = Client(enforce_csrf_checks=True)
    cross_site.force_login(user)
    assert cross_site.post(today).status_code == 403
    assert list(DigestPaper.objects.filter(digest=morning.digest).values_list("pk", "paper_id")) == edited


# --- Text and timing ----------------------------------------------------------------------------------


def test_nul_and_right_to_left_override_from_a_title_reach_neither_subject_nor_body(db, outbox):
    Paper.objects.create(canonical_id="2611.00002", title="Scaling\u202e Laws", abstract="Bigger is better.")
    paper = Paper.objects.get()
    paper.title = f"\x00{paper.title}"
    digest = Digest.objects.create(date=MORNING.date(), status=Digest.Status.SENDING)
    reader = Subscriber.objects.create(email="ada@example.com", status="active")
    caches.clear_all()
    render.digest_email(digest, reader, [paper], [(Pick(paper.pk, 1.0, "x"), paper)]).send()
    [message] = read_outbox(outbox)
    for part in (str(message["Subject"]), *parts(message)):
        assert "\x00" not in part and "\u202e" not in part and "Scaling Laws" in part


def wsgi_sign_up(email: str) -> tuple[object, WSGIHandler]:
    """A sign-up POST through Django's WSGI handler, as a server runs it: the response before it is closed."""
    secret = secrets.token_hex(16)  # a CSRF secret, in the cookie and the form alike
    body = urlencode({"email": email, "frequency": "daily", "csrfmiddlewaretoken": secret}).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/subscribe/", "SERVER_NAME": "testserver", "SERVER_PORT": "80",
               "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "wsgi.url_scheme": "http",
               "CONTENT_TYPE": "application/x-www-form-urlencoded", "HTTP_COOKIE": f"csrftoken={secret}",
               "REMOTE_ADDR": "198.51.100.7", "wsgi.errors": sys.stderr}  # fmt: skip
    request_started.disconnect(close_old_connections)  # as Django's test client does: keep the test's connection
    try:
        return WSGIHandler()(environ, lambda status, headers: None)
    finally:
        request_started.connect(close_old_connections)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("state", ["new", "pending", "active", "unsubscribed", "suppressed"])
def test_in_process_sign_up_answers_before_any_work_that_depends_on_the_address(outbox, state):
    """In-process (no Redis) the confirmation was rendered and written inside the request for new and pending
    addresses only. Now the answer is complete with nothing done; the work starts once it is closed."""
    if state != "new":
        Subscriber.objects.create(email=f"{state}@example.com", status=state)
    before = list(Subscriber.objects.values_list("email", "status", "requested_at"))
    response = wsgi_sign_up(f"{state}@example.com")
    assert response.status_code == 200 and b"Check your inbox" in b"".join(response)
    assert list(Subscriber.objects.values_list("email", "status", "requested_at")) == before
    assert read_outbox(outbox) == []
    response.close()  # the server has sent the last byte
    mailed = state in ("new", "pending", "unsubscribed")
    assert len(read_outbox(outbox)) == (1 if mailed else 0)
