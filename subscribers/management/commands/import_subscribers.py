import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from subscribers.importing import ImportFileError, import_subscribers, read_rows


class Command(BaseCommand):
    help = "Import subscribers from a CSV of email[,interests]; suppressed and unsubscribed addresses are refused."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--confirmed", action="store_true", help="you hold their consent: make them active, no confirmation"
        )

    def handle(self, *args, file: Path, confirmed: bool, **options) -> None:
        try:
            handle = file.open(encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        with handle:
            try:
                total = sum(1 for _ in handle)  # the bar's length: one cheap pass over the file
                handle.seek(0)
                with tqdm(total=total, unit=" rows", file=sys.stderr, disable=None) as bar:
                    result = import_subscribers(read_rows(handle), confirmed=confirmed, progress=bar.update)
            except (ImportFileError, UnicodeDecodeError) as exc:
                raise CommandError(f"{file}: {exc}") from None
        for line, email, why in result.refusals:
            self.stderr.write(f"line {line}: {email}: {why}")
        if result.refused > len(result.refusals):
            self.stderr.write(f"... and {result.refused - len(result.refusals)} more refused")
        self.stdout.write(result.summary())
