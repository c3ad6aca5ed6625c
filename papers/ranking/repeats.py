"""Never the same work twice to a reader: how far back what they were sent counts, and later copies (another
version, another source's id) of papers sent before the candidate window, matched on their titles."""

from collections.abc import Mapping, Sequence
from datetime import timedelta

from papers.caches import Lru
from papers.models import Paper
from papers.ranking.analyze import title_key

# How far back the delivery ledger is read to avoid repeats: past the candidate window of any digest
# (two days daily, a week for weekly readers), with room to spare.
REPEAT_LOOKBACK = timedelta(days=30)
# Titles of papers sent on earlier days, by id: a month of digests is a few thousand papers.
EARLIER_TITLE_CACHE_SIZE = 50_000
_earlier_titles: Lru[int, str] = Lru("titles of papers sent earlier", EARLIER_TITLE_CACHE_SIZE)


def with_title_twins(sent: Mapping[int, set[int]], candidates: Sequence[Paper]) -> dict[int, set[int]]:
    """`sent` plus, for each reader, today's candidates that share a title with a paper they were sent earlier.

    A paper sent on an earlier day that is still a candidate keeps its near-duplicates out through the
    candidate index; one that has left the candidate window cannot, so a later copy of it (another version,
    another source's id) is matched on its title instead. Titles of earlier papers are read once per process."""
    earlier = set().union(*sent.values()) - {p.pk for p in candidates} if sent else set()
    if not earlier:
        return dict(sent)
    titles = _earlier_titles.get_many(earlier)
    unknown = [pk for pk in earlier if pk not in titles]
    if unknown:
        read = {pk: title_key(t) for pk, t in Paper.objects.filter(pk__in=unknown).values_list("pk", "title")}
        _earlier_titles.update(read)
        titles.update(read)
    by_title: dict[str, set[int]] = {}
    for paper in candidates:
        by_title.setdefault(title_key(paper.title), set()).add(paper.pk)
    twins = {pk: by_title[key] for pk in earlier if (key := titles.get(pk)) and key in by_title}
    if not twins:
        return dict(sent)
    return {reader: ids.union(*(twins[pk] for pk in ids if pk in twins)) for reader, ids in sent.items()}
