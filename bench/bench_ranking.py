"""For-you ranking at scale: N subscribers x 500 candidate papers through the real papers.ranking code.

Papers and subscribers are built in memory (no database): 500 papers whose titles and abstracts are sentences
of the 79 real seed abstracts recombined; subscribers whose interests are 1-4 phrases drawn from those
abstracts' own word sequences (a pool of POOL_TOPICS phrases, as real readers share topics), some with an
arXiv category, a favourite author or a negative keyword. Each subscriber excludes the day's trending
papers, a fifth also a few papers "sent before".

Limit, measured in the same run: a bare scipy/numpy top-k over the same inputs (the subscriber x term TF-IDF
matrix precomputed, times the paper matrix, argpartition top-10 per row, in the same chunks): the least
work any ranking of these readers must do. Also printed for information: argpartition alone over a dense
score matrix computed beforehand.
"""

import json
import random
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psutil
from django.test import override_settings

from bench import Row
from papers import embeddings, interests, ranking
from papers.models import Paper
from papers.ranking.foryou import RANK_CHUNK_SIZE
from papers.ranking.readers import Readers
from subscribers.models import Subscriber

SEED = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "seed_papers.json"
PAPERS = 500
POOL_TOPICS = 5_000
TOP_K = 10
CATEGORIES = ["cs.LG", "cs.CL", "cs.CV", "cs.AI", "stat.ML", "cs.RO", "cs.SD", "q-bio.NC"]
AUTHORS = [f"Author {n}" for n in range(200)]
TARGET_SECONDS = 10.0
TARGET_MB = 500.0
TARGET_RATIO = 0.30
# The size, whatever BENCH_SUBSCRIBERS says: at a thousand readers the fixed cost of a ranking (the
# candidate index, the topic table) is most of it, and the ratio to a bare top-k says nothing.
MIN_READERS = 100_000
NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
SENTENCE = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"[A-Za-z][A-Za-z-]{2,}")


