"""Offline evaluation of "For you": precision@5 and nDCG@10 on hand labels, against two baselines.

Labels: bench/eval_labels.json (interest → graded relevance of the 79 seed papers, written by reading the
abstracts before any tuning). The seed page has no dates or votes, so both are synthesized deterministically
from a hash of each title (see synthetic_signals): the baselines "recency only" and "trending only" rank by
those, and the product's ranking sees the same values (it blends in a little trending).
"""

import hashlib
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

from bench import Row
from papers import embeddings
from papers.models import Paper
from papers.ranking import for_you, rank_trending

ROOT = Path(__file__).resolve().parent.parent
LABELS = Path(__file__).resolve().parent / "eval_labels.json"
SEED = ROOT / "tests" / "fixtures" / "seed_papers.json"
NOW = datetime(2026, 3, 14, 8, 0, tzinfo=UTC)  # the seed page's day
# Synthetic signals: up to three days old, up to 300 upvotes, up to 20 comments: a typical HF daily page.
MAX_AGE_HOURS = 72
MAX_UPVOTES = 300
MAX_COMMENTS = 20
K_PRECISION = 5
K_NDCG = 10


def synthetic_signals(title: str) -> tuple[datetime, int, int]:
    """(first seen, upvotes, comments) from the title's SHA-256: the same on every machine and run."""
    h = hashlib.sha256(title.encode()).digest()
    age = int.from_bytes(h[0:2]) % (MAX_AGE_HOURS + 1)
    return NOW - timedelta(hours=age), int.from_bytes(h[2:4]) % (MAX_UPVOTES + 1), h[4] % (MAX_COMMENTS + 1)


def seed_papers() -> list[Paper]:
    papers = []
    for i, item in enumerate(json.loads(SEED.read_text())["papers"]):
        seen, upvotes, comments = synthetic_signals(item["title"])
        papers.append(
            Paper(
                pk=i + 1,
                canonical_id=f"seed:{i}",
                title=item["title"],
                abstract=item["abstract"],
                first_seen=seen,
                listed=seen.date(),
                upvotes=upvotes,
                num_comments=comments,
            )
        )
    return papers


def precision_at(ranked: list[int], relevant: dict[int, int], k: int) -> float:
    return sum(1 for i in ranked[:k] if relevant.get(i, 0) > 0) / k


def ndcg_at(ranked: list[int], relevant: dict[int, int], k: int) -> float:
    dcg = sum((2 ** relevant.get(i, 0) - 1) / math.log2(n + 2) for n, i in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    best = sum((2**g - 1) / math.log2(n + 2) for n, g in enumerate(ideal))
    return dcg / best if best else 0.0


def evaluate(rankers: dict[str, callable]) -> dict[str, tuple[float, float]]:
    """{ranker: (mean precision@5, mean nDCG@10)} over the labelled interests."""
    queries = json.loads(LABELS.read_text())["queries"]
    papers = seed_papers()
    out = {}
    for name, ranker in rankers.items():
        p, n = [], []
        for q in queries:
            relevant = {int(k) + 1: v for k, v in q["relevant"].items()}  # positions → paper pks
            ranked = ranker(q["interests"], papers)
            p.append(precision_at(ranked, relevant, K_PRECISION))
            n.append(ndcg_at(ranked, relevant, K_NDCG))
        out[name] = (sum(p) / len(p), sum(n) / len(n))
    return out


def recency(interests: str, papers: list[Paper]) -> list[int]:
    return [p.pk for p in sorted(papers, key=lambda p: (-p.first_seen.timestamp(), p.pk))]


def trending(interests: str, papers: list[Paper]) -> list[int]:
    return [p.pk for p in rank_trending(papers, len(papers), now=NOW)]


def product(interests: str, papers: list[Paper]) -> list[int]:
    return [pick.paper_id for pick in for_you(interests, papers, K_NDCG)]


def run(size: int) -> list[Row]:
    from django.test import override_settings

    rankers = {"recency": recency, "trending": trending}
    with mock.patch("django.utils.timezone.now", return_value=NOW), override_settings(RANKING_EMBEDDINGS="off"):
        rankers_scores = evaluate({"tfidf": product})
    scores = evaluate(rankers) | rankers_scores
    modes = ["tfidf"]
    if embeddings.installed():
        with mock.patch("django.utils.timezone.now", return_value=NOW), override_settings(RANKING_EMBEDDINGS="on"):
            scores |= {"embeddings": evaluate({"embeddings": product})["embeddings"]}
        modes.append("embeddings")
    rows = []
    for metric, at in (("precision@5", 0), ("nDCG@10", 1)):
        for mode in modes:
            for baseline in ("recency", "trending"):
                value, limit = 100 * scores[mode][at], 100 * scores[baseline][at]  # the table prints 0.1
                rows.append(
                    Row(
                        stage="eval",
                        figure=f"{metric} %, For you ({mode})",
                        value=value,
                        baseline=f"{baseline} only",
                        baseline_value=limit,
                        target="> baseline",
                        ok=value > limit,
                    )
                )
    return rows
