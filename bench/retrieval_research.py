"""Candidate retrieval methods for "For you", measured on the labelled profiles (research, not product code).

Each method maps an interest text to every paper id, best first. They combine the evidence of
bench/retrieval_methods.py in different ways:

- BM25 alone; TF-IDF or BM25 fused with MiniLM by reciprocal rank (RRF), or by a weighted sum of per-topic
  z-scores (the product's way, as a comparison);
- title-weighted paper vectors (the title's vector blended into the paper's);
- acronyms expanded from the corpus itself: "graph neural networks (GNNs)" in an abstract teaches that a reader's
  "GNNs" means "graph neural networks" (Schwartz & Hearst's rule: the long form is the shortest run of words before
  the parenthesis whose initials spell the acronym);
- pseudo-relevance feedback: the topic's vector moved towards the papers it ranks first (Rocchio), in MiniLM space.
"""

from collections.abc import Callable
from functools import cache

import numpy as np

from bench.retrieval_data import corpus
from bench.retrieval_methods import (
    bm25_index,
    bm25_topics,
    cached_vectors,
    dense_topics,
    encode,
    minilm_papers,
    order,
    tfidf_topics,
    topics,
)
from papers.ranking.expansion import expand as expand_with
from papers.ranking.expansion import learn_acronyms

RRF_K = 60  # Cormack et al.'s constant: ranks past the first few dozen barely count
TITLE_WEIGHT = 0.3  # share of the title's vector in a paper's vector
PRF_DEPTH = 5  # papers taken as relevant for feedback
PRF_WEIGHT = 0.5  # the feedback centroid's weight against the topic's own vector
TERM_MIN_DF = 3  # corpus terms offered as expansions appear in at least this many papers
NEAR_TERMS = 5  # expansion terms per topic
NEAR_MIN_COSINE = 0.5  # ...each at least this close to the topic in MiniLM space


# --- Acronyms learnt from the corpus ---------------------------------------------------------------------


@cache
def acronyms() -> dict[str, str]:
    """acronym (lowercase, singular) → its most frequent long form in the corpus (the product's rule)."""
    return learn_acronyms([f"{doc.title}. {doc.abstract}" for doc in corpus()])


def expand(topic: str) -> str:
    """The topic with the long form of each acronym it holds, as the papers spell it."""
    return expand_with(topic, acronyms())


# --- The model's nearest corpus terms ---------------------------------------------------------------------


@cache
def term_vectors() -> tuple[list[str], np.ndarray]:
    """The corpus's unigrams and bigrams (as the product's tokenizer makes them) seen in TERM_MIN_DF papers or
    more, with their MiniLM vectors."""
    vocabulary, weights, _ = bm25_index()
    df = np.diff(weights.indptr)
    names = sorted(t for t, column in vocabulary.items() if df[column] >= TERM_MIN_DF and not t.isdigit())
    return names, cached_vectors("minilm-terms", names)


def near_terms(topic: str) -> list[str]:
    names, vectors = term_vectors()
    cosine = vectors @ encode([topic])[0]
    best = np.argsort(-cosine, kind="stable")[:NEAR_TERMS]
    return [names[i] for i in best if cosine[i] >= NEAR_MIN_COSINE]


def with_near_terms(topic: str) -> str:
    return " ".join([topic, *near_terms(topic)])


# --- Scores per topic ------------------------------------------------------------------------------------


@cache
def title_blended() -> np.ndarray:
    titles = cached_vectors("minilm-titles", [d.title for d in corpus()])
    blended = (1 - TITLE_WEIGHT) * minilm_papers() + TITLE_WEIGHT * titles
    return blended / np.linalg.norm(blended, axis=1, keepdims=True)


def prf(texts: list[str], first: np.ndarray, papers: np.ndarray | None = None) -> np.ndarray:
    """Rocchio in MiniLM space: each topic's vector plus PRF_WEIGHT x the centroid of the PRF_DEPTH papers that
    `first` (topics x papers scores) ranks best, then cosine again."""
    papers = minilm_papers() if papers is None else papers
    query = encode(texts)
    top = np.argsort(-first, axis=1, kind="stable")[:, :PRF_DEPTH]
    moved = query + PRF_WEIGHT * papers[top].mean(axis=1)
    moved /= np.linalg.norm(moved, axis=1, keepdims=True)
    return moved @ papers.T


# --- Fusion ----------------------------------------------------------------------------------------------


