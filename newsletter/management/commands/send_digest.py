"""`send_digest [--date D] [--dry-run] [--retry-failed] [--timeout S]`: the manual path. While it waits it says
what for (rows waiting for a retry, after which error, and when the next is due); its last line is always
`sent=N skipped=N failed=N unsent=N`, the line before it says what is wrong when something is, and the exit
status (EXIT_* below) says the same to a script."""

import sys
from datetime import date

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone
from tqdm import tqdm

from newsletter import pipeline
from newsletter.backoffice import actions as digest_actions
from newsletter.digests.build import build_digest
from newsletter.models import Digest
from newsletter.sending import ledger
from subscribers.models import Subscriber

# Exit statuses (1 is a command error such as a bad --date, 2 a usage error: Django's and argparse's own).
EXIT_SERVED = 0  # every reader on the list got the digest, or was skipped for a reason of their own
EXIT_FAILED = 3  # some readers failed for good (refused, retries ran out, or ambiguous); nothing is left open
EXIT_UNSENT = 4  # some readers are still unsent: the send is paused or cancelled, or retries outlast --timeout
ERROR_SHOWN = 120  # characters of an error in a waiting line


def waiting_line(progress: pipeline.Progress) -> str:
    waiting = progress.waiting
    seconds = max((waiting.next_attempt_at - timezone.now()).total_seconds(), 0) if waiting.next_attempt_at else 0
    error = waiting.error.removeprefix(ledger.REQUEUED_PREFIX)
    error = error if len(error) <= ERROR_SHOWN else error[: ERROR_SHOWN - 1] + "…"
    return (
        f"{progress.done:,} of {progress.total:,} done; {waiting.rows:,} readers waiting for a retry after "
        f"'{error}'; next attempt in {seconds:.0f} s"
    )


def verdict(counts: ledger.SendCounts, digest: Digest, day: date) -> tuple[int, str]:
    """The exit status, and the line that says why when it is not 0."""
    if counts.unsent and digest.status in (Digest.Status.PAUSED, Digest.Status.CANCELLED):
        return (
            EXIT_UNSENT,
            f"The send is {digest.status}: {counts.unsent:,} readers wait until it is resumed in the admin.",
        )
    if counts.unsent:
        return EXIT_UNSENT, (
            f"{counts.unsent:,} readers are not sent yet (waiting for a retry): the workers go on with them; "
            f"run send_digest --date {day} again to follow."
        )
    if counts.failed:
        return EXIT_FAILED, (
            f"{counts.failed:,} readers failed: their errors are in the admin's delivery ledger; "
            f"send_digest --date {day} --retry-failed queues them again."
        )
    return EXIT_SERVED, ""


class Command(BaseCommand):
    help = "Build the day's digest if needed and send it to every active subscriber who has not received it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", type=date.fromisoformat, help="the digest's date (default: today, UTC)")
        parser.add_argument("--dry-run", action="store_true", help="say who would get it; send nothing")
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help="first queue the digest's failed deliveries again (not readers since suppressed or gone)",
        )
        parser.add_argument(
            "--timeout", type=float, default=3600, help="stop waiting after this many seconds (default 3600)"
        )

    def handle(self, *args, date: date | None, dry_run: bool, retry_failed: bool, timeout: float, **options) -> None:
        day = date or timezone.now().date()
        digest = build_digest(day)
        if digest.status == Digest.Status.SKIPPED:
            self.stdout.write(f"No new papers for {day}: nothing to send.")
            self.stdout.write(ledger.SendCounts().summary())
            return
        if dry_run:
            waiting = Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).exclude(deliveries__digest=digest)
            self.stdout.write(f"dry run: {waiting.count()} active subscribers would receive the {day} digest")
            return
        if retry_failed:
            try:
                digest_actions.retry_failed(digest.pk)
            except digest_actions.ActionRefused as exc:
                self.stdout.write(str(exc))
            else:
                self.stdout.write(f"Failed deliveries of the {day} digest queued again.")
        counts = self.send(digest, day, timeout)
        digest.refresh_from_db()
        status, why = verdict(counts, digest, day)
        if why:
            self.stdout.write(why)
        self.stdout.write(counts.summary())
        if status != EXIT_SERVED:
            sys.exit(status)

    def send(self, digest: Digest, day: date, timeout: float) -> ledger.SendCounts:
        with tqdm(total=0, unit="msg", desc=f"digest {day}", disable=None) as bar:

            def progress(step: pipeline.Progress) -> None:
                bar.total = step.total
                bar.update(step.done - bar.n)
                if not step.report:
                    return
                line = waiting_line(step) if step.waiting.rows else None
                if line is None and bar.disable and step.done < step.total:
                    line = f"{step.done:,} of {step.total:,} done"  # no bar when not on a terminal
                if line:
                    with bar.external_write_mode():
                        self.stdout.write(line)

            return pipeline.send(digest, progress=progress, timeout=timeout)
