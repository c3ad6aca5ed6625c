"""Reader links give least privilege: each signed link does its own job and nothing more. The unsubscribe link
(which mailbox providers receive and keep) unsubscribes and can ask to subscribe again; the preferences link
edits preferences; downloading or deleting the data needs a link mailed on request that works for an hour.
A forged, expired or other-purpose token gets the "This link doesn't work" page on every GET and POST."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings

from subscribers.models import Subscriber, Suppression, email_hash
from subscribers.tokens import Purpose, make_token
from tests.helpers import parts, read_outbox, reader_tokens_in

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
RETIRED_KEY = "a-signing-key-this-deployment-used-once-" + "r" * 20
PURPOSES = (Purpose.CONFIRM, Purpose.PREFERENCES, Purpose.UNSUBSCRIBE, Purpose.PRIVACY)
PREFERENCES_FORM = {"frequency": "weekly", "delivery_hour": "6", "time_zone": "UTC", "papers_per_digest": "3"}
# Every view a reader's link opens: its path (TOKEN stands for the token), the token's purpose, and the body of
# the POST that acts.
READER_VIEWS = [
    ("/confirm/TOKEN/", Purpose.CONFIRM, {}),
    ("/preferences/TOKEN/", Purpose.PREFERENCES, PREFERENCES_FORM),
    ("/preferences/TOKEN/privacy/", Purpose.PREFERENCES, {}),
    ("/privacy/TOKEN/", Purpose.PRIVACY, {}),
    ("/privacy/TOKEN/data.json", Purpose.PRIVACY, {}),
    ("/privacy/TOKEN/delete/", Purpose.PRIVACY, {"confirm": "yes"}),
    ("/unsubscribe/TOKEN/", Purpose.UNSUBSCRIBE, {"List-Unsubscribe": "One-Click"}),
    ("/unsubscribe/TOKEN/resubscribe/", Purpose.UNSUBSCRIBE, {}),
]
# How long each kind of link works; links with no age limit "expire" when the key they were signed with is
# retired from SECRET_KEY_FALLBACKS.
LIFETIME = {Purpose.CONFIRM: timedelta(days=7), Purpose.PRIVACY: timedelta(hours=1)}


def state(subscriber_id: int) -> tuple:
    """Everything a reader link could change about a reader, and what was mailed."""
    row = Subscriber.objects.filter(pk=subscriber_id).values().first()
    return row, list(Suppression.objects.values_list("email_hash", flat=True))


def bad_tokens(subscriber: Subscriber, purpose: str, time_machine) -> dict[str, str]:
    """A forged, an expired and a wrong-purpose token for this view's purpose."""
    fingerprint = {"state": "x"} if purpose == Purpose.CONFIRM else {}
    good = make_token(subscriber.pk, purpose, **fingerprint)
    forged = good[:-1] + ("A" if good[-1] != "A" else "B")
    if purpose in LIFETIME:
        time_machine.move_to(NOW - LIFETIME[purpose] - timedelta(seconds=1), tick=False)
        expired = make_token(subscriber.pk, purpose, **fingerprint)
        time_machine.move_to(NOW, tick=False)
    else:
        current = django_settings.SECRET_KEY
        django_settings.SECRET_KEY = RETIRED_KEY
        expired = make_token(subscriber.pk, purpose)
        django_settings.SECRET_KEY = current
    tokens = {"forged": forged, "expired": expired}
    for other in PURPOSES:
        if other != purpose:
            tokens[f"made for {other}"] = make_token(subscriber.pk, other)
    return tokens


