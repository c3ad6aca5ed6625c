from datetime import date

from django.core.management.base import BaseCommand, CommandParser

from papers.export import export_lines


class Command(BaseCommand):
    help = "Papers as JSON Lines on stdout, one paper a line (see papers/export.py for the keys)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=date.fromisoformat, help="only papers first seen on or after this day")

    def handle(self, *args, since: date | None, **options) -> None:
        for line in export_lines(since):
            self.stdout.write(line)
