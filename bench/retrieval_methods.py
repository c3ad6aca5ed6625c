"""Retrievers over the evaluation corpus: each maps an interest text to paper ids, best first.

The plain ones (TF-IDF cosine, BM25, MiniLM cosine) also made the judging pools of the labels; the tokenizer is
the product's (papers.ranking.analyze: lowercase, stop words out, plurals folded, unigrams + bigrams).
"""

import hashlib
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
from scipy import sparse

from bench.retrieval_data import Doc, corpus
from papers import embeddings
from papers.interests import parse_interests
from papers.ranking import analyze

CACHE = Path(__file__).resolve().parent.parent / "var" / "retrieval"
BM25_K1 = 1.2  # the textbook defaults (Robertson & Zaragoza): not tuned on these labels
BM25_B = 0.75


def topics(interests: str) -> list[str]:
    """The reader's topics as the product reads them (comma-separated pieces); the whole text when none."""
    return list(parse_interests(interests).topics) or [interests]


def order(scores: np.ndarray, docs: Sequence[Doc] | None = None) -> list[str]:
    """Ids by score, best first; ties by id so every run gives the same list."""
    docs = docs or corpus()
    ids = np.array([d.id for d in docs])
    return [str(ids[i]) for i in np.lexsort((ids, -scores))]


@cache
def tfidf_index():
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, dtype=np.float32)
    # As the product builds it: the title counts twice.
    matrix = vectorizer.fit_transform([f"{d.title}. {d.title}. {d.abstract}" for d in corpus()])
    return vectorizer, matrix


def tfidf_topics(texts: list[str]) -> np.ndarray:
    """Topics x papers TF-IDF cosine."""
    vectorizer, matrix = tfidf_index()
    return (vectorizer.transform(texts) @ matrix.T).toarray()


def tfidf_scores(interests: str) -> np.ndarray:
    """Best topic's cosine per paper (a reader's relevance is their best-matching topic, as in the product)."""
    return tfidf_topics(topics(interests)).max(axis=0)


@cache
def bm25_index() -> tuple[dict[str, int], sparse.csc_matrix, np.ndarray]:
    """Okapi BM25 term weights, papers x terms, over title + abstract (unigrams and bigrams)."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(analyzer=analyze, dtype=np.float32)
    tf = vectorizer.fit_transform([f"{d.title}. {d.abstract}" for d in corpus()]).tocoo()
    length = np.asarray(tf.sum(axis=1)).ravel()
    n = tf.shape[0]
    df = np.bincount(tf.col, minlength=tf.shape[1])
    idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
    norm = BM25_K1 * (1 - BM25_B + BM25_B * length / length.mean())
    weight = tf.data * (BM25_K1 + 1) / (tf.data + norm[tf.row]) * idf[tf.col]
    return vectorizer.vocabulary_, sparse.csc_matrix((weight, (tf.row, tf.col)), shape=tf.shape), idf


def bm25_topics(texts: list[str]) -> np.ndarray:
    """Topics x papers BM25: each topic's terms' weights summed per paper."""
    vocabulary, weights, _ = bm25_index()
    out = np.zeros((len(texts), weights.shape[0]), dtype=np.float32)
    for row, text in enumerate(texts):
        columns = sorted({vocabulary[t] for t in analyze(text) if t in vocabulary})
        if columns:
            out[row] = np.asarray(weights[:, columns].sum(axis=1)).ravel()
    return out


def bm25_scores(interests: str) -> np.ndarray:
    return bm25_topics(topics(interests)).max(axis=0)


# The model's runtime for the research methods: the product's unless RETRIEVAL_ENCODER names another
# (bench/retrieval_runtimes.py: "onnx:PATH", "model2vec:PATH").
ENCODER = os.environ.get("RETRIEVAL_ENCODER", "")
if ENCODER and os.environ.get("RETRIEVAL_MAX_TOKENS"):
    ENCODER += "@" + os.environ["RETRIEVAL_MAX_TOKENS"]  # part of the cache key: another truncation, other vectors


@cache
def runtime_key() -> str:
    """What made the vectors: RETRIEVAL_ENCODER's runtime, else the product's ("" for torch, as first cached)."""
    if ENCODER:
        return ENCODER
    if embeddings.runtime() == embeddings.ONNX:
        from django.conf import settings

        from papers.encoder import MAX_TOKENS

        model = hashlib.sha256(Path(settings.RANKING_EMBEDDINGS_MODEL).read_bytes()).hexdigest()[:12]
        return f"product-onnx-int8@{MAX_TOKENS}:{model}"  # a rebuilt model file, other vectors
    return ""


@cache
def _other_encoder():
    from bench.retrieval_runtimes import encoder

    return encoder(ENCODER.partition("@")[0])


def encode(texts: list[str]) -> np.ndarray:
    """Unit vectors of texts by the chosen runtime; the product's memo keeps interests it has seen."""
    return _other_encoder()(list(texts)) if ENCODER else embeddings.encode(texts)


def cached_vectors(name: str, texts: list[str]) -> np.ndarray:
    """Unit vectors of texts, kept under var/retrieval/ by runtime and a hash of the texts: encoding the corpus
    takes over a minute with torch."""
    digest = hashlib.sha256("\n".join([runtime_key(), *texts] if runtime_key() else texts).encode()).hexdigest()[:16]
    path = CACHE / f"{name}-{digest}.npy"
    if path.exists():
        return np.load(path)
    vectors = encode(texts)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


@cache
def minilm_papers() -> np.ndarray:
    """Every paper's vector, from the product's text for it (title. abstract)."""
    return cached_vectors("minilm", [embeddings.paper_text(d.title, d.abstract) for d in corpus()])


def dense_topics(texts: list[str], papers: np.ndarray | None = None) -> np.ndarray:
    """Topics x papers cosine in the model's space (the papers' own vectors unless others are given)."""
    return encode(texts) @ (minilm_papers() if papers is None else papers).T


def minilm_scores(interests: str) -> np.ndarray:
    return dense_topics(topics(interests)).max(axis=0)
