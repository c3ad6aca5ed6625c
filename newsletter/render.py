"""Emails as template sets: templates/emails/<name>/{subject.txt, body.txt, body.html}, rendered with Jinja2."""

from dataclasses import dataclass
from email.utils import make_msgid
from functools import cache
from urllib.parse import urlsplit

import jinja2
from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from newsletter.models import Digest
from papers.models import Paper
from papers.ranking import Pick
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, make_token

TEMPLATE_DIR = settings.BASE_DIR / "templates"


@dataclass
class RenderedEmail:
    subject: str
    text: str
    html: str


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def render_email(name: str, context: dict) -> RenderedEmail:
    env = environment()
    subject = env.get_template(f"emails/{name}/subject.txt").render(context)
    return RenderedEmail(
        subject=" ".join(subject.split()),  # one line, whatever the template did
        text=env.get_template(f"emails/{name}/body.txt").render(context),
        html=env.get_template(f"emails/{name}/body.html").render(context),
    )


def build_message(rendered: RenderedEmail, to: str, headers: dict[str, str] | None = None) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=rendered.subject, body=rendered.text, from_email=settings.DIGEST_FROM_EMAIL, to=[to], headers=headers
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


def site_link(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def digest_context(
    digest: Digest, subscriber: Subscriber, trending: list[Paper], picks: list[tuple[Pick, Paper]]
) -> dict:
    for_you_items = [{"paper": paper, "reason": pick.reason} for pick, paper in picks]
    top = trending[0] if trending else (for_you_items[0]["paper"] if for_you_items else None)
    return {
        "date_label": f"{digest.date:%A, %B} {digest.date.day}, {digest.date:%Y}",
        "top_title": top.title if top else "",
        "trending": trending,
        "for_you": for_you_items,
        "archive_url": site_link(f"/digests/{digest.date:%Y-%m-%d}/"),
        "preferences_url": site_link(f"/preferences/{make_token(subscriber.pk, Purpose.PREFERENCES)}/"),
        "unsubscribe_url": site_link(f"/unsubscribe/{make_token(subscriber.pk, Purpose.UNSUBSCRIBE)}/"),
    }


def list_headers(unsubscribe_url: str) -> dict[str, str]:
    domain = urlsplit(settings.SITE_URL).hostname or "localhost"
    return {
        "Message-ID": make_msgid(domain=domain),
        "List-Id": settings.DIGEST_LIST_ID,
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def digest_email(
    digest: Digest, subscriber: Subscriber, trending: list[Paper], picks: list[tuple[Pick, Paper]]
) -> EmailMultiAlternatives:
    """One reader's digest, ready to send; its Message-ID is in `extra_headers`."""
    context = digest_context(digest, subscriber, trending, picks)
    return build_message(render_email("digest", context), subscriber.email, list_headers(context["unsubscribe_url"]))
