"""What a reader taught us by rating papers ("more like this" / "less like this" from the email): the papers they
liked pull similar candidates up, the ones they disliked push similar ones down at once, and past
MIN_RATINGS_FOR_MODEL ratings a per-reader linear model over the paper vectors (embeddings with the model,
TF-IDF without) is blended with their typed interests.

The ratings are handed in (`use_ratings`, registered by subscribers/, which holds them): papers/ never imports
subscribers/. Every similarity is read in the candidate index's own space: a rated paper's vector is its stored
embedding, or its TF-IDF row under the day's vectorizer.

The model is ridge regression on the ratings (+1 / -1) in its dual form: with n ratings it solves one n x n
system (n ≤ MAX_RATINGS_USED), whatever the vector's width, and its scores over the day's candidates are the
solution times the rated papers' similarities to them (`RatingModel.scores`). Each reader's scores are read
against their own spread over the candidates (a z-score), as topics are, so that a reader's model speaks on the
same scale whatever the space or the number of ratings."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from papers import embeddings
from papers.models import Paper
from papers.ranking.index import CandidateIndex

# Below this many ratings the model is not used: a linear model over hundreds of dimensions fitted to a handful
# of ratings follows the words of those few papers, not the reader's taste. Each liked paper then acts as one
# more interest (its nearest candidates match), each disliked one pushes its neighbours down. Checked on the
# bench's simulated readers (bench/bench_feedback.py): gains at 20 and 50 ratings, never below interests alone.
MIN_RATINGS_FOR_MODEL = 10
# The newest ratings read per reader: 200 is months of digests; older taste fades out rather than piling up.
MAX_RATINGS_USED = 200
# Ridge strength, relative to the kernel's scale (unit vectors: a paper's similarity with itself is 1): enough
# that two near-identical liked papers don't cancel into wild weights. 1.0 gave 3 points less nDCG@10 at 20
# ratings on the bench's simulated readers.
RIDGE = 0.3
# Per-candidate similarity to a liked (or disliked) paper is read as a z-score over the day's candidates, as
# interest topics are (papers/ranking/topics.py): it matches from Z_MATCH spreads above the mean and scores
# full marks at Z_TOP.
Z_MATCH = 2.0
Z_TOP = 4.0
# ...or, whatever the spread (a small candidate set, many papers on the liked subject), from this similarity on
# (cosine: TF-IDF terms shared, or the embeddings' meaning), which also scores full marks at twice the value.
SIMILAR_TFIDF = 0.2
SIMILAR_EMBEDDING = 0.6
# A reader's newest ratings of each kind (liked, disliked) whose neighbours count: every rating (up to
# MAX_RATINGS_USED) trains the model, and the newest say "more / less like this one" at once. Five of each: the
# simulated readers did as well as with ten (bench/bench_feedback.py), at half the gathering per send.
NEIGHBOUR_RATINGS = 5
# Readers whose ratings are laid out flat per step while the model is built.
FLAT_BLOCK = 10_000
# Rated papers read against the candidates per step while the model is built: 2,048 x 500 floats, 4 MB.
BUILD_BLOCK = 2_048
# Readers whose ratings are gathered together: 500 x 10 x 500 candidates is 10 MB per gathered array.
SUBCHUNK = 500
# The spread is never taken as smaller than this, so a tiny or uniform candidate set can't inflate z-scores.
MIN_SPREAD = 0.02
# A liked paper's close neighbours gain up to this much relevance, added to what interests give: a paper that
# matches both an interest and a liked paper leads, one that only resembles a liked paper joins the list below
# the strong interest matches (taking the liked paper's neighbours above them cost the simulated readers
# nDCG at 5 ratings).
LIKE_WEIGHT = 0.2
# A disliked paper's neighbours lose up to this much relevance at once (its other versions drop out entirely).
# Readers also dislike papers next to what they want ("not this one"): a larger push (0.3, 1.0) pulled the
# simulated readers below interests alone.
DISLIKE_WEIGHT = 0.15
# With the model on, this share of the relevance comes from it, the rest from interests and liked papers. Typed
# interests score a matching paper near the top of their (0, 1] scale since relevance is fused by rank, so the
# model's share must stay small for its few-dozen-rating fits not to outvote them: on the simulated readers 0.3
# and more fell below interests alone at 20 ratings, 0.2 and 0.1 gain at every checkpoint (0.2 the more at 50).
MODEL_WEIGHT = 0.2

RatingsSource = Callable[[Sequence[int]], "Ratings"]


@dataclass
class Ratings:
    """Readers' ratings: {reader id: (paper ids, values +1/-1), newest first} and the rated papers (title,
    abstract, embedding)."""

    by_reader: Mapping[int, tuple[Sequence[int], Sequence[int]]] = field(default_factory=dict)
    papers: Mapping[int, Paper] = field(default_factory=dict)  # the rated papers (others cost work for nothing)
    # Readers' models kept as weights over the embedding space (`fit`), used when the candidates are embedded.
    weights: Mapping[int, np.ndarray] = field(default_factory=dict)


_source: list[RatingsSource] = []


def use_ratings(source: RatingsSource) -> None:
    """Where ratings come from (subscribers/ registers its reader on start-up)."""
    _source[:] = [source]


def ratings_for(pks: Sequence[int]) -> Ratings:
    return _source[0](pks) if _source and pks else Ratings()


def ridge(kernel: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Dual ridge coefficients: the weights are the rated vectors times these."""
    n = kernel.shape[0]
    return np.linalg.solve(kernel.astype(np.float64) + RIDGE * np.eye(n), values.astype(np.float64))


