from datetime import date

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone
from tqdm import tqdm

from newsletter import pipeline
from newsletter.digest import build_digest
from newsletter.models import Digest
from subscribers.models import Subscriber


class Command(BaseCommand):
    help = "Build the day's digest if needed and send it to every active subscriber who has not received it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", type=date.fromisoformat, help="the digest's date (default: today, UTC)")
        parser.add_argument("--dry-run", action="store_true", help="say who would get it; send nothing")

    def handle(self, *args, date: date | None, dry_run: bool, **options) -> None:
        day = date or timezone.now().date()
        digest = build_digest(day)
        if digest.status == Digest.Status.SKIPPED:
            self.stdout.write(f"No new papers for {day}: nothing to send.")
            self.stdout.write("sent=0 skipped=0 failed=0")
            return
        if dry_run:
            waiting = Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).exclude(deliveries__digest=digest)
            self.stdout.write(f"dry run: {waiting.count()} active subscribers would receive the {day} digest")
            return
        with tqdm(total=0, unit="msg", desc=f"digest {day}", disable=None) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            counts = pipeline.send(digest, progress=progress)
        digest.refresh_from_db()
        if digest.status in (Digest.Status.PAUSED, Digest.Status.CANCELLED):
            self.stdout.write(f"The send is {digest.status}; queued readers wait until it is resumed in the admin.")
        self.stdout.write(counts.summary())
