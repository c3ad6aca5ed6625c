"""Which papers each reader sees: trending score, relevance to interests, editorial overrides.

Foundation version: trending by decayed community signals, "For you" by plain word overlap.
"""

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from papers.models import Moderation, Paper

# A paper's pull halves every this many hours: yesterday's strong paper still beats today's weak one.
TRENDING_HALF_LIFE_HOURS = 36.0
# A comment is a stronger signal than an upvote (it costs more effort); stars are cheap and plentiful.
COMMENT_WEIGHT = 2.0
STAR_WEIGHT = 0.02
WORD = re.compile(r"[a-z0-9][a-z0-9-]+")
STOPWORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "that",
        "this",
        "are",
        "our",
        "via",
        "using",
        "based",
        "into",
        "over",
        "under",
        "new",
    ]
)


@dataclass(frozen=True)
class Pick:
    paper_id: int
    score: float
    reason: str = ""


def trending_score(paper: Paper, now: datetime | None = None) -> float:
    now = now or timezone.now()
    signal = (paper.upvotes or 0) + COMMENT_WEIGHT * (paper.num_comments or 0) + STAR_WEIGHT * (paper.github_stars or 0)
    age_hours = max(0.0, (now - paper.first_seen).total_seconds() / 3600)
    boost = 1.5 if paper.featured or paper.moderation == Moderation.APPROVED else 1.0
    return math.log1p(signal) * boost * 0.5 ** (age_hours / TRENDING_HALF_LIFE_HOURS) + (1e6 if paper.pinned else 0)


def rank_trending(papers: list[Paper], limit: int, now: datetime | None = None) -> list[Paper]:
    return sorted(papers, key=lambda p: (-trending_score(p, now), p.pk))[:limit]


def words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOPWORDS}


def for_you(interests: str, papers: list[Paper], limit: int, exclude: set[int] = frozenset()) -> list[Pick]:
    topics = [t.strip() for t in re.split(r"[,\n;]", interests) if t.strip()]
    if not topics:
        return []
    picks = []
    for paper in papers:
        if paper.pk in exclude:
            continue
        text = words(f"{paper.title} {paper.abstract}")
        matched = [t for t in topics if words(t) and words(t) <= text]
        if matched:
            picks.append(Pick(paper.pk, len(matched) + trending_score(paper) / 100, "matches: " + ", ".join(matched)))
    return sorted(picks, key=lambda p: -p.score)[:limit]


def for_you_many(
    subscribers: Sequence, candidates: Sequence[Paper], exclude: Mapping[int, set[int]]
) -> dict[int, list[Pick]]:
    """ "For you" for a chunk of subscribers at once: {subscriber id: picks, best first}.

    Each subscriber gets at most `papers_per_digest` picks and none of the paper ids in `exclude[id]`."""
    return {
        s.pk: for_you(s.interests, list(candidates), s.papers_per_digest, exclude.get(s.pk, set())) for s in subscribers
    }


def after_ingest(paper_ids: list[int]) -> None:
    """Called by ingest with the ids of papers created or changed: the place to compute per-paper ranking data
    (such as embeddings) once, at ingest time. Nothing to compute in the word-overlap ranking."""
