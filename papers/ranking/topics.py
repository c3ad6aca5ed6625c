"""How well each interest topic matches each candidate paper: TF-IDF cosine (words the reader shares with the
paper), blended with sentence-embedding cosine (meaning) when the model is on. Every distinct topic is scored
once per candidate index, however many readers share it."""

import numpy as np
from scipy import sparse

from papers import embeddings
from papers.ranking.index import CandidateIndex

# With the model, meaning carries most of the weight; TF-IDF keeps exact technical terms ("LoRA", "MoE")
# that a small model blurs. Without it, TF-IDF is all there is.
EMBEDDING_WEIGHT = 0.7
TFIDF_WEIGHT_WITH_EMBEDDINGS = 0.3
# How close a topic and a paper are depends on the topic: MiniLM finds a broad topic ("fine-tuning large
# language models") close to many abstracts, and a topic phrased far from papers' words ("AI for medicine")
# distant even from its best ones. So each topic's cosines are read against their own spread over the day's
# candidates (a z-score): a paper matches when it stands Z_MATCH spreads above the topic's average, and Z_TOP
# spreads scores full marks.
Z_MATCH = 1.5
Z_TOP = 4.0
# ...and the cosine itself must say "about the same subject" at all: below this, no spread makes it a match.
EMBEDDING_FLOOR = 0.2
# The spread is never taken as smaller than this, so a tiny or uniform candidate set can't inflate z-scores.
MIN_SPREAD = 0.05
# TF-IDF alone: a topic matches from this cosine on (one shared distinctive term in title or abstract);
# below it a reader would ask "why this one?".
MIN_TOPIC_SCORE = 0.08
# Topics scored against the papers per block: 4,096 x 500 dense floats is 8 MB before it is made sparse.
TOPIC_BLOCK = 4_096


def topic_scores(index: CandidateIndex, topics: list[str]) -> np.ndarray:
    """Topics x papers relevance, 0 where the topic does not match the paper: TF-IDF cosine, blended with the
    topic-normalized embedding cosine when the model is on."""
    if not topics or not index.papers:
        return np.zeros((len(topics), len(index.papers)), dtype=np.float32)
    lexical = (index.vectorizer.transform(topics) @ index.tfidf.T).toarray().astype(np.float32)
    lexical_match = lexical >= MIN_TOPIC_SCORE
    if index.embedding is None:
        return np.where(lexical_match, lexical, 0.0).astype(np.float32)
    cosine = embeddings.encode(topics, shared=True) @ index.embedding.T
    spread = np.maximum(cosine.std(axis=1, keepdims=True), MIN_SPREAD)
    z = (cosine - cosine.mean(axis=1, keepdims=True)) / spread
    semantic_match = (z >= Z_MATCH) & (cosine >= EMBEDDING_FLOOR)
    blended = EMBEDDING_WEIGHT * np.clip(z / Z_TOP, 0.0, 1.0) + TFIDF_WEIGHT_WITH_EMBEDDINGS * lexical
    return np.where(lexical_match | semantic_match, blended, 0.0).astype(np.float32)


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
