"""Provider webhooks through anymail's real tracking views and signal: payloads as the providers post them.
Only the provider EMAIL_BACKEND names has an endpoint; without credentials nothing changes; a body nobody can
read is a 400 with a log line, never a 500."""

import base64
import hashlib
import hmac
import json
import logging
from datetime import date

import anymail.urls
import pytest

from newsletter.models import Delivery, Digest, WebhookEvent
from subscribers.models import Subscriber, Suppression, email_hash
from tests.helpers import manage

pytestmark = pytest.mark.clock("2026-11-28T07:00:00+00:00")

URL = "/anymail/postmark/tracking/"
SECRET = "postmark-hook:correct-horse-battery"
MESSAGE_ID = "883953f4-6105-42a2-a16a-77a8eac79483"


def use_provider(settings, esp: str, **anymail: str) -> None:
    settings.EMAIL_BACKEND = f"anymail.backends.{esp}.EmailBackend"
    settings.ANYMAIL = anymail


@pytest.fixture
def reader(transactional_db, settings) -> Subscriber:
    use_provider(settings, "postmark", WEBHOOK_SECRET=SECRET)
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


# --- Which endpoints exist, and who may call them --------------------------------------------------------

MAILGUN_KEY = "mailgun-webhook-signing-key"
MAILERSEND_KEY = "mailersend-signing-secret"
# The credentials each provider's endpoint is configured with here: the shared basic-auth secret, and the
# signing key of the providers that sign their webhooks.
CREDENTIALS = {
    "WEBHOOK_SECRET": SECRET,
    "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
    "MAILERSEND_SIGNING_SECRET": MAILERSEND_KEY,
    "MANDRILL_WEBHOOK_KEY": "mandrill-webhook-key",
    "POSTAL_WEBHOOK_KEY": "postal-public-key",
    "UNISENDER_GO_API_KEY": "unisender-go-api-key",
}
NOT_INSTALLED = {"amazon_ses": "boto3"}  # anymail needs this package for the provider's webhook
# Every provider anymail has a tracking webhook for, as its own URLconf names them.
PROVIDERS = sorted(p.name.removesuffix("_tracking_webhook") for p in anymail.urls.urlpatterns
                   if p.name.endswith("_tracking_webhook"))  # fmt: skip
# anymail's old names for a provider, kept as deprecated aliases that warn on every request: no endpoint of ours.
DEPRECATED_ALIASES = {"sendinblue": "brevo"}


def basic_auth(secret: str = SECRET) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


MAILGUN_TOKEN = "5a1b2c3d4e5f"  # Mailgun's per-event random string, signed with the timestamp


def mailgun_signed(event_data: dict, key: str = MAILGUN_KEY) -> dict:
    timestamp, token = "1795942800", MAILGUN_TOKEN
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event_data}


# One real bounce per provider, for john@example.com, and what makes it credible to our endpoint.
FORGED = {
    "postmark": (bounce(), basic_auth()),
    "sendgrid": (
        [
            {
                "email": "john@example.com",
                "timestamp": 1795942800,
                "event": "bounce",
                "sg_event_id": "c2VuZGdyaWQtZXZlbnQ",
                "sg_message_id": MESSAGE_ID,
                "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
                "status": "5.1.1",
                "type": "bounce",
            }
        ],
        basic_auth(),
    ),
    "mailjet": (
        {
            "event": "bounce",
            "time": 1795942800,
            "MessageID": 1234567890,
            "Message_GUID": "1ab23cd4-e567-8901-2345-6789f0gh1i2j",
            "email": "john@example.com",
            "blocked": False,
            "hard_bounce": True,
            "error_related_to": "recipient",
            "error": "user unknown",
        },
        basic_auth(),
    ),
    "mailgun": (
        mailgun_signed(
            {
                "event": "failed",
                "severity": "permanent",
                "reason": "bounce",
                "recipient": "john@example.com",
                "timestamp": 1795942800.0,
                "id": "G9Bn5sl1TC6nu79C8C0bwg",
                "message": {"headers": {"message-id": MESSAGE_ID}},
                "delivery-status": {"code": 550, "message": "No such user", "description": ""},
            }
        ),
        basic_auth(),  # checked too when the secret is set, on top of Mailgun's signature
    ),
}


