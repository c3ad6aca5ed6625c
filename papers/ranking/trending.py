"""The trending section everyone shares: community signals, log-damped and halved every
TRENDING_HALF_LIFE_HOURS; approved and featured papers boosted; pinned papers lead."""

import math
from collections.abc import Iterable
from datetime import UTC, datetime, time

from django.utils import timezone

from papers.models import Moderation, Paper
from papers.ranking.analyze import title_key

# A paper's pull halves every 36 hours: yesterday's strong paper still beats today's weak one, and a
# three-day-old paper keeps an eighth of its pull, so last week's hit doesn't squat the section.
TRENDING_HALF_LIFE_HOURS = 36.0
# A comment costs more effort than an upvote, so it says more; GitHub stars are cheap and come in hundreds.
COMMENT_WEIGHT = 2.0
STAR_WEIGHT = 0.02
# A paper nobody has voted on yet still ranks, by freshness alone (log1p(1) × decay): new before old.
PRIOR_SIGNAL = 1.0
# Editors approved or featured it: worth half again its community signal, in both sections.
EDITORIAL_BOOST = 1.5


def editorial_boost(paper: Paper) -> float:
    """EDITORIAL_BOOST for a paper editors approved or featured, else 1."""
    return EDITORIAL_BOOST if paper.featured or paper.moderation == Moderation.APPROVED else 1.0


def trending_score(paper: Paper, now: datetime | None = None) -> float:
    """Community signal, halved every TRENDING_HALF_LIFE_HOURS since the start of the paper's listing day.
    A digest passes the end of its own day as `now` (papers.models.day_end), so it ranks the same whenever
    it is built; only the ratio between papers matters, and that does not depend on `now`."""
    now = now or timezone.now()
    signal = (paper.upvotes or 0) + COMMENT_WEIGHT * (paper.num_comments or 0) + STAR_WEIGHT * (paper.github_stars or 0)
    listed_at = datetime.combine(paper.listed, time.min, tzinfo=UTC)
    age_hours = max(0.0, (now - listed_at).total_seconds() / 3600)
    boost = editorial_boost(paper)
    return math.log1p(max(0.0, signal) + PRIOR_SIGNAL) * boost * 0.5 ** (age_hours / TRENDING_HALF_LIFE_HOURS)


def rank_trending(papers: Iterable[Paper], limit: int, now: datetime | None = None) -> list[Paper]:
    """The shared section: pinned papers first, then by trending score; never rejected, never two copies."""
    now = now or timezone.now()
    allowed = [p for p in papers if p.moderation != Moderation.REJECTED]
    ordered = sorted(allowed, key=lambda p: (not p.pinned, -trending_score(p, now), p.pk or 0))
    chosen: list[Paper] = []
    seen_titles: set[str] = set()
    for paper in ordered:
        key = title_key(paper.title)
        if key in seen_titles:
            continue
        seen_titles.add(key)
        chosen.append(paper)
        if len(chosen) >= limit:
            break
    return chosen
