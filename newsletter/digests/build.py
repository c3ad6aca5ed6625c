"""The day's Digest: which papers are candidates, and the trending section everyone shares (chosen by
`choose_trending` alone, whether the digest is built, re-ranked for an editor's preview, or sent trending-only
at the review deadline)."""

from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from newsletter.digests import states as digest_states
from newsletter.models import Digest, DigestPaper
from papers.caches import Lru
from papers.models import CANDIDATE_WINDOW, Moderation, Paper, day_end
from papers.ranking import REPEAT_LOOKBACK, rank_trending

__all__ = [
    "CANDIDATE_WINDOW", "build_digest", "candidate_papers", "choose_trending", "earlier_trending", "rebuild_skipped",
    "set_trending",
]  # fmt: skip


def candidate_papers(day: date, mode: str | None = None) -> list[Paper]:
    """Papers listed in the window ending with `day` (whenever they reached us: a catch-up send of a missed
    day finds its papers), plus every pinned paper listed by then (editors pin to lead every digest).
    Rejected papers never; in review mode (`mode`, by default MODERATION_MODE) only approved or pinned ones.

    Every chunk of a send asks for the same list: a process keeps the last few, and checks each time, with
    a query of a few small columns, that the same papers still qualify with the same moderation and
    version (a bulk moderation update does not touch updated_at, so the moderation fields are compared)."""
    news = Paper.objects.news_on(day)
    papers = (news | Paper.objects.filter(pinned=True, listed__lte=day)).exclude(moderation=Moderation.REJECTED)
    mode = mode or settings.MODERATION_MODE
    if mode == "review":
        papers = papers.filter(Q(moderation=Moderation.APPROVED) | Q(pinned=True))
    key = (day, mode)
    cached = _candidates.get(key)
    if cached is not None and cached[0] == tuple(papers.values_list(*CANDIDATE_VERSION_FIELDS)):
        return list(cached[1])
    found = list(papers)
    _candidates.put(key, (tuple(tuple(getattr(p, f) for f in CANDIDATE_VERSION_FIELDS) for p in found), found))
    return list(found)


# What tells a cached candidate list from the database's: which papers, in which order, in which version.
CANDIDATE_VERSION_FIELDS = ("pk", "updated_at", "listed", "moderation", "pinned", "featured")
CANDIDATE_CACHE_SIZE = 4  # a day's daily list and a weekly list, with room for a day change mid-send
_candidates: Lru[tuple, tuple[tuple, list[Paper]]] = Lru("candidate papers", CANDIDATE_CACHE_SIZE)


def earlier_trending(day: date) -> set[int]:
    """Papers of other digests' trending sections (earlier ones, and later ones for a catch-up send of a
    missed day): everyone was sent them, so they are not news again."""
    nearby = Q(digest__date__gte=day - REPEAT_LOOKBACK, digest__date__lte=day + REPEAT_LOOKBACK)
    return set(DigestPaper.objects.filter(nearby).exclude(digest__date=day).values_list("paper_id", flat=True))


def choose_trending(day: date, mode: str | None = None) -> list[Paper]:
    """The day's shared section: its candidates (`mode` as for candidate_papers) less what other digests'
    sections had (pinned papers stay), ranked by trending score as at the end of the day. Empty when nothing
    is new (pinned papers alone are no news): the day is skipped."""
    shown = earlier_trending(day)
    candidates = [p for p in candidate_papers(day, mode) if p.pinned or p.pk not in shown]
    if all(p.pinned for p in candidates):
        return []
    return rank_trending(candidates, settings.DIGEST_TRENDING_COUNT, now=day_end(day))


def set_trending(digest: Digest, papers: list[Paper]) -> None:
    DigestPaper.objects.filter(digest=digest).delete()
    DigestPaper.objects.bulk_create(
        DigestPaper(digest=digest, paper=paper, position=i) for i, paper in enumerate(papers)
    )


def build_digest(day: date) -> Digest:
    """Create the day's digest if it does not exist, and choose its trending section. An existing digest is
    returned unchanged, except one skipped for want of papers (skipped with none, never sent): its papers may
    have arrived since (a late fetch, a catch-up import), so it is chosen again. A day with nothing new stays
    skipped; a digest an editor or the review deadline skipped keeps its papers, and stays skipped."""
    with transaction.atomic():
        digest, created = Digest.objects.select_for_update().get_or_create(date=day)
        rebuilding = (
            digest.status == Digest.Status.SKIPPED and not digest.items.exists() and not digest.deliveries.exists()
        )
        if not (created or rebuilding):
            return digest
        trending = choose_trending(day)
        if not trending:
            if digest.status != Digest.Status.SKIPPED:
                digest.status = Digest.Status.SKIPPED
                digest.save(update_fields=["status"])
            return digest
        set_trending(digest, trending)
        if rebuilding:
            digest_states.attempt(digest.pk, "rebuild")
            digest.refresh_from_db()
    return digest


def rebuild_skipped(days: list[date]) -> list[Digest]:
    """Digests of these listing days (and of the day after: a paper is news for two days) that were skipped
    for want of papers, chosen again now that papers arrived. Returns those that have papers now."""
    affected = {d + timedelta(days=n) for d in days for n in range(CANDIDATE_WINDOW.days)}
    skipped = Digest.objects.filter(date__in=affected, status=Digest.Status.SKIPPED).values_list("date", flat=True)
    return [digest for day in skipped if (digest := build_digest(day)).status != Digest.Status.SKIPPED]