def forged_post(client, esp: str, payload, headers: dict[str, str]):
    return client.post(f"/anymail/{esp}/tracking/", data=json.dumps(payload), content_type="application/json",
                       **headers)  # fmt: skip


def nothing_changed() -> bool:
    return (
        Subscriber.objects.get().status == Subscriber.Status.ACTIVE
        and not WebhookEvent.objects.exists()
        and not Suppression.objects.exists()
        and Delivery.objects.get().status == Delivery.Status.SENT
    )


@pytest.mark.parametrize("backend", ["newsletter.mail.OutboxBackend", "newsletter.mail.SMTPBackend", "postmark"])
def test_only_the_provider_email_backend_names_has_an_endpoint(client, reader, settings, backend):
    if "." not in backend:
        use_provider(settings, backend, **CREDENTIALS)
    else:
        settings.EMAIL_BACKEND, settings.ANYMAIL = backend, CREDENTIALS
    for esp in PROVIDERS:
        response = client.post(f"/anymail/{esp}/tracking/", data="[1]", content_type="application/json", **basic_auth())
        assert response.status_code == (400 if esp == backend else 404), esp  # 400: there, and it reads no list
    assert client.post("/anymail/postmark/inbound/", **basic_auth()).status_code == 404, "no inbound endpoints"


@pytest.mark.parametrize(("alias", "esp"), DEPRECATED_ALIASES.items())
def test_a_deprecated_provider_alias_has_no_endpoint_its_new_name_has(client, reader, settings, alias, esp):
    use_provider(settings, alias, **CREDENTIALS)
    assert client.post(f"/anymail/{alias}/tracking/", data="[1]", content_type="application/json").status_code == 404
    use_provider(settings, esp, **CREDENTIALS)
    response = client.post(f"/anymail/{esp}/tracking/", data="[1]", content_type="application/json", **basic_auth())
    assert response.status_code == 400  # there, and it reads no list


@pytest.mark.parametrize("esp", sorted(FORGED))
def test_a_real_event_with_credentials_acts(client, reader, settings, esp):
    """The payloads below are ones the provider's own view reads: with the credentials they suppress."""
    use_provider(settings, esp, **CREDENTIALS)
    payload, headers = FORGED[esp]
    assert forged_post(client, esp, payload, headers).status_code == 200
    assert Subscriber.objects.get().status == Subscriber.Status.SUPPRESSED
    assert Suppression.objects.get().email_hash == email_hash("john@example.com")


@pytest.mark.parametrize("esp", sorted(FORGED))
def test_forged_events_without_credentials_change_nothing(client, reader, settings, esp):
    payload, _ = FORGED[esp]
    use_provider(settings, esp)  # nothing configured: the endpoint refuses everything
    assert forged_post(client, esp, payload, {}).status_code == 503
    use_provider(settings, esp, **CREDENTIALS)  # configured: a request without the credentials is refused
    forged = mailgun_signed(payload["event-data"], key="guessed") if esp == "mailgun" else payload
    assert forged_post(client, esp, forged, basic_auth("hook:guessed")).status_code == 400
    assert forged_post(client, esp, forged, {}).status_code == 400
    assert nothing_changed()


MALFORMED_BODIES = {
    "not json": b"{not json",
    "empty": b"",
    "a list of numbers": b"[1,2,3]",
    "invalid UTF-8": b'{"RecordType": "Bounce", "Email": "\xff\xfe@example.com"}',
}
WRONG_SHAPES = {
    "a string": b'"bounce"',
    "null": b"null",
    "an empty object": b"{}",
    "numbers for text": b'{"RecordType": 7, "Type": [], "Email": 5, "event": 3, "ID": {"a": 1}}',
    "a list of lists": b'[["bounce", "john@example.com"]]',
    "events of the wrong type": b'[{"event": ["bounce"], "email": {"x": 1}, "timestamp": "soon"}]',
    "nested nonsense": b'{"event-data": [1], "signature": "x", "Type": "Notification", "Message": 5}',
}


