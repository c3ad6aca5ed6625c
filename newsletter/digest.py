"""The day's Digest: which papers are candidates, and the trending section everyone shares."""

from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction

from newsletter.models import Digest, DigestPaper
from papers.models import Moderation, Paper
from papers.ranking import rank_trending

# A paper is news for two days after we first see it: arXiv announces once a day, HF votes trail by a day.
CANDIDATE_WINDOW = timedelta(days=2)


def candidate_papers(day: date) -> list[Paper]:
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
    papers = Paper.objects.filter(first_seen__gte=end - CANDIDATE_WINDOW, first_seen__lt=end).exclude(
        moderation=Moderation.REJECTED
    )
    if settings.MODERATION_MODE == "review":
        papers = papers.filter(moderation=Moderation.APPROVED)
    return list(papers)


def build_digest(day: date) -> Digest:
    """Create the day's digest if it does not exist; an existing one is returned unchanged."""
    with transaction.atomic():
        digest, created = Digest.objects.select_for_update().get_or_create(date=day)
        if not created:
            return digest
        candidates = candidate_papers(day)
        if not candidates:
            digest.status = Digest.Status.SKIPPED
            digest.save(update_fields=["status"])
            return digest
        trending = rank_trending(candidates, settings.DIGEST_TRENDING_COUNT)
        DigestPaper.objects.bulk_create(
            DigestPaper(digest=digest, paper=paper, position=i) for i, paper in enumerate(trending)
        )
    return digest
