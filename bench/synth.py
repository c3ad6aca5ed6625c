"""Synthetic but realistic bench data made from the real fixtures: papers recombined from real abstracts,
subscribers whose interests are phrases that really occur in those abstracts."""

import itertools
import json
import random
import re
from collections import Counter
from functools import cache
from pathlib import Path

from django.db import connection
from django.utils import timezone

ROOT = Path(__file__).resolve().parent.parent
SEED_PAPERS = ROOT / "papers" / "samples" / "seed_papers.jsonl"
WORD = re.compile(r"[a-z][a-z-]{2,}")
STOPWORDS_TEXT = (
    "the and for with from that this are our via using based into over under new we can which these their has "
    "have been also such than more most both each its not all show paper propose approach method methods results "
    "model models work task tasks data training learning use used while however"
)
STOPWORDS = frozenset(STOPWORDS_TEXT.split())
# Share of subscribers who follow nothing and get the trending section only.
TRENDING_ONLY_SHARE = 0.3
MAX_TOPICS_PER_SUBSCRIBER = 3
SUBSCRIBER_BATCH = 5000


@cache
def seed_papers() -> list[dict]:
    return [json.loads(line) for line in SEED_PAPERS.read_text().splitlines() if line.strip()]


@cache
def interest_vocabulary() -> list[str]:
    """Two-word phrases that occur at least twice across the real abstracts, and frequent content words."""
    bigrams: Counter = Counter()
    words: Counter = Counter()
    for paper in seed_papers():
        tokens = [w for w in WORD.findall(f"{paper['title']} {paper['abstract']}".lower())]
        words.update(t for t in tokens if t not in STOPWORDS)
        bigrams.update(f"{a} {b}" for a, b in itertools.pairwise(tokens) if a not in STOPWORDS and b not in STOPWORDS)
    phrases = [p for p, n in bigrams.most_common() if n >= 2]
    return phrases + [w for w, n in words.most_common(200) if n >= 3]


def synthetic_papers(count: int, rng: random.Random) -> list[dict]:
    """`count` papers: the real ones first, then recombinations of real titles and abstract sentences."""
    real = seed_papers()
    papers = [dict(p, id=f"bench-{i}", upvotes=rng.randint(0, 120)) for i, p in enumerate(real[:count])]
    sentences = [s for p in real for s in re.split(r"(?<=\.)\s+", p["abstract"]) if len(s) > 40]
    while len(papers) < count:
        base = rng.choice(real)
        abstract = " ".join(rng.sample(sentences, 5))
        papers.append(
            {
                "id": f"bench-{len(papers)}",
                "title": f"{base['title']} ({len(papers)})",
                "abstract": abstract,
                "upvotes": rng.randint(0, 60),
            }
        )
    return papers


def write_papers_file(path: Path, count: int, seed: int = 7) -> Path:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(p) for p in synthetic_papers(count, rng)) + "\n")
    return path


def make_subscribers(count: int, seed: int = 11) -> None:
    """Active subscribers bench0@… to bench{count-1}@…, inserted in bulk."""
    from subscribers.models import Subscriber

    rng = random.Random(seed)
    vocabulary = interest_vocabulary()
    now = timezone.now()
    batch = []
    for i in range(count):
        topics = []
        if rng.random() >= TRENDING_ONLY_SHARE:
            topics = rng.sample(vocabulary, rng.randint(1, MAX_TOPICS_PER_SUBSCRIBER))
        batch.append(
            Subscriber(
                email=f"bench{i}@example.com",
                status=Subscriber.Status.ACTIVE,
                interests=", ".join(topics),
                confirmed_at=now,
            )
        )
        if len(batch) == SUBSCRIBER_BATCH:
            Subscriber.objects.bulk_create(batch)
            batch = []
    Subscriber.objects.bulk_create(batch)


def reset_database() -> None:
    """Empty the bench database's product tables (the bench database only: see bench/__main__.py)."""
    from newsletter.models import Delivery, Digest, DigestPaper
    from papers.models import FetchRun, Paper
    from subscribers.models import Subscriber, Suppression

    models = [Delivery, DigestPaper, Digest, Subscriber, Suppression, Paper, FetchRun]
    if connection.vendor == "postgresql":
        tables = ", ".join(m._meta.db_table for m in models)
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    else:
        for model in models:
            model.objects.all().delete()
