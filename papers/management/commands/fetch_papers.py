from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from papers.ingest import IngestCounts, fetch_and_ingest
from papers.sources import SourceError


class Command(BaseCommand):
    help = (
        "Fetch papers from sources (hf, arxiv:cs.LG+cs.CL, arxiv-api:2406.12345, feed:https://..., json) "
        "into the database. Ends with: fetched=N created=N updated=N skipped=N errors=N"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sources", nargs="+", metavar="SOURCE")
        parser.add_argument(
            "--date",
            type=date.fromisoformat,
            help="the listing day: the day to fetch (HF), and the day a --file's papers are news for",
        )
        parser.add_argument("--file", type=Path, help="parse this local file as the source's format")
        parser.add_argument("--force", action="store_true", help="parse the input even if unchanged since last run")

    def handle(self, *args, sources: list[str], date: date | None, file: Path | None, force: bool, **options) -> None:
        total = IngestCounts()
        for spec in sources:
            try:
                total.add(fetch_and_ingest(spec, date, path=file, force=force))
            except SourceError as exc:
                raise CommandError(f"{spec}: {exc}") from None
        self.stdout.write(total.summary())
