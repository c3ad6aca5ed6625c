"""The emails a reader gets about their subscription (the confirmation link, the data link): template sets under
templates/emails/<name>/, rendered by the "emails" template engine (settings.TEMPLATES)."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from subscribers.models import Subscriber
from subscribers.services import consent_state
from subscribers.tokens import CONFIRM_MAX_AGE_SECONDS, PRIVACY_MAX_AGE_SECONDS, Purpose, make_token

ENGINE = "emails"
DAY_SECONDS = 86_400


def site_link(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def templated_email(name: str, context: dict, to: str) -> EmailMultiAlternatives:
    def part(kind: str) -> str:
        return render_to_string(f"emails/{name}/{kind}", context, using=ENGINE)

    subject = " ".join(part("subject.txt").split())  # one line, whatever the template did
    message = EmailMultiAlternatives(subject, part("body.txt"), settings.DIGEST_FROM_EMAIL, [to])
    message.attach_alternative(part("body.html"), "text/html")
    return message


def confirmation_email(subscriber: Subscriber) -> EmailMultiAlternatives:
    token = make_token(subscriber.pk, Purpose.CONFIRM, state=consent_state(subscriber))
    context = {
        "confirm_url": site_link(f"/confirm/{token}/"),
        "valid_days": CONFIRM_MAX_AGE_SECONDS // DAY_SECONDS,
        "frequency": subscriber.get_frequency_display().lower(),
        "site_url": site_link("/"),
    }
    return templated_email("confirm", context, subscriber.email)


def privacy_email(subscriber: Subscriber) -> EmailMultiAlternatives:
    """The link that downloads or deletes everything we hold about the reader, to their own address only."""
    context = {
        "privacy_url": site_link(f"/privacy/{make_token(subscriber.pk, Purpose.PRIVACY)}/"),
        "valid_minutes": PRIVACY_MAX_AGE_SECONDS // 60,
        "site_url": site_link("/"),
    }
    return templated_email("privacy", context, subscriber.email)
