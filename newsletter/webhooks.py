"""Provider tracking webhooks: the endpoint, its credentials check, and the receiver that stores each event once
and queues it (what an event does to a reader: newsletter/sending/events.py).

Only the provider EMAIL_BACKEND names has an endpoint, /anymail/<esp>/tracking/ (the .eml outbox and SMTP have
none). It is anymail's own view for that provider, which checks the request's credentials (the basic-auth
secret ANYMAIL_WEBHOOK_SECRET, "user:password", or the provider's signature) and turns the payload into
normalized events; a body anymail cannot read is answered 400 with a log line, not a traceback. An endpoint
whose credentials are not configured refuses every request (503, so the provider retries once they are), and
with DEBUG off the system check below stops every `manage.py` command, `check --deploy` included.

The receiver stores each event once per event id and queues the work: providers retry webhooks that answer
slowly or fail.
"""

import contextlib
import functools
import hashlib
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator

import anymail.urls
from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent, EventType, tracking
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import BadRequest, ImproperlyConfigured, SuspiciousOperation
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse
from django.test import RequestFactory
from django.views.decorators.csrf import csrf_exempt

from newsletter import jobs
from newsletter.models import WebhookEvent
from newsletter.sending.events import DETAIL_LIMIT, HARD_FAILURES

log = logging.getLogger(__name__)

ACTED_ON = (*HARD_FAILURES, EventType.DEFERRED, EventType.COMPLAINED, EventType.UNSUBSCRIBED)
# Bounces a provider reports under "bounced" though the mailbox may recover (Postmark's Type field).
SOFT_BOUNCE_TYPES = ("SoftBounce", "Transient", "DnsError")
ESP_BACKEND = re.compile(r"^anymail\.backends\.(?P<esp>\w+)\.EmailBackend$")
TRACKING_URL_NAME = re.compile(r"^(?P<esp>\w+)_tracking_webhook$")
# What reading a body anymail did not expect raises: not JSON, not UTF-8, a list where an object was due, a
# field missing or of another type, anymail's own complaints about the payload (Amazon SES: "Malformed SNS
# message body"; Postal, MailerSend: an inbound payload posted to the tracking URL).
MALFORMED = (ValueError, KeyError, IndexError, TypeError, AttributeError, AnymailError, ImproperlyConfigured)
LOG_EXCERPT_CHARS = 200  # enough of a refused body to recognise it in the log


# --- The endpoint -------------------------------------------------------------------------------------


def configured_esp() -> str | None:
    """The anymail provider EMAIL_BACKEND names ("postmark"), or None for the outbox and SMTP backends."""
    match = ESP_BACKEND.match(settings.EMAIL_BACKEND)
    return match["esp"] if match and match["esp"] in tracking_views() else None


@functools.cache
def tracking_views() -> dict[str, type]:
    """anymail's tracking view class for every provider it has one for, read from its own URLconf. A provider's
    old name that anymail keeps as a deprecated alias (sendinblue for brevo: a subclass of the new name's view
    that warns on every request) is left out; its backend is deprecated too."""
    views = {}
    for pattern in anymail.urls.urlpatterns:
        match = TRACKING_URL_NAME.match(pattern.name or "")
        if match:
            views[match["esp"]] = pattern.callback.view_class
    return {
        esp: view
        for esp, view in views.items()
        if not any(other is not view and issubclass(view, other) for other in views.values())
    }


@contextlib.contextmanager
def _refused_if_malformed(request: HttpRequest, esp: str) -> Iterator[None]:
    try:
        yield
    except SuspiciousOperation:
        raise  # refused credentials: anymail's 400, logged by Django's security logger
    except MALFORMED as exc:
        excerpt = request.body[:LOG_EXCERPT_CHARS]
        log.warning("%s webhook refused a body it cannot read (%s: %s): %r", esp, type(exc).__name__, exc, excerpt)
        raise BadRequest(f"{esp} webhook body could not be read") from exc


@functools.cache
def _guarded_view(esp: str) -> Callable[..., HttpResponse]:
    """The provider's own view, with a body it cannot read answered 400 (anymail lets it become a 500)."""
    base = tracking_views()[esp]

    class Guarded(base):
        def run_validators(self, request: HttpRequest) -> None:
            with _refused_if_malformed(request, esp):
                super().run_validators(request)

        def parse_events(self, request: HttpRequest) -> list:
            with _refused_if_malformed(request, esp):
                return super().parse_events(request)

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded.as_view()


