"""Small helpers the tests share: reading the outbox as a person's mail client would."""

import email
from email.message import EmailMessage
from email.policy import default
from pathlib import Path


def read_outbox(outbox: Path) -> list[EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=default) for p in sorted(outbox.glob("*.eml"))]


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html
