"""The candidate index: everything about a set of candidate papers that every reader's ranking reuses (TF-IDF,
embeddings, similarity and near-duplicates, trending, categories and authors), built once per candidate set
and kept for the chunks of a send."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np
from django.utils import timezone
from scipy import sparse

from papers import embeddings
from papers.caches import Lru
from papers.interests import author_key, negative_pattern
from papers.models import Moderation, Paper
from papers.ranking.analyze import analyze, title_key
from papers.ranking.expansion import TermSpace, learn_acronyms
from papers.ranking.lexical import Bm25
from papers.ranking.trending import editorial_boost, trending_score

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer

# Candidate sets kept ready (TF-IDF fitted, embeddings loaded): a send ranks one set in many chunks.
INDEX_CACHE_SIZE = 4
# Topic rows kept per candidate index (a few dozen matches each): a day's distinct topics, with room to spare.
TOPIC_CACHE_SIZE = 200_000
# Two papers this similar are one work (two versions, two sources): never both in a digest. Titles that are
# equal once case, punctuation and version markers are dropped count as identical.
NEAR_DUPLICATE_EMBEDDING = 0.95
NEAR_DUPLICATE_TFIDF = 0.8


@dataclass
class CandidateIndex:
    papers: list[Paper]
    ids: np.ndarray
    position: dict[int, int]
    vectorizer: "TfidfVectorizer"
    tfidf: sparse.csr_matrix  # papers × terms, rows of unit length
    embedding: np.ndarray | None  # papers × 384, unit rows; None without the model
    similarity: np.ndarray  # papers × papers, for MMR and near-duplicates
    twins: sparse.csr_matrix  # papers × papers: 1 for each paper itself and each of its near-duplicates
    trending: np.ndarray  # 0..1, the best candidate is 1
    boost: np.ndarray  # editorial multiplier
    allowed: np.ndarray  # False for rejected papers
    texts: list[str]
    ascii_lowered: list[str | None]  # each text lowercased, None where it is not all ASCII
    vocabulary: dict[str, int]
    by_term: sparse.csc_matrix  # the TF-IDF matrix by column: which papers hold a term
    sorted_ids: np.ndarray  # ids ascending, and where each sits in `papers`, to map many ids at once
    sorted_positions: np.ndarray
    categories: dict[str, np.ndarray]
    authors: dict[str, np.ndarray]
    category_names: list[list[str]]  # per paper, for reasons
    author_keys: list[frozenset[str]]
    bm25: Bm25  # the lexical side of relevance (title and abstract)
    acronyms: dict[str, str]  # defined by these candidates: acronym → long form
    term_space: TermSpace | None = None  # the candidates' terms in the model's space, made when first needed
    negatives: dict[str, np.ndarray] = field(default_factory=dict)  # positions mentioning each phrase, by phrase
    # Each topic's matches (positions, scores), see topics.topic_matrix; they go with the index.
    topic_rows: Lru[str, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=lambda: Lru("topic rows", TOPIC_CACHE_SIZE, registered=False)
    )

    def terms(self) -> TermSpace:
        """The candidates' terms and their vectors (with the model): made once per index."""
        if self.term_space is None:
            self.term_space = TermSpace.build(self.bm25)
        return self.term_space

    @property
    def duplicate_threshold(self) -> float:
        """The similarity from which two of these candidates are one work."""
        return near_duplicate_threshold(self.embedding)

    def mentioning(self, phrase: str) -> np.ndarray:
        """Positions of the papers that mention the phrase (title or abstract) as whole words, plurals too:
        "no quantum" removes "quantum chemistry", not "quantization". Each phrase is looked up once per index."""
        found = self.negatives.get(phrase)
        if found is None:
            found = self.negatives[phrase] = self._mentions(phrase)
        return found

    def _mentions(self, phrase: str) -> np.ndarray:
        terms = analyze(phrase)
        words = len(phrase.split())
        if not terms:  # only stop words ("no the"): it would remove every paper, so it removes none
            return np.zeros(0, dtype=np.int64)
        # One or two words are a term of the TF-IDF vocabulary (unigram or bigram): a column lookup.
        term = terms[-1] if words in (1, 2) and len(terms) == 2 * words - 1 else None
        if term is not None:
            column = self.vocabulary.get(term)
            if column is None:
                return np.zeros(0, dtype=np.int64)
            return self.by_term.indices[self.by_term.indptr[column] : self.by_term.indptr[column + 1]].astype(np.int64)
        pattern = negative_pattern([phrase])
        # The regex scans every abstract; an ASCII text can only match if it holds the phrase's longest word.
        word = max(phrase.split(), key=len).lower() if phrase.isascii() else ""
        return np.array(
            [
                i
                for i, (text, low) in enumerate(zip(self.texts, self.ascii_lowered, strict=True))
                if not (word and low is not None and word not in low) and pattern and pattern.search(text)
            ],
            dtype=np.int64,
        )


