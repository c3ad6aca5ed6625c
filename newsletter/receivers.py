"""What newsletter/ does when papers/ reports news (papers/ sends signals; it never imports newsletter/)."""

from datetime import date

from django.dispatch import receiver

from newsletter.backoffice import audit
from newsletter.backoffice.actions import refresh_open_drafts
from newsletter.digests.build import rebuild_skipped
from newsletter.models import Delivery, DigestPaper
from papers.models import Paper
from papers.signals import papers_decided, papers_listed, papers_merging

# Ledger rows rewritten per statement when a merge repoints them.
REPOINT_BATCH = 1000


@receiver(papers_listed, dispatch_uid="newsletter.receivers.on_papers_listed")
def on_papers_listed(sender: object, days: list[date], **kwargs: object) -> None:
    """A day skipped because its papers had not arrived yet gets its digest now that they have."""
    rebuild_skipped(days)


@receiver(papers_decided, dispatch_uid="newsletter.receivers.on_papers_decided")
def on_papers_decided(sender: object, user: object, action: str, papers: list[Paper], detail: str, **kwargs) -> None:
    """An editor's decision: one audit entry per paper, and the open drafts re-ranked to show it."""
    audit.record(user, action, papers, detail)
    refresh_open_drafts()


@receiver(papers_merging, dispatch_uid="newsletter.receivers.on_papers_merging")
def on_papers_merging(sender: object, keep: Paper, duplicate_ids: set[int], **kwargs: object) -> None:
    """Digest sections and the ledger's sent-paper lists point at the paper kept, not at its duplicates."""
    # A digest that listed both keeps its slot for `keep`; one that listed only a duplicate now lists `keep`.
    has_keep = set(DigestPaper.objects.filter(paper=keep).values_list("digest_id", flat=True))
    DigestPaper.objects.filter(paper_id__in=duplicate_ids, digest_id__in=has_keep).delete()
    DigestPaper.objects.filter(paper_id__in=duplicate_ids).update(paper=keep)
    # Delivery.paper_ids is a JSON list: narrow by text match, then rewrite exactly in Python.
    rows = []
    for dup_id in duplicate_ids:
        for row in Delivery.objects.filter(paper_ids__icontains=str(dup_id)).only("pk", "paper_ids"):
            if dup_id in row.paper_ids:
                row.paper_ids = list(dict.fromkeys(keep.pk if pk in duplicate_ids else pk for pk in row.paper_ids))
                rows.append(row)
    Delivery.objects.bulk_update(rows, ["paper_ids"], batch_size=REPOINT_BATCH)
