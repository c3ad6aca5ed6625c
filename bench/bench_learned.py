"""The learned "For you" at scale: 100,000 readers (always: it takes seconds), each with up to 200 ratings, ranked
against 500 papers from their models kept as weights (papers.ranking.learned: `fit` when a reader rates,
`stacked_relevance` at send time: one matrix of every reader's weights times the candidates' vectors, each row
read against its spread and blended with interest relevance), then each reader's best ten.

Vectors are 384 wide, as the sentence-embedding model's, unit length, drawn around 50 topics. Limit, measured in
the same run: the bare matrix product of the same shapes (readers x 384 times 384 x 500). Training is measured
apart: refitting one reader with 200 ratings, as happens on each rating.

Then the whole "For you" as a send runs it (papers.ranking.for_you_many with the model on, from a cold candidate
index): the same 100,000 readers with typed interests (bench_ranking's readers, 1-4 topics of a 5,000-phrase pool,
embedded beforehand as a warm cache holds them), each with 0-200 ratings of 20,000 earlier papers and, past the
threshold, their kept weights; next to the same readers without ratings.
"""

import random
import time

import numpy as np
from django.test import override_settings

from bench import Row
from bench.bench_ranking import PeakRSS, make_papers, make_subscribers, topic_pool
from papers import embeddings
from papers.models import Paper
from papers.ranking import for_you_many, learned

READERS = 100_000
PAPERS = 500
WIDTH = 384  # all-MiniLM-L6-v2
TOPICS = 50
MAX_RATINGS = 200
TOP_K = 10
CHUNK = 2_000  # readers per matrix step, as papers.ranking.foryou ranks them
FITS = 200  # refits timed for the median
TARGET_SECONDS = 10.0
TARGET_MB = 500.0
RATED_PAPERS = 20_000  # earlier papers readers rated: a few months of listings


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def vectors(rng: np.random.Generator, n: int, centres: np.ndarray) -> np.ndarray:
    return unit(centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, WIDTH)))


def trained_weights(rng: np.random.Generator, readers: int, centres: np.ndarray) -> tuple[np.ndarray, float]:
    """Every reader's weights, as their ratings left them; (weights, median seconds of one refit at 200
    ratings). Readers' weights are drawn from their ratings' shape (a few liked topics) rather than fitted one by
    one here: a hundred thousand refits is a day of ratings, not part of a send."""
    sample = vectors(rng, MAX_RATINGS, centres)
    values = np.where(rng.random(MAX_RATINGS) < 0.5, 1, -1)
    times = []
    for _ in range(FITS):
        started = time.perf_counter()
        learned.fit(sample, values)
        times.append(time.perf_counter() - started)
    weights = np.empty((readers, WIDTH), dtype=np.float32)
    for start in range(0, readers, CHUNK):
        n = min(CHUNK, readers - start)
        liked = centres[rng.integers(0, len(centres), (n, 3))].sum(axis=1)
        weights[start : start + n] = liked + 0.3 * rng.standard_normal((n, WIDTH))
    return weights, float(np.median(times))


def rank(weights: np.ndarray, candidates: np.ndarray, interests: np.ndarray) -> np.ndarray:
    """Each reader's best TOP_K candidates, through the product's stacked relevance, chunk by chunk."""
    best = np.empty((len(weights), TOP_K), dtype=np.int64)
    for start in range(0, len(weights), CHUNK):
        chunk = weights[start : start + CHUNK]
        relevance = learned.stacked_relevance(chunk, candidates, interests[: len(chunk)])
        top = np.argpartition(-relevance, TOP_K, axis=1)[:, :TOP_K]
        order = np.argsort(-np.take_along_axis(relevance, top, axis=1), axis=1)
        best[start : start + CHUNK] = np.take_along_axis(top, order, axis=1)
    return best


def with_vectors(papers: list[Paper], rows: np.ndarray) -> list[Paper]:
    for paper, row in zip(papers, rows, strict=True):
        paper.embedding = embeddings.to_bytes(row)
    return papers


