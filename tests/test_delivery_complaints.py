"""The bulk-sender rules, enforced: complaints reported by the provider's webhook (through anymail's real view)
pause a running send once they pass DELIVERY_PAUSE_COMPLAINT_RATE of what it delivered, with the reason in the
admin; the dashboard shows each digest's bounce and complaint rates, and the last week's, against 0.1% and 0.3%."""

import base64
import json
from datetime import date

import pytest
from django.urls import reverse

from newsletter.backoffice import actions
from newsletter.models import Delivery, Digest
from newsletter.sending import delivery
from subscribers.models import Subscriber
from tests.admin_support import superuser_client

pytestmark = pytest.mark.clock("2026-11-28T09:00:00+00:00")

SECRET = "postmark-hook:correct-horse-battery"
DELIVERED = 200


@pytest.fixture
def send(transactional_db, settings) -> Digest:
    """A send under way: DELIVERED messages out (provider message ids in the ledger), 50 readers still queued."""
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    settings.DELIVERY_PAUSE_COMPLAINT_RATE, settings.DELIVERY_PAUSE_COMPLAINT_MIN_DELIVERED = 0.01, DELIVERED
    digest = Digest.objects.create(date=date(2026, 11, 28), status=Digest.Status.SENDING)
    people = Subscriber.objects.bulk_create(
        Subscriber(email=f"reader{i}@example.com", status=Subscriber.Status.ACTIVE) for i in range(DELIVERED + 50)
    )
    Delivery.objects.bulk_create(
        Delivery(digest=digest, subscriber=s, status="sent" if i < DELIVERED else "queued", message_id=f"m-{i}")
        for i, s in enumerate(people)
    )
    return digest


def complain(client, i: int) -> None:
    payload = {"RecordType": "SpamComplaint", "MessageStream": "outbound", "ID": 1000 + i, "Type": "SpamComplaint",
               "TypeCode": 512, "MessageID": f"m-{i}", "Email": f"reader{i}@example.com", "From": "digest@example.org",
               "BouncedAt": "2026-11-28T08:03:54Z", "Details": "", "Description": "complaint"}  # fmt: skip
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()
    answer = client.post("/anymail/postmark/tracking/", json.dumps(payload), content_type="application/json",
                         HTTP_AUTHORIZATION=auth)  # fmt: skip
    assert answer.status_code == 200


def test_a_send_pauses_itself_once_complaints_pass_the_limit_and_says_why(client, send, settings):
    complain(client, 0)
    complain(client, 1)  # 2 of 200: 1.0%, at the limit, not past it
    send.refresh_from_db()
    assert (send.status, send.pause_reason) == (Digest.Status.SENDING, "")
    complain(client, 2)
    send.refresh_from_db()
    assert send.status == Digest.Status.PAUSED
    assert send.pause_reason == "complaints at 1.50% (3 of 200 delivered), past 1.00%"
    # The workers stop: a chunk of the readers still queued sends nothing.
    queued = list(Delivery.objects.filter(status="queued").values_list("subscriber_id", flat=True))
    assert delivery.send_chunk(send.pk, queued).sent == 0
    # The editor sees why, in the digest's page and the list.
    admin, _ = superuser_client()
    page = admin.get(reverse("admin:newsletter_digest_change", args=[send.pk])).content.decode()
    assert "complaints at 1.50% (3 of 200 delivered), past 1.00%" in page
    assert "complaints at 1.50%" in admin.get(reverse("admin:newsletter_digest_changelist")).content.decode()
    # Resuming clears it, and the send goes on to the end (into the outbox here).
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    actions.resume(send.pk)
    send.refresh_from_db()
    assert (send.status, send.pause_reason) == (Digest.Status.SENT, "")


def test_a_small_send_is_not_paused_by_its_first_complaints(client, send, settings):
    settings.DELIVERY_PAUSE_COMPLAINT_MIN_DELIVERED = DELIVERED + 1
    for i in range(5):
        complain(client, i)
    send.refresh_from_db()
    assert send.status == Digest.Status.SENDING


def test_the_dashboard_shows_each_digests_rates_and_the_weeks_against_the_lines(client, send):
    complain(client, 0)
    Delivery.objects.filter(message_id="m-1").update(status=Delivery.Status.BOUNCED)
    Delivery.objects.filter(status__in=["sent", "bounced", "complained"]).update(sent_at=send.created_at)
    admin, _ = superuser_client()
    page = admin.get(reverse("admin:newsletter_dashboard")).content.decode()
    row = page[page.index('id="digest-rates"') :]
    assert "2026-11-28" in row and "0.50% (1)" in row  # 1 of 200: past 0.3%
    assert 'class="level-over">0.50% (1)' in row
    assert 'id="week-complaints">0.50%' in page and "1 of 200" in page
    assert "0.1% keep under, 0.3% never reach" in page
