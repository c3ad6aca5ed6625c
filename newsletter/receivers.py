"""What newsletter/ does when papers/ reports news (papers/ sends signals; it never imports newsletter/)."""

from datetime import date

from django.dispatch import receiver

from newsletter.digests.build import rebuild_skipped
from papers.signals import papers_listed


@receiver(papers_listed, dispatch_uid="newsletter.receivers.on_papers_listed")
def on_papers_listed(sender: object, days: list[date], **kwargs: object) -> None:
    """A day skipped because its papers had not arrived gets its digest now that they have."""
    rebuild_skipped(days)
