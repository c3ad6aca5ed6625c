"""Okapi BM25 over a set of candidate papers: the lexical side of "For you" relevance.

BM25 rather than TF-IDF cosine: a term's weight saturates with its count and is read against the paper's length,
so a long abstract that repeats a word does not outrank a short one about it (on the labelled evaluation it
equals TF-IDF alone and fuses better with the model's list; see README, "For you")."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from papers.ranking.analyze import analyze

# The textbook defaults (Robertson & Zaragoza, 2009), not tuned on our labels: k1 says how fast a term's count
# saturates, b how much a paper's length discounts it.
BM25_K1 = 1.2
BM25_B = 0.75


@dataclass
class Bm25:
    vocabulary: dict[str, int]  # term → column
    weights: sparse.csr_matrix  # terms × papers: each term's BM25 weight in each paper
    idf: np.ndarray  # per term
    df: np.ndarray  # per term: papers holding it

    @classmethod
    def build(cls, texts: Sequence[str]) -> "Bm25":
        """Terms as the ranking reads them (analyze: words and word pairs, stop words out, plurals folded)."""
        from sklearn.feature_extraction.text import CountVectorizer

        if not texts:
            empty = np.zeros(0, dtype=np.float32)
            return cls({}, sparse.csr_matrix((0, 0), dtype=np.float32), empty, empty.astype(np.int64))
        vectorizer = CountVectorizer(analyzer=analyze, dtype=np.float32)
        try:
            counts = vectorizer.fit_transform(texts).tocoo()
        except ValueError:  # no paper holds a single term (only stop words): nothing to match
            empty = np.zeros(0, dtype=np.float32)
            return cls({}, sparse.csr_matrix((0, len(texts)), dtype=np.float32), empty, empty.astype(np.int64))
        n = counts.shape[0]
        length = np.asarray(counts.sum(axis=1)).ravel()
        df = np.bincount(counts.col, minlength=counts.shape[1])
        idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * length / max(length.mean(), 1.0))
        weight = counts.data * (BM25_K1 + 1) / (counts.data + norm[counts.row]) * idf[counts.col]
        weights = sparse.csr_matrix((weight.astype(np.float32), (counts.col, counts.row)), shape=counts.shape[::-1])
        return cls(dict(vectorizer.vocabulary_), weights, idf, df)

    def queries(self, term_lists: Iterable[Iterable[str]]) -> sparse.csr_matrix:
        """queries x terms, 1 for each distinct known term of each query."""
        rows = [sorted({self.vocabulary[t] for t in terms if t in self.vocabulary}) for terms in term_lists]
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        indptr = np.concatenate(([0], np.cumsum(lengths)))
        columns = np.fromiter((c for row in rows for c in row), dtype=np.int64, count=int(indptr[-1]))
        return sparse.csr_matrix(
            (np.ones(columns.size, dtype=np.float32), columns, indptr), shape=(len(rows), len(self.vocabulary))
        )

    def scores(self, term_lists: Iterable[Iterable[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(queries x papers BM25, each query's ceiling): the ceiling is the most any paper could score, every
        term of the query at full weight, so that score / ceiling reads the same for a short and a long query."""
        query = self.queries(term_lists)
        if not self.vocabulary:
            return np.zeros((query.shape[0], self.weights.shape[1]), dtype=np.float32), np.ones(query.shape[0])
        scores = (query @ self.weights).toarray().astype(np.float32, copy=False)
        ceiling = query @ (self.idf * (BM25_K1 + 1))
        return scores, np.maximum(ceiling, np.finfo(np.float32).tiny)
