"""Emails as template sets: templates/emails/<name>/{subject.txt, body.txt, body.html}, rendered with Jinja2."""

from dataclasses import dataclass
from functools import cache

import jinja2
from django.conf import settings
from django.core.mail import EmailMultiAlternatives

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