def signed_headers(esp: str, body: bytes) -> dict[str, str]:
    """Basic auth, and for MailerSend (which signs the raw body) a valid signature: the body gets parsed."""
    headers = basic_auth()
    if esp == "mailersend":
        headers["HTTP_SIGNATURE"] = hmac.new(MAILERSEND_KEY.encode(), body, hashlib.sha256).hexdigest()
    return headers


@pytest.mark.parametrize("esp", sorted(set(PROVIDERS) - set(NOT_INSTALLED) - set(DEPRECATED_ALIASES)))
def test_bodies_nobody_can_read_get_400_and_a_log_line_from_every_provider(client, reader, settings, caplog, esp):
    use_provider(settings, esp, **CREDENTIALS)
    for name, body in (MALFORMED_BODIES | WRONG_SHAPES).items():
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            response = client.post(f"/anymail/{esp}/tracking/", data=body, content_type="application/json",
                                   **signed_headers(esp, body))  # fmt: skip
        if name in MALFORMED_BODIES or response.status_code != 200:  # some providers read a stray shape as no events
            assert response.status_code == 400, (esp, name, response.status_code)
            assert any(r.levelno >= logging.WARNING for r in caplog.records), (esp, name)
    assert nothing_changed()


def test_a_malformed_body_is_logged_with_what_was_wrong(client, reader, caplog):
    with caplog.at_level(logging.WARNING, logger="newsletter.webhooks"):
        response = client.post(URL, data=b"[1,2,3]", content_type="application/json", **basic_auth())
    assert response.status_code == 400
    [line] = [r.getMessage() for r in caplog.records if r.name == "newsletter.webhooks"]
    assert "postmark webhook refused a body it cannot read" in line and "[1,2,3]" in line


@pytest.mark.parametrize("esp", sorted(NOT_INSTALLED))
def test_a_provider_whose_package_is_missing_is_refused_not_a_500(client, reader, settings, esp):
    use_provider(settings, esp, **CREDENTIALS)
    assert client.post(f"/anymail/{esp}/tracking/", data=b"{}", content_type="application/json",
                       **basic_auth()).status_code == 503  # fmt: skip


def test_mailgun_without_its_signing_key_refuses_every_request_cleanly(client, reader, settings, caplog):
    use_provider(settings, "mailgun", WEBHOOK_SECRET=SECRET)
    payload, _ = FORGED["mailgun"]
    with caplog.at_level(logging.ERROR, logger="newsletter.webhooks"):
        assert forged_post(client, "mailgun", payload, basic_auth()).status_code == 503
    assert "MAILGUN_WEBHOOK_SIGNING_KEY" in caplog.text
    assert nothing_changed()


# --- The system check: production refuses to start with an open endpoint ---------------------------------

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-long-random-production-secret-" + "x" * 40,
    "SITE_URL": "https://papers.example.org",
    "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
    "ANYMAIL_POSTMARK_SERVER_TOKEN": "postmark-server-token",
}


def test_check_deploy_fails_without_the_webhook_secret_and_passes_with_it():
    refused = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert refused.returncode != 0
    assert "newsletter.E001" in refused.stderr and "ANYMAIL_WEBHOOK_SECRET" in refused.stderr
    passed = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, ANYMAIL_WEBHOOK_SECRET=SECRET)
    assert passed.returncode == 0, passed.stdout + passed.stderr


def test_check_deploy_asks_mailgun_for_its_signing_key():
    mailgun = PRODUCTION | {"EMAIL_BACKEND": "anymail.backends.mailgun.EmailBackend"}
    refused = manage("check", "--deploy", **mailgun, ANYMAIL_WEBHOOK_SECRET=SECRET)
    assert refused.returncode != 0 and "MAILGUN_WEBHOOK_SIGNING_KEY" in refused.stderr
    passed = manage("check", "--deploy", "--fail-level", "WARNING", **mailgun,
                    ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY=MAILGUN_KEY)  # fmt: skip
    assert passed.returncode == 0, passed.stdout + passed.stderr


def test_every_command_refuses_to_start_in_production_with_an_open_endpoint():
    result = manage("migrate", "--check", **PRODUCTION)
    assert result.returncode != 0 and "newsletter.E001" in result.stderr