def credentials_problem(esp: str) -> str:
    """Why the provider's endpoint would take a request that carries no credentials, or "" when it refuses one.
    Asks anymail itself: its view is built from the settings and each of its checks is shown a POST with no auth
    and no signature. One check refusing it is enough; a check that fails on the empty body for another reason
    (Amazon SES reads the body before the auth) says nothing either way."""
    probe = RequestFactory().post(f"/anymail/{esp}/tracking/", data=b"{}", content_type="application/json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anymail warns of open webhooks itself; the answer here says it
        try:
            view = tracking_views()[esp]()
            for validator in view.validators:
                try:
                    validator(view, probe)
                except AnymailWebhookValidationFailure:
                    return ""
                except ImproperlyConfigured:
                    raise
                except Exception:  # noqa: BLE001, S112 - a check the empty body trips up: try the next one
                    continue
        except ImproperlyConfigured as exc:  # anymail's configuration errors: a required signing key unset
            return f"the {esp} tracking webhook is not configured: {exc}"
    return (
        f"the {esp} tracking webhook accepts requests without credentials: set ANYMAIL_WEBHOOK_SECRET "
        "(user:password, also given to the provider) or the provider's signing key"
    )


@csrf_exempt  # providers post without cookies; anymail's view checks the provider's own credentials
def tracking_webhook(request: HttpRequest, esp: str) -> HttpResponse:
    if esp != configured_esp():
        raise Http404("no tracking webhook for this provider")
    problem = credentials_problem(esp)
    if problem:
        log.error("webhook refused: %s", problem)
        return HttpResponse("Webhook credentials are not configured.", status=503, content_type="text/plain")
    return _guarded_view(esp)(request)


@register(Tags.security)
def check_webhook_credentials(app_configs: object = None, **kwargs: object) -> list[CheckMessage]:
    """With DEBUG off, an endpoint without credentials stops every command (migrate, check --deploy)."""
    esp = configured_esp()
    problem = credentials_problem(esp) if esp else ""
    if not problem:
        return []
    hint = "Until then the endpoint answers 503 to every request. README.md, Delivery, Webhooks."
    level = CheckWarning if settings.DEBUG else Error
    return [level(problem, hint=hint, id="newsletter.W001" if settings.DEBUG else "newsletter.E001")]


# --- The events ---------------------------------------------------------------------------------------


def _text(value: object, limit: int) -> str:
    """A field of the provider's event as text: providers send numbers, nulls and objects where text is due."""
    return "" if value is None else str(value)[:limit]


def event_key(event: AnymailTrackingEvent, esp_name: str) -> str:
    """The provider's event id; for providers without one, a hash of what identifies the event."""
    if event.event_id:
        return f"{esp_name}:{event.event_id}"[:200]
    parts = [esp_name, event.event_type, event.message_id, event.recipient, str(event.timestamp)]
    return f"{esp_name}:sha256:{hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()}"


def is_soft(event: AnymailTrackingEvent) -> bool:
    if event.event_type == EventType.DEFERRED:
        return True
    esp_event = event.esp_event if isinstance(event.esp_event, dict) else {}
    return event.event_type == EventType.BOUNCED and esp_event.get("Type") in SOFT_BOUNCE_TYPES


@receiver(tracking, dispatch_uid="newsletter.webhooks.on_tracking_event")
def on_tracking_event(sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: object) -> None:
    if event.event_type not in ACTED_ON:
        return
    detail = " — ".join(str(part) for part in (event.description, event.mta_response) if part)
    try:
        with transaction.atomic():
            stored = WebhookEvent.objects.create(
                event_id=event_key(event, esp_name),
                esp=esp_name[:30],
                event_type=event.event_type,
                recipient=_text(event.recipient, 254),
                message_id=_text(event.message_id, 300),
                detail=detail[:DETAIL_LIMIT],
                soft=is_soft(event),
            )
    except IntegrityError:
        return  # a retry or duplicate of an event we already have
    jobs.queue(jobs.PROCESS_WEBHOOK_EVENT, stored.pk)