@pytest.mark.parametrize(("path", "purpose", "body"), READER_VIEWS, ids=[v[0] for v in READER_VIEWS])
def test_forged_expired_and_wrong_purpose_tokens_get_the_invalid_link_page(client, outbox, time_machine, path,
                                                                           purpose, body):  # fmt: skip
    time_machine.move_to(NOW, tick=False)
    ada = Subscriber.objects.create(email="ada@example.com", status="active", interests="speech")
    before = state(ada.pk)
    for kind, token in bad_tokens(ada, purpose, time_machine).items():
        url = path.replace("TOKEN", token)
        for method in ("get", "post"):
            response = getattr(client, method)(url, body) if method == "post" else client.get(url)
            assert 400 <= response.status_code < 500, (kind, method, url, response.status_code)
            assert "This link doesn't work" in response.text, (kind, method, url)
    assert state(ada.pk) == before
    assert read_outbox(outbox) == []


@pytest.mark.parametrize("path", ["/preferences/TOKEN/data.json", "/preferences/TOKEN/delete/"])
def test_the_preferences_link_no_longer_reads_or_deletes_data(client, path):
    ada = Subscriber.objects.create(email="ada@example.com", status="active")
    url = path.replace("TOKEN", make_token(ada.pk, Purpose.PREFERENCES))
    for response in (client.get(url), client.post(url, {"confirm": "yes"})):
        assert 400 <= response.status_code < 500 and "This link doesn't work" in response.text
        assert "ada@example.com" not in response.text
    assert Subscriber.objects.filter(pk=ada.pk).exists()


def test_the_unsubscribe_link_unsubscribes_and_resubscribes_and_nothing_more(
    client, outbox, django_capture_on_commit_callbacks
):
    ada = Subscriber.objects.create(email="ada@example.com", status="active", interests="speech")
    token = make_token(ada.pk, Purpose.UNSUBSCRIBE)
    page = client.get(f"/unsubscribe/{token}/")
    assert page.status_code == 200 and page.text.count("<button") == 1
    assert reader_tokens_in(page.text) == {}, "no preferences or data link on the page"
    done = client.post(f"/unsubscribe/{token}/", {"List-Unsubscribe": "One-Click"})
    assert "You're unsubscribed" in done.text and reader_tokens_in(done.text) == {Purpose.UNSUBSCRIBE: {token}}
    ada.refresh_from_db()
    assert ada.status == "unsubscribed"

    again = client.get(f"/unsubscribe/{token}/")
    assert "Subscribe again" in again.text and reader_tokens_in(again.text) == {Purpose.UNSUBSCRIBE: {token}}
    ada.refresh_from_db()
    assert ada.status == "unsubscribed", "showing the page changes nothing"
    with django_capture_on_commit_callbacks(execute=True):
        asked = client.post(f"/unsubscribe/{token}/resubscribe/")
    assert asked.status_code == 200 and "Check your inbox" in asked.text
    ada.refresh_from_db()
    assert ada.status == "pending", "subscribing again asks for confirmation by email"
    [message] = read_outbox(outbox)
    confirm_path = re.search(r"/confirm/[^/\s]+/", parts(message)[0]).group(0)
    assert client.post(confirm_path).status_code == 200
    ada.refresh_from_db()
    assert ada.status == "active" and ada.interests == "speech"


@pytest.mark.parametrize("status", ["active", "pending", "suppressed", "unsubscribed but suppressed by address"])
def test_resubscribing_changes_only_an_unsubscribed_reader(client, outbox, status, django_capture_on_commit_callbacks):
    ada = Subscriber.objects.create(email="ada@example.com", status=status.split()[0])
    if "address" in status:
        Suppression.objects.create(email_hash=email_hash("ada@example.com"), reason="manual")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/unsubscribe/{make_token(ada.pk, Purpose.UNSUBSCRIBE)}/resubscribe/")
    assert response.status_code == 200
    ada.refresh_from_db()
    assert ada.status == status.split()[0] and read_outbox(outbox) == []


def test_pages_opened_by_a_link_carry_no_other_link_s_token(client, signup_confirmed):
    ada, confirm_path = signup_confirmed
    preferences = make_token(ada.pk, Purpose.PREFERENCES)
    confirmed = client.post(confirm_path)
    assert "You're subscribed" in confirmed.text and reader_tokens_in(confirmed.text) == {}
    page = client.get(f"/preferences/{preferences}/")
    assert reader_tokens_in(page.text) == {Purpose.PREFERENCES: {preferences}}