class PeakRSS:
    """Highest resident memory seen while the block runs (sampled every 5 ms), minus what it was before."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0
        self.running = False

    def __enter__(self) -> "PeakRSS":
        self.before = self.process.memory_info().rss
        self.peak = self.before
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def grown_mb(self) -> float:
        return (self.peak - self.before) / 2**20


def corpus() -> list[dict]:
    return json.loads(SEED.read_text())["papers"]


def make_papers(rng: random.Random) -> list[Paper]:
    seed = corpus()
    sentences = [s for item in seed for s in SENTENCE.split(item["abstract"]) if len(s) > 40]
    words = [w for item in seed for w in WORD.findall(item["title"])]
    papers = []
    for i in range(PAPERS):
        papers.append(
            Paper(
                pk=i + 1,
                canonical_id=f"bench:{i}",
                title=" ".join(rng.sample(words, 7)),
                abstract=" ".join(rng.sample(sentences, 6)),
                categories=rng.sample(CATEGORIES, 2),
                authors=rng.sample(AUTHORS, 3),
                upvotes=rng.randint(0, 300),
                num_comments=rng.randint(0, 20),
                listed=(NOW - timedelta(hours=rng.randint(0, 47))).date(),
            )
        )
    return papers


def topic_pool(rng: random.Random) -> list[str]:
    """Phrases of 1-3 consecutive words from the real abstracts, as readers name topics."""
    tokens = [w.lower() for item in corpus() for w in WORD.findall(item["abstract"])]
    pool: set[str] = set()
    while len(pool) < POOL_TOPICS:
        n = rng.choice((1, 2, 2, 3))
        start = rng.randrange(len(tokens) - n)
        pool.add(" ".join(tokens[start : start + n]))
    return sorted(pool)


def make_subscribers(size: int, rng: random.Random, pool: list[str]) -> list[Subscriber]:
    subscribers = []
    for i in range(size):
        parts = rng.sample(pool, rng.randint(1, 4))
        roll = rng.random()
        if roll < 0.10:
            parts.append(rng.choice(CATEGORIES))
        elif roll < 0.15:
            parts.append("author: " + rng.choice(AUTHORS))
        elif roll < 0.25:
            parts.append("no " + rng.choice(pool).split()[0])
        subscribers.append(Subscriber(pk=i + 1, interests=", ".join(parts), papers_per_digest=TOP_K))
    return subscribers


def bare_topk(index: ranking.CandidateIndex, subscribers: list[Subscriber]) -> float:
    """Seconds for scipy (subscriber x term) @ (term x paper) + numpy argpartition top-k, same chunks."""
    matrix = index.vectorizer.transform([s.interests for s in subscribers])  # precomputed: not timed
    started = time.perf_counter()
    papers_t = index.tfidf.T.tocsc()
    for start in range(0, matrix.shape[0], RANK_CHUNK_SIZE):
        scores = (matrix[start : start + RANK_CHUNK_SIZE] @ papers_t).toarray()
        top = np.argpartition(-scores, TOP_K, axis=1)[:, :TOP_K]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        np.take_along_axis(top, order, 1)
    return time.perf_counter() - started


def argpartition_only(size: int, rng_seed: int) -> float:
    scores = np.random.default_rng(rng_seed).random((size, PAPERS), dtype=np.float32)  # precomputed: not timed
    started = time.perf_counter()
    for start in range(0, size, RANK_CHUNK_SIZE):
        block = scores[start : start + RANK_CHUNK_SIZE]
        top = np.argpartition(-block, TOP_K, axis=1)[:, :TOP_K]
        np.take_along_axis(top, np.argsort(-np.take_along_axis(block, top, 1), axis=1), 1)
    return time.perf_counter() - started


def run(size: int) -> list[Row]:
    size = max(size, MIN_READERS)
    rng = random.Random(20261128)
    papers = make_papers(rng)
    pool = topic_pool(rng)
    subscribers = make_subscribers(size, rng, pool)
    rows: list[Row] = []
    modes = ["off"] + (["on"] if embeddings.installed() else [])
    for mode in modes:
        with override_settings(RANKING_EMBEDDINGS=mode):
            if mode == "on":
                started = time.perf_counter()
                for paper, vector in zip(
                    papers,
                    embeddings.encode([embeddings.paper_text(p.title, p.abstract) for p in papers]),
                    strict=True,
                ):
                    paper.embedding = embeddings.to_bytes(vector)  # what ingest stores
                encode_papers = time.perf_counter() - started
                started = time.perf_counter()
                embeddings.encode(pool, shared=True)  # each distinct interest once, then cached
                encode_topics = time.perf_counter() - started
                # The candidates' terms (query expansion) are embedded once and shared like interests: a day's
                # terms are mostly known from the days before.
                started = time.perf_counter()
                terms = len(ranking.candidate_index(papers).terms().names)
                encode_terms = time.perf_counter() - started
                rows.append(Row("ranking", "ingest: papers embedded/s", PAPERS / encode_papers))
                rows.append(Row("ranking", "new interests embedded/s (once each)", POOL_TOPICS / encode_topics))
                rows.append(Row("ranking", f"candidates' {terms:,} terms embedded, s (once each)", encode_terms))
            # Each mode from a cold start of the day: no candidate index, no interest read before. What a worker
            # loads once at start (scikit-learn, newsletter.config.celery.load_ranking) is loaded.
            ranking.clear_caches()
            ranking.stop_words()
            trending_ids = {p.pk for p in ranking.rank_trending(papers, 5, now=NOW)}
            exclude = {
                s.pk: trending_ids | ({rng.randint(1, PAPERS) for _ in range(5)} if s.pk % 5 == 0 else set())
                for s in subscribers
            }
            with PeakRSS() as memory:
                started, cpu = time.perf_counter(), time.process_time()
                picks = ranking.for_you_many(subscribers, papers, exclude)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            started = time.perf_counter()
            for pk in picks:
                picks[pk]  # what rendering the digests reads: a reader's list is made when it is read
            read_back = time.perf_counter() - started
            index = ranking.candidate_index(papers)
            interests.read_item.cache_clear()
            started = time.perf_counter()
            Readers.read(subscribers, index)
            reading = time.perf_counter() - started
            bare = bare_topk(index, subscribers)
            served = sum(1 for p in picks.values() if p)
            label = "embeddings" if mode == "on" else "TF-IDF"
            rows += [
                Row("ranking", f"For you, {size:,} readers ({label}), s", seconds, "target", TARGET_SECONDS,
                    f"<= {TARGET_SECONDS:.0f} s", seconds <= TARGET_SECONDS),
                Row("ranking", f"  CPU time of that ({label}), s", cpu),
                Row("ranking", f"  reading the readers' interests alone, cold ({label}), s", reading),
                Row("ranking", f"every reader's list read back once, after ({label}), s", read_back),
                Row("ranking", f"peak memory growth ({label}), MB", memory.grown_mb, "target", TARGET_MB,
                    f"<= {TARGET_MB:.0f} MB", memory.grown_mb <= TARGET_MB),
                Row("ranking", f"readers/s ({label})", size / seconds, "bare scipy top-k, readers/s", size / bare,
                    f">= {TARGET_RATIO:.0%} of bare", size / seconds >= TARGET_RATIO * size / bare),
                Row("ranking", f"readers with picks ({label}), %", 100 * served / size),
            ]  # fmt: skip
    rows.append(Row("ranking", "argpartition alone over dense scores, readers/s", size / argpartition_only(size, 7)))
    rows.append(Row("ranking", "load average (1 min) at the end", psutil.getloadavg()[0]))
    return rows
