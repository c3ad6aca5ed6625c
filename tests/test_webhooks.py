"""Provider webhooks through anymail's real tracking view and signal: Postmark payloads as Postmark posts them."""

import base64
import json
from datetime import date

import pytest

from newsletter.models import Delivery, Digest, WebhookEvent
from subscribers.models import Subscriber, Suppression, email_hash

pytestmark = pytest.mark.clock("2026-11-28T07:00:00+00:00")

URL = "/anymail/postmark/tracking/"
SECRET = "postmark-hook:correct-horse-battery"
MESSAGE_ID = "883953f4-6105-42a2-a16a-77a8eac79483"


@pytest.fixture
def reader(transactional_db, settings) -> Subscriber:
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    settings.DELIVERY_SOFT_BOUNCE_LIMIT = 3
    reader = Subscriber.objects.create(email="John@example.com", status=Subscriber.Status.ACTIVE)
    digest = Digest.objects.create(date=date(2026, 11, 28), status=Digest.Status.SENT)
    Delivery.objects.create(digest=digest, subscriber=reader, status=Delivery.Status.SENT, message_id=MESSAGE_ID)
    return reader


def bounce(kind: str = "HardBounce", event_id: int = 4323372036854775807, **fields) -> dict:
    return {
        "RecordType": "SpamComplaint" if kind == "SpamComplaint" else "Bounce",
        "MessageStream": "outbound",
        "ID": event_id,
        "Type": kind,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "digest",
        "MessageID": MESSAGE_ID,
        "Metadata": {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": "john@example.com",
        "From": "digest@example.org",
        "BouncedAt": "2026-11-28T08:03:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Trending today",
    } | fields


def post(client, payload: dict, secret: str | None = SECRET):
    headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()} if secret else {}
    return client.post(URL, data=json.dumps(payload), content_type="application/json", **headers)


def test_a_hard_bounce_suppresses_the_address_at_once(client, reader):
    assert post(client, bounce()).status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.SUPPRESSED
    suppression = Suppression.objects.get()
    assert suppression.email_hash == email_hash("john@example.com") and suppression.reason == "bounce"
    row = Delivery.objects.get()
    assert row.status == Delivery.Status.BOUNCED and "550 5.1.1" in row.error


def test_a_complaint_suppresses_and_marks_the_delivery(client, reader):
    assert post(client, bounce("SpamComplaint", event_id=42)).status_code == 200
    assert Subscriber.objects.get().status == Subscriber.Status.SUPPRESSED
    assert Suppression.objects.get().reason == Suppression.Reason.COMPLAINT
    assert Delivery.objects.get().status == Delivery.Status.COMPLAINED


def test_soft_bounces_count_up_to_the_threshold(client, reader):
    for event_id in (1, 2):
        post(client, bounce("SoftBounce", event_id=event_id, Details="smtp;452 4.2.2 Mailbox full"))
    reader.refresh_from_db()
    assert (reader.soft_bounces, reader.status) == (2, Subscriber.Status.ACTIVE)
    assert not Suppression.objects.exists()
    post(client, bounce("SoftBounce", event_id=3, Details="smtp;452 4.2.2 Mailbox full"))
    reader.refresh_from_db()
    assert (reader.soft_bounces, reader.status) == (3, Subscriber.Status.SUPPRESSED)
    assert "3 soft bounces" in Suppression.objects.get().detail
    assert Delivery.objects.get().status == Delivery.Status.SENT  # the message itself was not refused for good


def test_a_provider_retrying_the_same_event_is_counted_once(client, reader):
    for _ in range(3):
        assert post(client, bounce("SoftBounce", event_id=7)).status_code == 200
    reader.refresh_from_db()
    assert reader.soft_bounces == 1 and reader.status == Subscriber.Status.ACTIVE
    assert WebhookEvent.objects.count() == 1


def test_a_provider_side_unsubscribe_unsubscribes(client, reader):
    payload = {
        "RecordType": "SubscriptionChange",
        "MessageID": MESSAGE_ID,
        "ServerID": 23,
        "MessageStream": "outbound",
        "ChangedAt": "2026-11-28T10:53:34.416071Z",
        "Recipient": "john@example.com",
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Tag": "digest",
        "Metadata": {},
    }
    assert post(client, payload).status_code == 200
    assert post(client, payload).status_code == 200  # no event id: de-duplicated by the event's content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED and reader.unsubscribed_at
    assert WebhookEvent.objects.count() == 1 and not Suppression.objects.exists()


@pytest.mark.parametrize("secret", [None, "postmark-hook:wrong", "someone:correct-horse-battery"])
def test_without_the_shared_secret_nothing_happens(client, reader, secret):
    assert post(client, bounce(), secret=secret).status_code == 400
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE
    assert not WebhookEvent.objects.exists() and not Suppression.objects.exists()


def test_opens_and_deliveries_are_not_stored(client, reader):
    delivered = {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": MESSAGE_ID,
        "Recipient": "john@example.com",
        "Tag": "digest",
        "DeliveredAt": "2026-11-28T08:00:01Z",
        "Details": "Test delivery webhook details",
        "Metadata": {},
    }
    assert post(client, delivered).status_code == 200
    assert not WebhookEvent.objects.exists()