def product(rng: np.random.Generator, centres: np.ndarray, weights: np.ndarray) -> list[Row]:
    """For you through for_you_many, 100,000 readers with interests and ratings, the model on."""
    candidates = with_vectors(make_papers(random.Random(17)), vectors(rng, PAPERS, centres))
    rated = with_vectors(
        [Paper(pk=10_000 + i, canonical_id=f"rated:{i}", title=f"Rated paper {i}") for i in range(RATED_PAPERS)],
        vectors(rng, RATED_PAPERS, centres),
    )
    pool = topic_pool(random.Random(17))
    readers = make_subscribers(READERS, random.Random(17), pool)
    counts = rng.integers(0, MAX_RATINGS + 1, READERS)
    ids = rng.integers(10_000, 10_000 + RATED_PAPERS, int(counts.sum()))
    values = np.where(rng.random(ids.size) < 0.5, 1, -1)
    ends = np.cumsum(counts)
    by_reader = {
        r.pk: (ids[end - n : end], values[end - n : end]) for r, n, end in zip(readers, counts, ends, strict=True)
    }
    kept = {r.pk: weights[i] for i, r in enumerate(readers) if counts[i] >= learned.MIN_RATINGS_FOR_MODEL}
    ratings = learned.Ratings(by_reader, {p.pk: p for p in rated}, kept)
    rows = []
    with override_settings(RANKING_EMBEDDINGS="on"):
        embeddings.encode(pool, shared=True)  # the interests' vectors, as a warm cache holds them
        for label, given in (("with ratings", ratings), ("interests only", learned.Ratings())):
            from papers import caches

            caches.clear_all()  # a cold candidate index, as a send's first chunk finds it
            with PeakRSS() as memory:
                started = time.perf_counter()
                picks = for_you_many(readers, candidates, {}, given)
                seconds = time.perf_counter() - started
            served = sum(bool(picks[r.pk]) for r in readers)
            rows += [
                Row("learned", f"For you as a send ranks it, {label}, s", seconds, "target", TARGET_SECONDS,
                    f"<= {TARGET_SECONDS:.0f} s", seconds <= TARGET_SECONDS),
                Row("learned", f"  peak memory growth ({label}), MB", memory.grown_mb, "target", TARGET_MB,
                    f"<= {TARGET_MB:.0f} MB", memory.grown_mb <= TARGET_MB),
                Row("learned", f"  readers with picks ({label}), %", 100 * served / READERS),
            ]  # fmt: skip
    rows.append(Row("learned", "  ratings handed in, millions", ids.size / 1e6))
    return rows


def run(size: int) -> list[Row]:
    readers = READERS  # the size whatever BENCH_SUBSCRIBERS says: it takes seconds
    rng = np.random.default_rng(17)
    centres = rng.standard_normal((TOPICS, WIDTH)).astype(np.float32)
    candidates = vectors(rng, PAPERS, centres)
    weights, refit = trained_weights(rng, readers, centres)
    # Interest relevance as a send has it for a chunk: a few dozen matches of 500 per reader.
    interests = np.where(rng.random((CHUNK, PAPERS)) < 0.05, rng.random((CHUNK, PAPERS)), 0.0).astype(np.float32)

    started = time.perf_counter()
    bare = weights @ candidates.T
    bare_seconds = time.perf_counter() - started
    del bare

    with PeakRSS() as memory:
        started = time.perf_counter()
        best = rank(weights, candidates, interests)
        seconds = time.perf_counter() - started
    assert best.shape == (readers, TOP_K)
    weights_mb = weights.nbytes / 2**20
    return [
        Row("learned", f"learned For you, {readers:,} readers x {PAPERS}, s", seconds, "target", TARGET_SECONDS,
            f"<= {TARGET_SECONDS:.0f} s", seconds <= TARGET_SECONDS),
        Row("learned", "  bare matrix product, same shapes, s", bare_seconds),
        Row("learned", "learned readers/s", readers / seconds, "bare product, readers/s", readers / bare_seconds),
        Row("learned", "peak memory growth while ranking, MB", memory.grown_mb, "target", TARGET_MB,
            f"<= {TARGET_MB:.0f} MB", memory.grown_mb + weights_mb <= TARGET_MB),
        Row("learned", "  the stacked weights themselves, MB", weights_mb),
        Row("learned", "refit one reader at 200 ratings, ms", 1000 * refit),
        *product(rng, centres, weights),
    ]  # fmt: skip