def _z(rows: np.ndarray, same: float = np.inf) -> np.ndarray:
    """Each row read against its own spread over the candidates; values from `same` on (a rated paper itself,
    or another version of it, among the candidates) don't count in the spread."""
    if same == np.inf or not rows.size:
        mean, spread = rows.mean(axis=-1, keepdims=True), rows.std(axis=-1, keepdims=True)
    else:
        counted = rows < same
        count = np.maximum(counted.sum(axis=-1, keepdims=True), 1).astype(rows.dtype)
        mean = np.where(counted, rows, 0.0).sum(axis=-1, keepdims=True) / count
        spread = np.sqrt((np.where(counted, rows - mean, 0.0) ** 2).sum(axis=-1, keepdims=True) / count)
    return (rows - mean) / np.maximum(spread, MIN_SPREAD)


@dataclass
class RatingModel:
    """The ratings of a send's readers, read once against the candidate index: each rated paper's similarity to
    every candidate, how close that is (0..1) and whether it counts as "like it", read once per rated paper
    (rows, plus an empty last row that pads the readers' tables); then a chunk of readers at a time, as arrays."""

    index: CandidateIndex
    ratings: Ratings
    rated_ids: np.ndarray  # per row: the rated paper's id
    reader_at: dict[int, int]  # reader id → their run in flat_ids / flat_values, which starts at starts[run]
    starts: np.ndarray
    flat_rows: np.ndarray  # each rating's rated row, -1 for a paper we don't have
    flat_values: np.ndarray
    vectors: np.ndarray | sparse.csr_matrix
    similarity: np.ndarray  # rated papers x candidates
    closeness: np.ndarray  # 0..1, and 0 in the padding row
    liking: np.ndarray  # the closeness where it is close enough to count as "like it", else 0
    duplicate: np.ndarray  # bool: another version of the rated paper
    titles: np.ndarray  # objects

    @classmethod
    def build(cls, index: CandidateIndex, ratings: Ratings) -> "RatingModel | None":
        # Every reader's newest ratings as one flat run each (readers in the order of `by_reader`), made a block
        # of readers at a time: a hundred thousand readers' ids at once would be 80 MB of int64 per copy.
        pairs = list(ratings.by_reader.values())
        lengths = np.fromiter((min(len(i), MAX_RATINGS_USED) for i, _ in pairs), dtype=np.int64, count=len(pairs))
        blocks = [pairs[start : start + FLAT_BLOCK] for start in range(0, len(pairs), FLAT_BLOCK)]
        ids = sorted(ratings.papers)  # the rated papers, as handed in
        if not ids or not index.papers or not lengths.any():
            return None
        known = np.array(ids, dtype=np.int64)
        flat_rows = np.empty(int(lengths.sum()), dtype=np.int32)
        flat_values = np.empty(flat_rows.size, dtype=np.int8)
        at = 0
        for block in blocks:
            block_ids = _flat_of(block, 0, np.int64)
            flat_rows[at : at + block_ids.size] = _rows_of(block_ids, known)
            flat_values[at : at + block_ids.size] = _flat_of(block, 1, np.int8)
            at += block_ids.size
        papers = [ratings.papers[pid] for pid in ids]
        vectors = _vectors(index, papers)
        candidates = index.embedding if index.embedding is not None else index.tfidf
        similarity = vectors @ candidates.T
        similarity = np.asarray(similarity.toarray() if sparse.issparse(similarity) else similarity, np.float32)
        similar = SIMILAR_EMBEDDING if index.embedding is not None else SIMILAR_TFIDF
        threshold = index.duplicate_threshold
        # Each rated paper once, in blocks (memory stays flat); the last row stays empty, for padding.
        closeness = np.zeros((len(ids) + 1, similarity.shape[1]), dtype=np.float32)
        liking, duplicate = np.zeros_like(closeness), np.zeros(closeness.shape, dtype=bool)
        for start in range(0, len(ids), BUILD_BLOCK):
            block = similarity[start : start + BUILD_BLOCK]
            z = _z(block, threshold)
            near = np.maximum(np.clip(z / Z_TOP, 0.0, 1.0), np.clip(block / (2 * similar), 0.0, 1.0))
            closeness[start : start + len(block)] = near
            liking[start : start + len(block)] = np.where((z >= Z_MATCH) | (block >= similar), near, 0.0)
            duplicate[start : start + len(block)] = block >= threshold
        return cls(
            index=index,
            ratings=ratings,
            rated_ids=np.array(ids, dtype=np.int64),
            reader_at={pk: i for i, pk in enumerate(ratings.by_reader)},
            starts=np.concatenate(([0], np.cumsum(lengths))),
            flat_rows=flat_rows,
            flat_values=flat_values,
            vectors=vectors,
            similarity=similarity,
            closeness=closeness,
            liking=liking,
            duplicate=duplicate,
            titles=np.array([*(p.title for p in papers), ""], dtype=object),
        )

    def adjust(self, pks: Sequence[int], total: np.ndarray, matched: np.ndarray) -> np.ndarray:
        """Fold the chunk's ratings into its relevance (`total`, readers x candidates) and matches, in place.
        Returns, per (reader, candidate), the row of the liked paper that brought it (-1: none), for reasons."""
        liked_by = np.full(total.shape, -1, dtype=np.int32)
        by_reader = self.ratings.by_reader
        rated = [i for i, pk in enumerate(pks) if pk in by_reader]
        for start in range(0, len(rated), SUBCHUNK):
            at = np.array(rated[start : start + SUBCHUNK], dtype=np.int64)
            self._block(at, [pks[i] for i in at.tolist()], total, matched, liked_by)
        return liked_by

    def _flat(self, pks: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(reader, rated row, value) of each reader's newest MAX_RATINGS_USED ratings of papers we have, newest
        first per reader, readers in order."""
        runs = np.fromiter(map(self.reader_at.__getitem__, pks), dtype=np.int64, count=len(pks))
        starts, ends = self.starts[runs], self.starts[runs + 1]
        lengths = ends - starts
        offsets = np.cumsum(lengths) - lengths
        at = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
        rows, values = self.flat_rows[at], self.flat_values[at]
        owner = np.repeat(np.arange(len(pks)), lengths)
        known = rows >= 0
        return owner[known], rows[known], values[known]

    def _table(self, owner: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
        """Per reader, their first NEIGHBOUR_RATINGS rows (the newest), padded with the empty row."""
        counts = np.bincount(owner, minlength=n)
        rank = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
        keep = rank < NEIGHBOUR_RATINGS
        table = np.full((n, NEIGHBOUR_RATINGS), len(self.closeness) - 1, dtype=np.int64)
        table[owner[keep], rank[keep]] = rows[keep]
        return table

    def _block(self, at: np.ndarray, pks: list[int], total: np.ndarray, matched: np.ndarray, liked_by: np.ndarray):
        owner, rows, values = self._flat(pks)
        n = len(pks)
        liked = self._table(owner[values > 0], rows[values > 0], n)
        disliked = self._table(owner[values < 0], rows[values < 0], n)
        # The closest liked paper and the closest disliked one, per reader and candidate: one row gather per rank.
        best, nearest = self.liking[liked[:, 0]], np.zeros((n, self.liking.shape[1]), dtype=np.int64)
        worst = self.closeness[disliked[:, 0]]
        for j in range(1, NEIGHBOUR_RATINGS):
            near = self.liking[liked[:, j]]
            closer = near > best
            np.copyto(best, near, where=closer)
            nearest[closer] = j
            np.maximum(worst, self.closeness[disliked[:, j]], out=worst)
        interests = total[at]
        like = LIKE_WEIGHT * best
        liked_by[at] = np.where((best > 0) & (like > interests), np.take_along_axis(liked, nearest, axis=1), -1)
        total[at] = interests + like - DISLIKE_WEIGHT * worst
        matched[at] |= best > 0
        counts = np.bincount(owner, minlength=n)
        learning = np.flatnonzero(counts >= MIN_RATINGS_FOR_MODEL)
        if learning.size:
            starts = np.cumsum(counts) - counts
            spans = [(int(starts[i]), int(starts[i] + counts[i])) for i in learning.tolist()]
            fitted = [(pks[i], rows[a:b], values[a:b]) for i, (a, b) in zip(learning.tolist(), spans, strict=True)]
            z = _z(self._model(fitted))
            where = at[learning]
            total[where] = (1 - MODEL_WEIGHT) * total[where] + MODEL_WEIGHT * np.clip(z / Z_TOP, -1.0, 1.0)
            matched[where] |= z >= Z_MATCH
        # A disliked paper's other versions never come back, and a rated paper is not shown again.
        matched[at] &= ~self.duplicate[disliked].any(axis=1)
        index = self.index
        ids = self.rated_ids[rows]
        found = np.minimum(np.searchsorted(index.sorted_ids, ids), len(index.sorted_ids) - 1)
        among = index.sorted_ids[found] == ids
        matched[at[owner[among]], index.sorted_positions[found[among]]] = False

    def _model(self, rated: list[tuple[int, np.ndarray, np.ndarray]]) -> np.ndarray:
        """The model's scores over the candidates for these readers: their kept weights (`Ratings.weights`, one
        matrix product for all of them) when the candidates are embedded, else fitted now."""
        out = np.empty((len(rated), self.similarity.shape[1]), dtype=np.float32)
        embedded, kept = self.index.embedding, self.ratings.weights
        width = embedded.shape[1] if embedded is not None else -1
        found = [kept.get(pk) for pk, _, _ in rated] if embedded is not None else []
        stacked = [i for i, weights in enumerate(found) if weights is not None and weights.shape == (width,)]
        if stacked:
            out[stacked] = np.stack([found[i] for i in stacked]) @ embedded.T
        for i in sorted(set(range(len(rated))) - set(stacked)):
            out[i] = self.scores(rated[i][1], rated[i][2])
        return out

    def scores(self, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The reader's ridge model over the candidates."""
        vectors = self.vectors[rows]
        kernel = vectors @ vectors.T
        kernel = kernel.toarray() if sparse.issparse(kernel) else kernel
        return (ridge(np.asarray(kernel), values) @ self.similarity[rows]).astype(np.float32)


