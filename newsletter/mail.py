"""The embedded mail backend: each message becomes one RFC 5322 .eml file in OUTBOX_DIR."""

import uuid
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend


class OutboxBackend(BaseEmailBackend):
    """Writes `<utc timestamp>-<uuid>.eml`; the write is atomic (temp file + rename), so a reader never
    sees half a message and a crash leaves no partial file."""

    def __init__(self, fail_silently: bool = False, outbox_dir: str | Path | None = None, **kwargs) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.outbox_dir = Path(outbox_dir or settings.OUTBOX_DIR)

    def send_messages(self, email_messages: list[EmailMessage]) -> int:
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            try:
                self.write(message)
            except OSError:
                if not self.fail_silently:
                    raise
                continue
            sent += 1
        return sent

    def write(self, message: EmailMessage) -> None:
        mime = message.message()
        name = f"{uuid.uuid4().hex}.eml"
        tmp = self.outbox_dir / f".{name}.tmp"
        tmp.write_bytes(mime.as_bytes(linesep="\r\n"))
        tmp.rename(self.outbox_dir / name)
