""" "For you", for a chunk of readers at once: each reader's relevance to a paper is their best-matching topic,
plus arXiv-category and favourite-author matches; negative keywords and excluded papers (already shown, already
sent, and their near-duplicates) are removed; matches are ordered by relevance + a little trending, with
editorial boosts, then picked by MMR.

Everything is array operations over the chunk: unique topics x papers (topics.py), a gather per reader
(readers.py), each reader's best candidates by one sort of packed keys and MMR over the whole chunk (mmr.py),
the picks kept as arrays (picks.py)."""

import gc
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
from scipy import sparse

from papers.models import Paper
from papers.ranking import learned
from papers.ranking.index import CandidateIndex, candidate_index
from papers.ranking.mmr import MMR_POOL_FACTOR, best_first, mmr
from papers.ranking.picks import Pick, PickLists, author_reason, category_reason, chunk_picks
from papers.ranking.readers import Readers
from papers.ranking.topics import topic_matrix

# A chosen arXiv category or a favourite author is an explicit wish: it alone qualifies a paper.
CATEGORY_SCORE = 0.3
AUTHOR_SCORE = 0.6
# Among papers that match, community interest breaks near-ties, and only those: relevance fused by rank is
# flat at the top (a paper tenth on both lists scores 0.86 of the first), so a hundredth of the scale. At a
# tenth, trending reordered a reader's list enough to cost the labelled evaluation 1-2 points of nDCG.
TRENDING_WEIGHT = 0.01
# Readers ranked per matrix step: 2,000 × 500 papers × 4 bytes is 4 MB per score matrix, so memory stays
# flat however many readers there are.
RANK_CHUNK_SIZE = 2_000


def for_you_many(
    subscribers: Sequence,
    candidates: Sequence[Paper],
    exclude: Mapping[int, Iterable[int]],
    ratings: learned.Ratings | None = None,
) -> Mapping[int, list[Pick]]:
    """ "For you" for many subscribers at once: {subscriber id: picks, best first}.

    Subscribers are Subscriber rows or anything with their pk, interests, categories and papers_per_digest.
    Each gets at most `papers_per_digest` picks, none of the paper ids in `exclude[id]` (nor their
    near-duplicates), nothing matching their negative keywords, nothing rejected. A subscriber with no
    interests gets no picks (the trending section only)."""
    subscribers = list(subscribers)
    if not subscribers:
        return {}
    if not candidates:
        return {s.pk: [] for s in subscribers}
    index = candidate_index(candidates)
    with _collector_paused():
        readers = Readers.read(subscribers, index)
        # Every distinct topic is scored against the papers once, however many readers share it.
        topics = topic_matrix(index, readers.topic_names)
        ratings = learned.ratings_for(readers.pks) if ratings is None else ratings
        taught = learned.RatingModel.build(index, ratings)
        return PickLists(
            [
                _rank_chunk(index, readers, slice(start, start + RANK_CHUNK_SIZE), topics, exclude, taught)
                for start in range(0, len(subscribers), RANK_CHUNK_SIZE)
            ]
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Reading a hundred thousand interest texts makes a million short-lived lists and strings, which would run
    Python's cycle collector again and again, each pass walking every object made so far; they form no
    cycles, so it waits until the ranking is done."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def for_you(
    interests: str,
    papers: Sequence[Paper],
    limit: int,
    exclude: Iterable[int] = (),
    rated: tuple[Sequence[int], Sequence[int], Mapping[int, Paper]] | None = None,
) -> list[Pick]:
    """One hypothetical reader's list (the rank_papers command, the evaluation); `rated`: their ratings as
    (paper ids, values, the papers by id)."""
    reader = SimpleNamespace(pk=0, interests=interests, categories=[], papers_per_digest=limit)
    ratings = learned.Ratings({0: rated[:2]}, rated[2]) if rated else learned.Ratings()
    return for_you_many([reader], papers, {0: set(exclude)}, ratings)[0]


