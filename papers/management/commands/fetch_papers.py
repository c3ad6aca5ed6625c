from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from papers.ingest import IngestCounts, fetch_and_ingest
from papers.sources import SourceError


class Command(BaseCommand):
    help = "Fetch papers from sources (hf, arxiv:cs.LG+cs.CL, json) into the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sources", nargs="+", metavar="SOURCE")
        parser.add_argument("--date", type=date.fromisoformat)
        parser.add_argument("--file", type=Path, help="parse this local file as the source's format")

    def handle(self, *args, sources: list[str], date: date | None, file: Path | None, **options) -> None:
        total = IngestCounts()
        for spec in sources:
            try:
                run = fetch_and_ingest(spec, date, path=file)
            except SourceError as exc:
                raise CommandError(f"{spec}: {exc}") from None
            for name in ("fetched", "created", "updated", "skipped", "errors"):
                setattr(total, name, getattr(total, name) + getattr(run, name))
        self.stdout.write(total.summary())
