"""Editorial decisions on papers: approve, reject (with a reason), pin, feature, add by arXiv id, merge.

Each function changes rows in bulk and reports the decision (papers.signals.papers_decided), in the same
transaction: newsletter/ writes the audit trail and re-ranks the open draft, so the editor's preview shows
the decision at once.
"""

from collections.abc import Iterable
from pathlib import Path

from django.db import transaction

from papers.ingest import ingest_records
from papers.models import Moderation, Paper
from papers.signals import papers_decided, papers_merging
from papers.sources import SourceError, get_source
from papers.text import arxiv_id_from

REJECTION_REASON_MAX = 300  # Paper.rejection_reason's length
# The arXiv API answers one id with an Atom feed of one entry; the listing parser reads that format too.
ARXIV_API_SPEC = "arxiv-api:{arxiv_id}"
# Fields a merge copies from a duplicate when the kept paper has none.
FILLABLE_FIELDS = (
    "arxiv_id",
    "doi",
    "abstract",
    "url",
    "pdf_url",
    "code_url",
    "project_url",
    "thumbnail_url",
    "primary_category",
    "comment",
    "journal_ref",
    "published",
    "ai_summary",
)
SIGNAL_FIELDS = ("upvotes", "num_comments", "github_stars")


class ModerationError(Exception):
    """An editor's request that cannot be done; the message is shown to them as is."""


def decided(user, action: str, papers: list[Paper], detail: str = "") -> None:
    """Report an editor's decision about these papers (see papers.signals.papers_decided)."""
    papers_decided.send(sender=Paper, user=user, action=action, papers=papers, detail=detail)


def _apply(papers: Iterable[Paper], user, action: str, detail: str = "", **changes) -> int:
    papers = list(papers)
    ids = [p.pk for p in papers]
    with transaction.atomic():
        Paper.objects.filter(pk__in=ids).update(**changes)
        decided(user, action, papers, detail)
    return len(ids)


def approve(papers: Iterable[Paper], user=None) -> int:
    return _apply(papers, user, "approve", moderation=Moderation.APPROVED, rejection_reason="")


def reject(papers: Iterable[Paper], reason: str, user=None) -> int:
    reason = " ".join(reason.split())[:REJECTION_REASON_MAX]
    if not reason:
        raise ModerationError("Say why the paper is rejected.")
    return _apply(papers, user, "reject", reason, moderation=Moderation.REJECTED, rejection_reason=reason, pinned=False)


def pin(papers: Iterable[Paper], user=None, pinned: bool = True) -> int:
    return _apply(papers, user, "pin" if pinned else "unpin", pinned=pinned)


def feature(papers: Iterable[Paper], user=None, featured: bool = True) -> int:
    return _apply(papers, user, "feature" if featured else "unfeature", featured=featured)


def add_paper(reference: str, user=None, path: Path | None = None) -> tuple[Paper, bool]:
    """Look a paper up on arXiv by id or URL and store it; (paper, created). `path` reads a saved API answer."""
    arxiv_id = arxiv_id_from(reference.strip())
    if not arxiv_id:
        raise ModerationError(f"{reference.strip()[:100]!r} is not an arXiv id or arxiv.org URL.")
    existing = Paper.objects.filter(canonical_id=arxiv_id).first()
    if existing:
        return existing, False
    try:
        _lookup(arxiv_id, path)
    except SourceError as exc:
        raise ModerationError(f"arXiv lookup for {arxiv_id} failed: {exc}") from None
    paper = Paper.objects.filter(canonical_id=arxiv_id).first()
    if paper is None:
        raise ModerationError(f"arXiv has no paper {arxiv_id}.")
    decided(user, "add", [paper], f"looked up from {reference.strip()[:200]}")
    return paper, True


def _lookup(arxiv_id: str, path: Path | None) -> None:
    """Fetch (or read the saved answer for) one id through the arXiv API source; store only that entry."""
    from papers.fetch import http_get

    source = get_source(ARXIV_API_SPEC.format(arxiv_id=arxiv_id))
    try:
        data = Path(path).read_bytes() if path else http_get(source.url_for(None))
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    parsed = source.parse(data)
    ingest_records([r for r in parsed.records if arxiv_id_from(r.arxiv_id) == arxiv_id], source.name)


def merge(keep: Paper, duplicates: Iterable[Paper], user=None) -> Paper:
    """Fold duplicates into `keep`: sources are united, missing fields and the strongest signals are taken
    over, whatever pointed at the duplicates points at it (papers.signals.papers_merging), then the duplicates
    are deleted."""
    duplicates = [d for d in duplicates if d.pk != keep.pk]
    if not duplicates:
        raise ModerationError("Choose at least two papers to merge.")
    dup_ids = {d.pk for d in duplicates}
    with transaction.atomic():
        keep = Paper.objects.select_for_update().get(pk=keep.pk)
        for dup in duplicates:
            for name in FILLABLE_FIELDS:
                if not getattr(keep, name) and getattr(dup, name):
                    setattr(keep, name, getattr(dup, name))
            for name in SIGNAL_FIELDS:
                values = [v for v in (getattr(keep, name), getattr(dup, name)) if v is not None]
                setattr(keep, name, max(values) if values else None)
            for name in ("sources", "categories", "authors", "ai_keywords"):
                setattr(keep, name, list(dict.fromkeys([*getattr(keep, name), *getattr(dup, name)])))
            keep.pinned = keep.pinned or dup.pinned
            keep.featured = keep.featured or dup.featured
            if keep.moderation == Moderation.PENDING:
                keep.moderation, keep.rejection_reason = dup.moderation, dup.rejection_reason
            keep.first_seen = min(keep.first_seen, dup.first_seen)
            keep.listed = min(keep.listed, dup.listed)
        keep.save()
        papers_merging.send(sender=Paper, keep=keep, duplicate_ids=dup_ids)
        Paper.objects.filter(pk__in=dup_ids).delete()
        decided(user, "merge", [keep], "merged " + ", ".join(d.canonical_id for d in duplicates))
    return keep
