"""Small helpers the tests share: reading the outbox as a person's mail client would, running manage.py."""

import email
import os
import subprocess
import sys
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a production environment sets itself: a test's run of manage.py starts from the shell's environment
# without them, then sets what it means to show.
PRODUCTION_VARIABLES = {"DEBUG", "SECRET_KEY", "SITE_URL", "EMAIL_BACKEND"}


def read_outbox(outbox: Path) -> list[EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=default) for p in sorted(outbox.glob("*.eml"))]


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`python manage.py ARGS` in a fresh process, with the shell's environment less PRODUCTION_VARIABLES and
    ANYMAIL_*, plus `env`."""
    inherited = {k: v for k, v in os.environ.items() if k not in PRODUCTION_VARIABLES and not k.startswith("ANYMAIL_")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=inherited | env, capture_output=True, text=True, timeout=120
    )