def _blocked(index: CandidateIndex, pks: Sequence[int], exclude: Mapping[int, Iterable[int]]) -> tuple[np.ndarray, ...]:
    """(rows, positions) where the paper is excluded for the reader, or is a near-duplicate of one that is (a
    second version of a paper sent before is not new)."""
    n, n_papers = len(pks), len(index.papers)
    sets = list(map(exclude.get, pks, itertools.repeat(())))
    lengths = np.fromiter(map(len, sets), dtype=np.int64, count=n)
    if not lengths.any() or not n_papers:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ids = np.fromiter(itertools.chain.from_iterable(sets), dtype=np.int64, count=int(lengths.sum()))
    at = np.minimum(np.searchsorted(index.sorted_ids, ids), n_papers - 1)
    known = index.sorted_ids[at] == ids
    rows, positions = np.repeat(np.arange(n), lengths)[known], index.sorted_positions[at[known]]
    if index.twins.nnz == n_papers:  # no paper has a near-duplicate among the candidates
        return rows, positions
    excluded = sparse.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, positions)), shape=(n, n_papers))
    return (excluded @ index.twins).nonzero()


def _rank_chunk(
    index: CandidateIndex,
    readers: Readers,
    chunk: slice,
    topics: sparse.csr_matrix,
    exclude: Mapping,
    taught: learned.RatingModel | None = None,
) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    profile = readers.profile[chunk]
    n, n_papers = profile.size, len(index.papers)
    width = max(int(readers.topic_counts[profile].max()), 1)
    table = readers.topics[profile, :width]
    # The chunk's distinct topics, dense once; a reader's relevance to a paper is their best topic's score.
    distinct, inverse = np.unique(table, return_inverse=True)
    inverse = inverse.reshape(table.shape)
    scores = topics[distinct].toarray()
    relevance = scores[inverse[:, 0]]
    for t in range(1, width):
        np.maximum(relevance, scores[inverse[:, t]], out=relevance)
    matched = relevance > 0
    topical = matched.copy()
    total = relevance
    hits = []  # per kind of wish that met a paper: where, and how to say so
    for wishes, weight, describe in (
        (readers.categories, CATEGORY_SCORE, category_reason),
        (readers.authors, AUTHOR_SCORE, author_reason),
    ):
        rows, positions = wishes.met(profile)
        if rows.size:
            # float64 like the weight, then back: the same sums as adding the whole hit matrix would give
            total[rows, positions] = total[rows, positions] + np.float64(weight)
            matched[rows, positions] = True
            hits.append((rows, positions, wishes, describe))
    matched[~readers.wants[profile]] = False
    liked = taught.adjust(readers.pks[chunk], total, matched) if taught is not None else None
    matched[:, ~index.allowed] = False
    for rows, positions in (_blocked(index, readers.pks[chunk], exclude), readers.negatives.met(profile)):
        matched[rows, positions] = False
    # Only the papers a reader matched can be picked: a few dozen of 500. Their scores, best first per reader,
    # and each reader's best MMR pool of them: one sort of (row, score descending, position) packed in an int64.
    flat = np.flatnonzero(matched)  # row x n_papers + position: faster than a 2-D nonzero
    rows, positions = np.divmod(flat, n_papers)
    final = (total[rows, positions] + TRENDING_WEIGHT * index.trending[positions]) * index.boost[positions]
    rows, positions, final = best_first(rows, positions, final.astype(np.float32), n, n_papers)
    k = int(readers.limits[chunk].max())
    pool = min(n_papers, k * MMR_POOL_FACTOR)
    counts = np.bincount(rows, minlength=n)
    rank = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = rank < pool
    candidates = np.full((n, pool), -1, dtype=np.int64)
    candidate_scores = np.full((n, pool), -np.inf, dtype=np.float32)
    rows, rank, positions = rows[keep], rank[keep], positions[keep]
    candidates[rows, rank] = positions
    candidate_scores[rows, rank] = final[keep]
    # Which of the reader's topics each candidate matched best (the first, on a tie), for MMR and reasons.
    topic = np.zeros((n, pool), dtype=np.int64)
    topic[rows, rank] = np.argmax(np.take(scores, inverse[rows] * n_papers + positions[:, None]), axis=1)
    picked, picked_scores, picked_topic = mmr(index, candidates, candidate_scores, topic, readers.limits[chunk])
    part = chunk_picks(index, readers, chunk, picked, picked_scores, picked_topic, table, topical, hits)
    return learned.explain(part, index, liked, taught)
