from django.core.management.base import BaseCommand, CommandError, CommandParser

from papers.schedules import sync_fetch_schedules
from papers.sources import SourceError


class Command(BaseCommand):
    help = "Create a beat schedule (PeriodicTask, editable in the admin) for each source in PAPER_SOURCES."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cron", help="crontab fields for new schedules, UTC (default: FETCH_SCHEDULE)")

    def handle(self, *args, cron: str | None, **options) -> None:
        try:
            added = sync_fetch_schedules(cron=cron)
        except (SourceError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"schedules added: {', '.join(added) or 'none'}")
