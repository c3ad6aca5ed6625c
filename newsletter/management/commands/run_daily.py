"""`run_daily [--offline] [--date D]`: fetch, build and send the day's digest. Its exit status says how the send
ended, as send_digest's does (EXIT_* there): 0 when every reader was served, 3 when some failed for good, 4 when
some are still unsent."""

import sys
from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from newsletter.management.commands.send_digest import EXIT_SERVED, verdict
from newsletter.pipeline import run_daily


class Command(BaseCommand):
    help = "Fetch papers, build today's digest and send it to every active subscriber."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--offline", action="store_true", help="read the bundled sample papers, not the network")
        parser.add_argument("--date", type=date.fromisoformat, help="the digest's date (default: today, UTC)")

    def handle(self, *args, offline: bool, date: date | None, **options) -> None:
        day = date or timezone.now().date()
        result = run_daily(day, offline, say=lambda line: self.stdout.write(line))
        status, why = verdict(result.sends, result.digest, day)
        if why:
            self.stdout.write(why)
        outbox = f" outbox={settings.OUTBOX_DIR}" if settings.EMAIL_BACKEND == "newsletter.mail.OutboxBackend" else ""
        self.stdout.write(
            f"date={day} {result.ingest.summary()} digest={result.digest.status} {result.sends.summary()}{outbox}"
        )
        if status != EXIT_SERVED:
            sys.exit(status)