def ranks(scores: np.ndarray) -> np.ndarray:
    """Per row, each paper's rank (0 = best); ties broken by position, so every run gives the same ranks."""
    order_ = np.argsort(-scores, axis=1, kind="stable")
    out = np.empty_like(order_)
    rows = np.arange(scores.shape[0])[:, None]
    out[rows, order_] = np.arange(scores.shape[1])
    return out


def rrf(*score_sets: np.ndarray, weights: tuple[float, ...] | None = None) -> np.ndarray:
    """Reciprocal rank fusion: each list adds weight / (RRF_K + rank) for each paper."""
    weights = weights or (1.0,) * len(score_sets)
    return sum(w / (RRF_K + 1 + ranks(s)) for w, s in zip(weights, score_sets, strict=True))


def zscores(scores: np.ndarray) -> np.ndarray:
    spread = np.maximum(scores.std(axis=1, keepdims=True), 1e-6)
    return (scores - scores.mean(axis=1, keepdims=True)) / spread


def per_reader(topic_scores: Callable[[list[str]], np.ndarray]) -> Callable[[str], list[str]]:
    """A ranker from a topics x papers scorer: a reader's score for a paper is their best topic's."""

    def rank(interests: str) -> list[str]:
        return order(topic_scores(topics(interests)).max(axis=0))

    return rank


def hybrid(texts: list[str], title_weighted: bool = False, dense_weight: float = 1.0) -> np.ndarray:
    """Topics with their acronyms spelled out; BM25 over each topic plus the model's nearest corpus terms, fused
    by rank with MiniLM cosine; the topic's vector moved towards the first papers of that list (PRF); BM25 and
    the moved vector's cosine fused by rank again, the model's list weighing dense_weight."""
    texts = [expand(t) for t in texts]
    papers = title_blended() if title_weighted else minilm_papers()
    lexical = bm25_topics([with_near_terms(t) for t in texts])
    first = rrf(lexical, dense_topics(texts, papers))
    return rrf(lexical, prf(texts, first, papers), weights=(1.0, dense_weight))


def methods() -> dict[str, Callable[[str], list[str]]]:
    def exp(texts: list[str]) -> list[str]:
        return [expand(t) for t in texts]

    return {
        "BM25 only": per_reader(bm25_topics),
        "z-sum 0.7 emb + 0.3 tf-idf": per_reader(
            lambda t: 0.7 * zscores(dense_topics(t)) + 0.3 * zscores(tfidf_topics(t))
        ),
        "RRF tf-idf + emb": per_reader(lambda t: rrf(tfidf_topics(t), dense_topics(t))),
        "RRF BM25 + emb": per_reader(lambda t: rrf(bm25_topics(t), dense_topics(t))),
        "emb, title-weighted": per_reader(lambda t: dense_topics(t, title_blended())),
        "RRF BM25 + emb(title-w.)": per_reader(lambda t: rrf(bm25_topics(t), dense_topics(t, title_blended()))),
        "acronyms: tf-idf only": per_reader(lambda t: tfidf_topics(exp(t))),
        "acronyms: emb only": per_reader(lambda t: dense_topics(exp(t))),
        "acronyms: RRF BM25 + emb": per_reader(lambda t: rrf(bm25_topics(exp(t)), dense_topics(exp(t)))),
        "acronyms: RRF BM25 + emb(title-w.)": per_reader(
            lambda t: rrf(bm25_topics(exp(t)), dense_topics(exp(t), title_blended()))
        ),
        "near terms: BM25 only": per_reader(lambda t: bm25_topics([with_near_terms(x) for x in exp(t)])),
        "acronyms + near terms: RRF BM25 + emb": per_reader(
            lambda t: rrf(bm25_topics([with_near_terms(x) for x in exp(t)]), dense_topics(exp(t)))
        ),
        "acr + near: RRF BM25 + emb(title-w.)": per_reader(
            lambda t: rrf(bm25_topics([with_near_terms(x) for x in exp(t)]), dense_topics(exp(t), title_blended()))
        ),
        "acr + near + PRF: RRF BM25 + emb": per_reader(hybrid),
        "acr + near + PRF: RRF BM25 + emb(title-w.)": per_reader(lambda t: hybrid(t, title_weighted=True)),
        "acr + near + PRF: RRF BM25 + 1.5 emb": per_reader(lambda t: hybrid(t, dense_weight=1.5)),
        "acr + near + PRF: RRF BM25 + 2 emb": per_reader(lambda t: hybrid(t, dense_weight=2.0)),
        "acronyms + PRF: RRF BM25 + emb": per_reader(
            lambda t: rrf(bm25_topics(exp(t)), prf(exp(t), rrf(bm25_topics(exp(t)), dense_topics(exp(t)))))
        ),
    }