def _flat_of(pairs: list, field: int, dtype: type) -> np.ndarray:
    """One field (0: paper ids, 1: values) of these readers' newest ratings, one run after the other."""
    return np.concatenate([np.asarray(pair[field][:MAX_RATINGS_USED], dtype=dtype) for pair in pairs])


def _rows_of(ids: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Where each id sits in `known` (-1 where it doesn't)."""
    order = np.argsort(known, kind="stable")
    at = np.minimum(np.searchsorted(known[order], ids), max(len(known) - 1, 0))
    return np.where(known[order][at] == ids, order[at], -1) if len(known) else np.full(len(ids), -1)


def _vectors(index: CandidateIndex, papers: list[Paper]) -> np.ndarray | sparse.csr_matrix:
    """Rated papers in the index's space: stored embeddings (computed now where missing), else TF-IDF rows
    under the day's vectorizer (the title twice, as the index reads candidates)."""
    if index.embedding is not None:
        return embeddings.paper_vectors(papers)
    return index.vectorizer.transform([f"{p.title}. {p.title}. {p.abstract}" for p in papers]).tocsr()


def explain(
    part: tuple[list[int], np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    index: CandidateIndex,
    liked_by: np.ndarray | None,
    taught: "RatingModel | None",
) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A chunk's picks (picks.chunk_picks) with "like 'X' you liked" as the reason where a liked paper brought
    the pick (`liked_by`, from RatingModel.adjust)."""
    if taught is None or liked_by is None or not (liked_by >= 0).any():
        return part
    pks, counts, ids, scores, reasons = part
    owners = np.repeat(np.arange(len(counts)), counts)
    positions = np.fromiter(map(index.position.__getitem__, ids.tolist()), dtype=np.int64, count=len(ids))
    by = liked_by[owners, positions]
    used, inverse = np.unique(by[by >= 0], return_inverse=True)
    named = np.array([f"like “{title}” you liked" for title in taught.titles[used].tolist()], dtype=object)
    reasons = reasons.copy()
    reasons[by >= 0] = named[inverse]
    return pks, counts, ids, scores, reasons


# --- At scale: each reader's model kept as weights, all readers' weights one matrix --------------------------


def fit(vectors: np.ndarray, values: np.ndarray) -> np.ndarray:
    """One reader's model as weights over the vector space (the rated vectors times their dual coefficients):
    refitted when they rate (a few milliseconds at MAX_RATINGS_USED ratings) and kept, so a send ranks every
    reader with one matrix product (`stacked_relevance`)."""
    vectors = np.asarray(vectors, dtype=np.float32)[:MAX_RATINGS_USED]
    values = np.asarray(values)[:MAX_RATINGS_USED]
    return (ridge(vectors @ vectors.T, values) @ vectors).astype(np.float32)


def stacked_relevance(weights: np.ndarray, candidates: np.ndarray, interests: np.ndarray | None = None) -> np.ndarray:
    """Relevance for many readers at once from their stacked weights (readers x d) and the candidates' vectors
    (papers x d): the model's scores, each row read against its own spread as `RatingModel` reads one reader's,
    blended with the readers' interest relevance (readers x papers) as a send blends them."""
    scores = weights @ candidates.T
    scores -= scores.mean(axis=1, keepdims=True)
    scores /= np.maximum(scores.std(axis=1, keepdims=True), MIN_SPREAD)
    np.clip(scores / Z_TOP, -1.0, 1.0, out=scores)
    scores *= MODEL_WEIGHT
    if interests is not None:
        scores += (1 - MODEL_WEIGHT) * interests
    return scores