@pytest.fixture
def signup_confirmed(client, outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/subscribe/", {"email": "ada@example.com", "frequency": "daily"})
    [message] = read_outbox(outbox)
    return Subscriber.objects.get(), re.search(r"/confirm/[^/\s]+/", parts(message)[0]).group(0)


def privacy_link(outbox) -> str:
    [message] = [m for m in read_outbox(outbox) if "data" in m["Subject"].lower()]
    text, html = parts(message)
    path = re.search(r"https?://[^/\s]+(/privacy/[^/\s]+/)", text).group(1)
    assert path in html
    return path


def test_export_and_deletion_need_a_fresh_link_mailed_on_request(client, outbox, time_machine,
                                                                 django_capture_on_commit_callbacks):  # fmt: skip
    time_machine.move_to(NOW, tick=False)
    ada = Subscriber.objects.create(email="ada@example.com", status="active", interests="speech")
    preferences = f"/preferences/{make_token(ada.pk, Purpose.PREFERENCES)}/"
    page = client.get(preferences)
    assert "data.json" not in page.text and "/delete/" not in page.text
    with django_capture_on_commit_callbacks(execute=True):
        asked = client.post(f"{preferences}privacy/")
    assert asked.status_code == 302
    assert "We've emailed ada@example.com a link" in client.get(asked["Location"]).text
    [message] = read_outbox(outbox)
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Your Daily Papers data: download or delete"
    path = privacy_link(outbox)

    shown = client.get(path)
    assert shown.status_code == 200 and "Delete for good" in shown.text
    download = client.get(f"{path}data.json")
    assert download.status_code == 200 and json.loads(download.content)["email"] == "ada@example.com"

    time_machine.move_to(NOW + timedelta(hours=1, seconds=1), tick=False)
    late = client.post(f"{path}delete/", {"confirm": "yes"})
    assert late.status_code == 404 and "This link doesn't work" in late.text
    assert Subscriber.objects.filter(pk=ada.pk).exists()

    time_machine.move_to(NOW + timedelta(minutes=30), tick=False)
    assert client.post(f"{path}delete/", {}).status_code == 302, "the tick box is the confirmation"
    gone = client.post(f"{path}delete/", {"confirm": "yes"})
    assert gone.status_code == 200 and "Your data is deleted" in gone.text
    assert not Subscriber.objects.exists()
    assert Suppression.objects.get().email_hash == email_hash("ada@example.com")


def test_asking_for_data_links_is_rate_limited(client, outbox, django_capture_on_commit_callbacks):
    ada = Subscriber.objects.create(email="ada@example.com", status="active")
    path = f"/preferences/{make_token(ada.pk, Purpose.PREFERENCES)}/privacy/"
    with django_capture_on_commit_callbacks(execute=True):
        answers = [client.post(path).status_code for _ in range(5)]
    assert answers == [302, 302, 302, 429, 429]
    assert len(read_outbox(outbox)) == 3


def test_unsubscribing_and_subscribing_again_cannot_flood_an_inbox(client, outbox, django_capture_on_commit_callbacks):
    """Whoever holds the unsubscribe link (a mailbox provider keeps it) could loop: one-click unsubscribe,
    subscribe again, each a confirmation email. Subscribing again counts with sign-ups for that address."""
    ada = Subscriber.objects.create(email="ada@example.com", status="active")
    link = f"/unsubscribe/{make_token(ada.pk, Purpose.UNSUBSCRIBE)}/"
    answers = []
    for _ in range(5):
        client.post(link, {"List-Unsubscribe": "One-Click"})
        with django_capture_on_commit_callbacks(execute=True):
            answers.append(client.post(f"{link}resubscribe/").status_code)
    assert answers == [200, 200, 200, 429, 429]
    assert len(read_outbox(outbox)) == 3  # SUBSCRIBE_RATE_PER_ADDRESS