def near_duplicate_threshold(vectors: np.ndarray | None) -> float:
    return NEAR_DUPLICATE_EMBEDDING if vectors is not None else NEAR_DUPLICATE_TFIDF


_indexes: Lru[tuple, CandidateIndex] = Lru("candidate indexes", INDEX_CACHE_SIZE)


# What the candidate index is built from, per paper (with its categories, authors and whether it has an
# embedding): equal fingerprints, the same index.
INDEXED_FIELDS = attrgetter(
    "pk", "title", "abstract", "moderation", "featured", "pinned", "upvotes", "num_comments", "github_stars",
    "listed", "primary_category",
)  # fmt: skip


def _fingerprint(papers: Sequence[Paper], use_embeddings: bool) -> tuple:
    """The candidate set as one hashable value, compared in full when it is found: no two different sets can
    share an index. Cheap to make for every chunk of a send, since the strings' hashes are kept."""
    return use_embeddings, tuple(
        (
            INDEXED_FIELDS(p),
            tuple(map(str, p.categories or ())),
            tuple(map(str, p.authors or ())),
            p.embedding is not None,
        )
        for p in papers
    )


def candidate_index(papers: Sequence[Paper], now: datetime | None = None) -> CandidateIndex:
    use_embeddings = embeddings.enabled()
    key = _fingerprint(papers, use_embeddings)
    index = _indexes.get(key)
    if index is None:
        index = build_index(list(papers), use_embeddings, now)
        _indexes.put(key, index)
    return index


def build_index(papers: list[Paper], use_embeddings: bool, now: datetime | None = None) -> CandidateIndex:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, dtype=np.float32)
    # The title says more than any sentence: it counts twice.
    tfidf = (
        vectorizer.fit_transform([f"{p.title}. {p.title}. {p.abstract}" for p in papers])
        if papers
        else sparse.csr_matrix((0, 0), dtype=np.float32)
    )
    vectors = embeddings.paper_vectors(papers) if use_embeddings else None
    similarity = (vectors @ vectors.T) if vectors is not None else (tfidf @ tfidf.T).toarray()
    similarity = np.asarray(similarity, dtype=np.float32)
    threshold = near_duplicate_threshold(vectors)
    titles: dict[str, list[int]] = {}
    for i, p in enumerate(papers):
        titles.setdefault(title_key(p.title), []).append(i)
    for same in titles.values():
        if len(same) > 1:
            similarity[np.ix_(same, same)] = 1.0
    np.fill_diagonal(similarity, 1.0)
    duplicate_pairs = similarity >= threshold
    np.fill_diagonal(duplicate_pairs, False)
    ids = np.array([p.pk for p in papers], dtype=np.int64)
    texts = [f"{p.title}\n{p.abstract}" for p in papers]
    now = now or timezone.now()
    trending = np.array([trending_score(p, now) for p in papers], dtype=np.float32)
    if trending.size and trending.max() > 0:
        trending /= trending.max()
    category_names = [[c for c in dict.fromkeys([*(p.categories or []), p.primary_category]) if c] for p in papers]
    author_keys = [frozenset(author_key(str(name)) for name in p.authors or []) for p in papers]
    categories: dict[str, list[int]] = {}
    authors: dict[str, list[int]] = {}
    for i in range(len(papers)):
        for c in {c.lower() for c in category_names[i]}:
            categories.setdefault(c, []).append(i)
        for key in author_keys[i]:
            authors.setdefault(key, []).append(i)
    return CandidateIndex(
        papers=papers,
        ids=ids,
        position={p.pk: i for i, p in enumerate(papers)},
        vectorizer=vectorizer,
        tfidf=tfidf.tocsr(),
        embedding=vectors,
        similarity=similarity,
        twins=sparse.csr_matrix(duplicate_pairs | np.eye(len(papers), dtype=bool), dtype=np.float32),
        trending=trending,
        boost=np.array([editorial_boost(p) for p in papers], dtype=np.float32),
        allowed=np.array([p.moderation != Moderation.REJECTED for p in papers], dtype=bool),
        texts=texts,
        ascii_lowered=[t.lower() if t.isascii() else None for t in texts],
        vocabulary=dict(getattr(vectorizer, "vocabulary_", {})),
        by_term=tfidf.tocsc(),
        sorted_ids=np.sort(ids),
        sorted_positions=np.argsort(ids, kind="stable"),
        categories={k: np.array(v) for k, v in categories.items()},
        authors={k: np.array(v) for k, v in authors.items()},
        category_names=category_names,
        author_keys=author_keys,
        bm25=Bm25.build([f"{p.title}. {p.abstract}" for p in papers]),
        acronyms=learn_acronyms(texts),
    )
