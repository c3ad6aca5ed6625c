"""The day's Digest: which papers are candidates, and the trending section everyone shares."""

from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from newsletter.models import Digest, DigestPaper
from papers.models import Moderation, Paper
from papers.ranking import REPEAT_LOOKBACK, rank_trending

# A paper is news for two days after we first see it: arXiv announces once a day, HF votes trail by a day.
CANDIDATE_WINDOW = timedelta(days=2)


def candidate_papers(day: date) -> list[Paper]:
    """Papers first seen in the window ending with `day`, plus every pinned paper (editors pin to lead every
    digest). Rejected papers never; in review mode only approved (or pinned) ones.

    Every chunk of a send asks for the same list: a process keeps the last few, and checks each time, with
    a query of a few small columns, that the same papers still qualify with the same moderation and
    version (a bulk moderation update does not touch updated_at, so the moderation fields are compared)."""
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
    fresh = Q(first_seen__gte=end - CANDIDATE_WINDOW, first_seen__lt=end)
    papers = Paper.objects.filter(fresh | Q(pinned=True, first_seen__lt=end)).exclude(moderation=Moderation.REJECTED)
    if settings.MODERATION_MODE == "review":
        papers = papers.filter(Q(moderation=Moderation.APPROVED) | Q(pinned=True))
    key = (day, settings.MODERATION_MODE)
    cached = _candidates.get(key)
    if cached is not None and cached[0] == tuple(papers.values_list(*CANDIDATE_VERSION_FIELDS)):
        return list(cached[1])
    found = list(papers)
    if len(_candidates) >= CANDIDATE_CACHE_SIZE:
        _candidates.clear()
    _candidates[key] = (tuple(tuple(getattr(p, f) for f in CANDIDATE_VERSION_FIELDS) for p in found), found)
    return list(found)


# What tells a cached candidate list from the database's: which papers, in which order, in which version.
CANDIDATE_VERSION_FIELDS = ("pk", "updated_at", "first_seen", "moderation", "pinned", "featured")
CANDIDATE_CACHE_SIZE = 4  # a day's daily list and a weekly list, with room for a day change mid-send
_candidates: dict[tuple, tuple[tuple, list[Paper]]] = {}


def clear_caches() -> None:
    _candidates.clear()


def earlier_trending(day: date) -> set[int]:
    """Papers of earlier digests' trending sections: everyone was sent them, so they are not news again."""
    return set(
        DigestPaper.objects.filter(digest__date__lt=day, digest__date__gte=day - REPEAT_LOOKBACK).values_list(
            "paper_id", flat=True
        )
    )


def build_digest(day: date) -> Digest:
    """Create the day's digest if it does not exist; an existing one is returned unchanged."""
    with transaction.atomic():
        digest, created = Digest.objects.select_for_update().get_or_create(date=day)
        if not created:
            return digest
        shown = earlier_trending(day)
        candidates = [p for p in candidate_papers(day) if p.pinned or p.pk not in shown]
        if not [p for p in candidates if not p.pinned]:
            digest.status = Digest.Status.SKIPPED
            digest.save(update_fields=["status"])
            return digest
        trending = rank_trending(candidates, settings.DIGEST_TRENDING_COUNT)
        DigestPaper.objects.bulk_create(
            DigestPaper(digest=digest, paper=paper, position=i) for i, paper in enumerate(trending)
        )
    return digest
