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

from collections.abc import Callable, Iterable, Mapping, Sequence
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
# With the model on, this share of the relevance comes from it, the rest from interests and liked papers: 0.5
# fell below interests alone at 20 ratings on the simulated readers, 0.3 gains at every checkpoint.
MODEL_WEIGHT = 0.3

RatingsSource = Callable[[Sequence[int]], "Ratings"]


@dataclass
class Ratings:
    """Readers' ratings: {reader id: (paper ids, values +1/-1), newest first} and the rated papers (title,
    abstract, embedding)."""

    by_reader: Mapping[int, tuple[Sequence[int], Sequence[int]]] = field(default_factory=dict)
    papers: Mapping[int, Paper] = field(default_factory=dict)


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
    counted = np.where(rows < same, rows, np.nan)
    mean = np.nan_to_num(np.nanmean(counted, axis=-1, keepdims=True)) if counted.size else 0.0
    spread = np.maximum(np.nan_to_num(np.nanstd(counted, axis=-1, keepdims=True)), MIN_SPREAD)
    return (rows - mean) / spread


@dataclass
class RatingModel:
    """The ratings of a send's readers, read once against the candidate index: each rated paper's similarity to
    every candidate (rows of `similarity`) and to the other rated papers (`vectors`, for the model)."""

    index: CandidateIndex
    ratings: Ratings
    row: dict[int, int]  # rated paper id → row of `similarity`
    vectors: np.ndarray | sparse.csr_matrix
    similarity: np.ndarray  # rated papers x candidates
    titles: list[str]

    @classmethod
    def build(cls, index: CandidateIndex, ratings: Ratings) -> "RatingModel | None":
        rated = [pid for ids, _ in ratings.by_reader.values() for pid in ids[:MAX_RATINGS_USED]]
        ids = [pid for pid in dict.fromkeys(rated) if pid in ratings.papers]
        if not ids or not index.papers:
            return None
        papers = [ratings.papers[pid] for pid in ids]
        vectors = _vectors(index, papers)
        candidates = index.embedding if index.embedding is not None else index.tfidf
        similarity = vectors @ candidates.T
        similarity = np.asarray(similarity.toarray() if sparse.issparse(similarity) else similarity, np.float32)
        return cls(index, ratings, {pid: i for i, pid in enumerate(ids)}, vectors, similarity,
                   [p.title for p in papers])  # fmt: skip

    def adjust(self, pks: Sequence[int], total: np.ndarray, matched: np.ndarray) -> dict[tuple[int, int], str]:
        """Fold the chunk's ratings into its relevance (`total`, readers x candidates) and matches, in place.
        Returns {(row, position): "like 'Title' you liked"} where a liked paper is what brought a candidate."""
        said: dict[tuple[int, int], str] = {}
        for row, pk in enumerate(pks):
            rated = self.ratings.by_reader.get(pk)
            if not rated:
                continue
            pairs = [(self.row[pid], v) for pid, v in zip(rated[0][:MAX_RATINGS_USED], rated[1], strict=False)
                     if pid in self.row]  # fmt: skip
            if pairs:
                self._one(row, np.array(pairs, dtype=np.int64), total, matched, said)
        return said

    def _one(self, row: int, pairs: np.ndarray, total: np.ndarray, matched: np.ndarray, said: dict) -> None:
        rows, values = pairs[:, 0], pairs[:, 1]
        similarity = self.similarity[rows]
        z = _z(similarity, self.index.duplicate_threshold)
        similar = SIMILAR_EMBEDDING if self.index.embedding is not None else SIMILAR_TFIDF
        # How close each candidate is to each rated paper, 0..1, and whether it counts as "like it".
        closeness = np.maximum(np.clip(z / Z_TOP, 0.0, 1.0), np.clip(similarity / (2 * similar), 0.0, 1.0))
        alike = (z >= Z_MATCH) | (similarity >= similar)
        interests = total[row].copy()
        relevance, penalty = interests, np.zeros_like(interests)
        liked, disliked = values > 0, values < 0
        if disliked.any():
            penalty = -DISLIKE_WEIGHT * closeness[disliked].max(axis=0)
        if liked.any():
            near = np.where(alike[liked], closeness[liked], 0.0)
            nearest = near.argmax(axis=0)
            best = near[nearest, np.arange(near.shape[1])]
            like = LIKE_WEIGHT * best
            hit = best > 0
            relevance = np.where(hit, interests + like, interests)
            explains = hit & (like > interests)
            titles = np.asarray(self.titles, dtype=object)[rows[liked][nearest[explains]]]
            for position, title in zip(np.flatnonzero(explains).tolist(), titles.tolist(), strict=True):
                said[(row, position)] = f"like “{title}” you liked"
            matched[row] |= hit
        total[row] = relevance + penalty
        if len(rows) >= MIN_RATINGS_FOR_MODEL:
            z_model = _z(self.scores(rows, values)[None, :])[0]
            total[row] = (1 - MODEL_WEIGHT) * total[row] + MODEL_WEIGHT * np.clip(z_model / Z_TOP, -1.0, 1.0)
            matched[row] |= z_model >= Z_MATCH
        if disliked.any():  # a disliked paper's other versions never come back
            matched[row, similarity[disliked].max(axis=0) >= self.index.duplicate_threshold] = False

    def scores(self, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The reader's ridge model over the candidates."""
        vectors = self.vectors[rows]
        kernel = vectors @ vectors.T
        kernel = kernel.toarray() if sparse.issparse(kernel) else kernel
        return (ridge(np.asarray(kernel), values) @ self.similarity[rows]).astype(np.float32)


def _vectors(index: CandidateIndex, papers: list[Paper]) -> np.ndarray | sparse.csr_matrix:
    """Rated papers in the index's space: stored embeddings (computed now where missing), else TF-IDF rows
    under the day's vectorizer (the title twice, as the index reads candidates)."""
    if index.embedding is not None:
        return embeddings.paper_vectors(papers)
    return index.vectorizer.transform([f"{p.title}. {p.title}. {p.abstract}" for p in papers]).tocsr()


def explain(
    part: tuple[list[int], np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    index: CandidateIndex,
    said: Mapping[tuple[int, int], str],
) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A chunk's picks (picks.chunk_picks) with "like 'X' you liked" as the reason where a liked paper brought
    the pick."""
    if not said:
        return part
    pks, counts, ids, scores, reasons = part
    owners = np.repeat(np.arange(len(counts)), counts).tolist()
    reasons = reasons.copy()
    for i, (owner, paper_id) in enumerate(zip(owners, ids.tolist(), strict=True)):
        liked = said.get((owner, index.position[paper_id]))
        if liked is not None:
            reasons[i] = liked
    return pks, counts, ids, scores, reasons


def rated_ids(ratings: Ratings, pks: Iterable[int]) -> dict[int, set[int]]:
    """Each reader's rated papers: never picked again (they have seen them)."""
    return {pk: set(ratings.by_reader[pk][0]) for pk in pks if pk in ratings.by_reader}


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
