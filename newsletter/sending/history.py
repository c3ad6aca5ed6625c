"""What each reader was sent: the delivery ledger read for the never-repeat rules."""

from collections.abc import Iterable
from datetime import date

from newsletter.models import Delivery


def already_sent(subscriber_ids: Iterable[int], since: date, other_than: date | None = None) -> dict[int, set[int]]:
    """{subscriber id: paper ids} each was sent in digests dated from `since` on, except the digest of
    `other_than` (the delivery ledger). Later digests count too: a catch-up send of a missed day must not
    repeat what the days after it already sent."""
    ids = list(subscriber_ids)
    sent: dict[int, set[int]] = {i: set() for i in ids}
    rows = Delivery.objects.filter(subscriber_id__in=ids, digest__date__gte=since).exclude(paper_ids=[])
    if other_than is not None:
        rows = rows.exclude(digest__date=other_than)
    for subscriber_id, paper_ids in rows.values_list("subscriber_id", "paper_ids").iterator(chunk_size=2000):
        sent[subscriber_id].update(int(p) for p in paper_ids or [])
    return sent
