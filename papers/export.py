"""Papers as JSON Lines: the export format, which the `json` source reads back."""

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time

from django.db.models import Q

from papers.models import Paper

EXPORT_FIELDS = (
    "canonical_id", "title", "abstract", "authors", "url", "categories", "published", "listed", "upvotes", "sources",
)  # fmt: skip
EXPORT_CHUNK = 2000  # rows fetched per round trip while streaming


def paper_dict(values: dict) -> dict:
    published = values["published"]
    return {
        "id": values["canonical_id"],
        "title": values["title"],
        "abstract": values["abstract"],
        "authors": list(values["authors"] or []),
        "url": values["url"],
        "categories": list(values["categories"] or []),
        "published": published.isoformat() if published else None,
        "listed": values["listed"].isoformat(),
        "upvotes": values["upvotes"],
        "sources": list(values["sources"] or []),
    }


def export_lines(since: date | None = None) -> Iterator[str]:
    """One JSON object per paper, in the order we first saw them; with `since`, only papers published on or
    after that day (papers without a publication date count from the day we first saw them)."""
    papers = Paper.objects.order_by("first_seen", "pk")
    if since:
        seen = datetime.combine(since, time.min, tzinfo=UTC)
        papers = papers.filter(Q(published__gte=since) | Q(published__isnull=True, first_seen__gte=seen))
    for values in papers.values(*EXPORT_FIELDS).iterator(chunk_size=EXPORT_CHUNK):
        yield json.dumps(paper_dict(values), ensure_ascii=False)
