"""Small helpers the tests share: reading the outbox as a person's mail client would, running manage.py."""

import email
import os
import re
import subprocess
import sys
import time
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a production environment sets itself: a test's run of manage.py starts from the shell's environment
# without them, then sets what it means to show.
PRODUCTION_VARIABLES = {"DEBUG", "SECRET_KEY", "SITE_URL", "EMAIL_BACKEND"}
# pyproject's filterwarnings for the processes the tests start (workers, manage.py, servers): deprecations are
# errors there too. PendingDeprecationWarning covers Django's RemovedInDjango61Warning (70 from Django 6.0), which
# PYTHONWARNINGS cannot name (it is read before Django can be imported).
WARNINGS_AS_ERRORS = "error::DeprecationWarning,error::PendingDeprecationWarning"


def read_outbox(outbox: Path) -> list[EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=default) for p in sorted(outbox.glob("*.eml"))]


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


# A server sends confirmation and data-link emails after its response: a browser test waits this long at most
# for the file to appear (loopback, milliseconds in practice).
OUTBOX_WAIT_SECONDS = 10
OUTBOX_POLL_SECONDS = 0.05


def wait_for_outbox(outbox: Path, count: int) -> list[EmailMessage]:
    """The outbox once it holds `count` messages (a live server writes them after answering the request)."""
    deadline = time.monotonic() + OUTBOX_WAIT_SECONDS
    while len(list(outbox.glob("*.eml"))) < count and time.monotonic() < deadline:
        time.sleep(OUTBOX_POLL_SECONDS)
    messages = read_outbox(outbox)
    assert len(messages) == count, f"expected {count} messages in the outbox, found {len(messages)}"
    return messages


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`python manage.py ARGS` in a fresh process, with the shell's environment less PRODUCTION_VARIABLES and
    ANYMAIL_*, plus `env`."""
    inherited = {k: v for k, v in os.environ.items() if k not in PRODUCTION_VARIABLES and not k.startswith("ANYMAIL_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=inherited | env, capture_output=True, text=True, timeout=120
    )


# Anything that could be a signed token, in a page, an attribute (srcdoc, href) or a header.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_\-.:]{20,}")
NO_AGE_LIMIT = 10**10  # seconds: a token found anywhere counts, however old


def reader_tokens_in(text: str) -> dict[str, set[str]]:
    """Every string in `text` that verifies as a reader token for any purpose (age and state not checked), by
    purpose."""
    from subscribers.tokens import Purpose, read_token

    purposes = (Purpose.CONFIRM, Purpose.PREFERENCES, Purpose.UNSUBSCRIBE, Purpose.PRIVACY, Purpose.RATE)
    found: dict[str, set[str]] = {}
    for candidate in set(TOKEN_SHAPE.findall(text)):
        for piece in {candidate, *candidate.strip(".:").split("/")}:
            for purpose in purposes:
                if read_token(piece, purpose, max_age=NO_AGE_LIMIT) is not None:
                    found.setdefault(purpose, set()).add(piece)
    return found


# Rows a GET may write: a signed-in admin's session.
UNWATCHED_MODELS = {"sessions.Session"}


def database_snapshot() -> dict[str, list[dict]]:
    """Every row of every table (but UNWATCHED_MODELS): what a reader's state is made of, and everything else."""
    from django.apps import apps

    return {
        model._meta.label: list(model._base_manager.order_by("pk").values())
        for model in apps.get_models()
        if model._meta.managed and model._meta.label not in UNWATCHED_MODELS
    }


def changed_tables(before: dict[str, list[dict]], after: dict[str, list[dict]]) -> list[str]:
    return [label for label in before if after.get(label) != before[label]]
