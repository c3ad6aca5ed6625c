"""How well each interest topic matches each candidate paper.

The topic is first read the way the papers say it (expansion.py: acronyms spelled out from the candidates' own
definitions). Without the model, relevance is BM25 (lexical.py) alone. With it, two lists are fused by rank
(reciprocal rank fusion): BM25 over the topic plus the model's nearest candidate terms, and the cosine of the
topic's vector moved towards the first papers of a first fused list (pseudo-relevance feedback). Fusing ranks
rather than scores needs no per-topic normalisation: each list can only lift the papers it ranks high.
Every distinct topic is scored once per candidate index, however many readers share it."""

import numpy as np
from scipy import sparse

from papers import embeddings
from papers.ranking.analyze import analyze
from papers.ranking.expansion import expand
from papers.ranking.index import CandidateIndex

# A paper matches a topic on the topic's own words when its BM25 reaches this share of the most the topic's
# terms could give: one distinctive word of the topic in the title or abstract does, a common one ("learning")
# does not. Below it a reader would ask "why this one?".
LEXICAL_MATCH = 0.1
# ...or on meaning, with the model: how close a topic and a paper are depends on the topic (MiniLM finds a broad
# topic close to many abstracts, and a topic phrased far from papers' words distant even from its best ones),
# so each topic's cosines are read against their own spread over the candidates (a z-score): a paper matches
# when it stands Z_MATCH spreads above the topic's average and its cosine says "about the same subject" at all.
Z_MATCH = 1.5
EMBEDDING_FLOOR = 0.2
# The spread is never taken as smaller than this, so a tiny or uniform candidate set can't inflate z-scores.
MIN_SPREAD = 0.05
# Reciprocal rank fusion (Cormack et al., 2009): each list adds weight / (RRF_K + rank). Their constant: ranks
# past the first few dozen barely count, and no list's top can be drowned by the other's tail.
RRF_K = 60
# The model's list weighs more than the words': on the labelled evaluation 1.5 beat 1 and 2 (README, "For you").
DENSE_WEIGHT = 1.5
# Pseudo-relevance feedback (Rocchio): the topic's vector plus PRF_WEIGHT × the mean of the first PRF_DEPTH
# papers of the first fused list: a short topic borrows the words its best papers use.
PRF_DEPTH = 5
PRF_WEIGHT = 0.5
# Topics scored against the papers per block: 4,096 x 500 dense floats is 8 MB before it is made sparse.
TOPIC_BLOCK = 4_096


def reciprocal_ranks(scores: np.ndarray, weight: float = 1.0, every: bool = False) -> np.ndarray:
    """Per row, weight / (RRF_K + rank) for each paper (rank 1 = best; ties in the order numpy's sort leaves
    them, the same in every run). A lexical list holds only the papers with a positive score (0 for the others);
    the model's list (every=True) holds them all."""
    order = np.argsort(-scores, axis=1)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(1, scores.shape[1] + 1)[None, :], axis=1)
    return np.where(every | (scores > 0), weight / (RRF_K + rank), 0.0).astype(np.float32)


def feedback(vectors: np.ndarray, first: np.ndarray, papers: np.ndarray) -> np.ndarray:
    """Cosine of each topic's vector moved towards the mean of the papers `first` ranks best (topics x papers)."""
    depth = min(PRF_DEPTH, first.shape[1])
    top = np.argpartition(-first, depth - 1, axis=1)[:, :depth]
    moved = vectors + PRF_WEIGHT * papers[top].mean(axis=1)
    moved /= np.maximum(np.linalg.norm(moved, axis=1, keepdims=True), 1e-12)
    return moved @ papers.T


def topic_scores(index: CandidateIndex, topics: list[str]) -> np.ndarray:
    """Topics x papers relevance in (0, 1], 0 where the topic does not match the paper."""
    if not topics or not index.papers:
        return np.zeros((len(topics), len(index.papers)), dtype=np.float32)
    expanded = [expand(topic, index.acronyms) for topic in topics]
    own_terms = [analyze(text) for text in expanded]
    own, ceiling = index.bm25.scores(own_terms)
    own /= ceiling[:, None]
    lexical_match = own >= LEXICAL_MATCH
    if index.embedding is None:
        return np.where(lexical_match, own, 0.0).astype(np.float32)
    papers = index.embedding
    vectors = embeddings.encode(expanded, shared=True)
    near = index.terms().nearest(vectors)
    # The lexical list: BM25 over the topic's words and its nearest terms, read as one query.
    lexical, _ = index.bm25.scores([analyze(" ".join([t, *extra])) for t, extra in zip(expanded, near, strict=True)])
    lexical_ranks = reciprocal_ranks(lexical)
    first = lexical_ranks + reciprocal_ranks(vectors @ papers.T, every=True)
    dense = feedback(vectors, first, papers)
    fused = lexical_ranks + reciprocal_ranks(dense, DENSE_WEIGHT, every=True)
    spread = np.maximum(dense.std(axis=1, keepdims=True), MIN_SPREAD)
    semantic_match = ((dense - dense.mean(axis=1, keepdims=True)) / spread >= Z_MATCH) & (dense >= EMBEDDING_FLOOR)
    best = (1.0 + DENSE_WEIGHT) / (RRF_K + 1)  # first on both lists
    return np.where(lexical_match | semantic_match, fused / best, 0.0).astype(np.float32)


def topic_matrix(index: CandidateIndex, topics: list[str]) -> sparse.csr_matrix:
    """(topics + 1) x papers, sparse: only matches are non-zero. The last row is the "no topic" row.

    Each topic's row is scored once per candidate index and kept with it: the chunks of a send share most of
    their readers' topics."""
    known = index.topic_rows.get_many(topics)
    missing = [topic for topic in topics if topic not in known]
    fresh: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for start in range(0, len(missing), TOPIC_BLOCK):
        block = sparse.csr_matrix(topic_scores(index, missing[start : start + TOPIC_BLOCK]))
        for i, topic in enumerate(missing[start : start + TOPIC_BLOCK]):
            at = slice(block.indptr[i], block.indptr[i + 1])
            fresh[topic] = block.indices[at], block.data[at]
    index.topic_rows.update(fresh)
    known.update(fresh)
    rows = [known[topic] for topic in topics]
    if not rows:
        return sparse.csr_matrix((1, len(index.papers)), dtype=np.float32)
    lengths = np.fromiter((len(columns) for columns, _ in rows), dtype=np.int64, count=len(rows))
    indptr = np.concatenate(([0], np.cumsum(lengths), [lengths.sum()]))
    columns = np.concatenate([columns for columns, _ in rows])
    values = np.concatenate([values for _, values in rows]).astype(np.float32, copy=False)
    return sparse.csr_matrix((values, columns, indptr), shape=(len(rows) + 1, len(index.papers)))
