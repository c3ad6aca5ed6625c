"""Which papers each reader sees: trending score, relevance to interests, editorial overrides, diversity.

- Trending (shared by everyone): community signals (upvotes, comments, GitHub stars), log-damped and halved
  every TRENDING_HALF_LIFE_HOURS; approved/featured papers boosted; pinned papers lead.
- For you (per reader): each interest topic is scored against every candidate paper by TF-IDF cosine
  (words the reader shares with the paper) blended with sentence-embedding cosine (meaning, when the model is
  installed); a reader's relevance to a paper is their best-matching topic, plus arXiv-category and
  favourite-author matches. Matching papers are ordered by relevance + a little trending, with editorial
  boosts, then picked by MMR so that a reader who follows several topics gets several topics and never two
  versions of one work. Negative keywords and excluded papers (already shown, already sent) are removed.

Everything is computed for a chunk of readers at once as array operations (unique topics x papers, then a
gather per reader, each reader's best candidates by one sort of packed keys, MMR over the whole chunk); see
for_you_many.
"""

import functools
import gc
import itertools
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from operator import attrgetter
from types import SimpleNamespace
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from django.conf import settings
from django.utils import timezone
from scipy import sparse

from papers import embeddings

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer
from papers.interests import Interests, author_key, negative_pattern, parse_interests, read_item, read_many
from papers.models import Moderation, Paper

log = logging.getLogger(__name__)

# --- Trending -------------------------------------------------------------------------------------------
# A paper's pull halves every 36 hours: yesterday's strong paper still beats today's weak one, and a
# three-day-old paper keeps an eighth of its pull, so last week's hit doesn't squat the section.
TRENDING_HALF_LIFE_HOURS = 36.0
# A comment costs more effort than an upvote, so it says more; GitHub stars are cheap and come in hundreds.
COMMENT_WEIGHT = 2.0
STAR_WEIGHT = 0.02
# A paper nobody has voted on yet still ranks, by freshness alone (log1p(1) × decay): new before old.
PRIOR_SIGNAL = 1.0
# Editors approved or featured it: worth half again its community signal, in both sections.
EDITORIAL_BOOST = 1.5

# --- Relevance ------------------------------------------------------------------------------------------
# With the model, meaning carries most of the weight; TF-IDF keeps exact technical terms ("LoRA", "MoE")
# that a small model blurs. Without it, TF-IDF is all there is.
EMBEDDING_WEIGHT = 0.7
TFIDF_WEIGHT_WITH_EMBEDDINGS = 0.3
# How close a topic and a paper are depends on the topic: MiniLM gives "fine-tuning large language models"
# cosines of 0.5-0.7 with many abstracts and "AI for medicine" 0.3 with its best ones. So each topic's cosines
# are read against their own spread over the day's candidates (a z-score): a paper matches when it stands
# Z_MATCH spreads above the topic's average, and Z_TOP spreads scores full marks.
Z_MATCH = 1.5
Z_TOP = 4.0
# ...and the cosine itself must say "about the same subject" at all: below this, no spread makes it a match.
EMBEDDING_FLOOR = 0.2
# The spread is never taken as smaller than this, so a tiny or uniform candidate set can't inflate z-scores.
MIN_SPREAD = 0.05
# TF-IDF alone: a topic matches from this cosine on (one shared distinctive term in title or abstract);
# below it a reader would ask "why this one?".
MIN_TOPIC_SCORE = 0.08
# A chosen arXiv category or a favourite author is an explicit wish: it alone qualifies a paper.
CATEGORY_SCORE = 0.3
AUTHOR_SCORE = 0.6
# Among papers that match, community interest breaks near-ties: a tenth of the relevance scale.
TRENDING_WEIGHT = 0.1

# --- Diversity ------------------------------------------------------------------------------------------
# MMR: each pick's score is lowered by its similarity to what the reader already got...
DIVERSITY_WEIGHT = 0.3
# ...and by this much for every paper already picked for the same topic, so "continual learning, speech"
# reads as both, not ten papers on one.
TOPIC_REPEAT_PENALTY = 0.05
# Two papers this similar are one work (two versions, two sources): never both in a digest. Titles that are
# equal once case, punctuation and version markers are dropped count as identical.
NEAR_DUPLICATE_EMBEDDING = 0.95
NEAR_DUPLICATE_TFIDF = 0.8
# MMR looks at this many of each reader's best papers per pick it makes: room to diversify, little work.
MMR_POOL_FACTOR = 3

# --- Scale ----------------------------------------------------------------------------------------------
# Readers ranked per matrix step: 2,000 × 500 papers × 4 bytes is 4 MB per score matrix, so memory stays
# flat however many readers there are.
RANK_CHUNK_SIZE = 2_000
# Candidate sets kept ready (TF-IDF fitted, embeddings loaded): a send ranks one set in many chunks.
INDEX_CACHE_SIZE = 4
# Topics scored against the papers per block: 4,096 x 500 dense floats is 8 MB before it is made sparse.
TOPIC_BLOCK = 4_096
# Topic rows kept per candidate index (a few dozen matches each): a day's distinct topics, with room to spare.
TOPIC_CACHE_SIZE = 200_000
# How far back the delivery ledger is read to avoid repeats: past the candidate window of any digest
# (two days daily, a week for weekly readers), with room to spare.
REPEAT_LOOKBACK = timedelta(days=30)

TOKEN = re.compile(r"[a-z0-9][a-z0-9+-]*[a-z0-9+]|[a-z0-9]")
VERSION_MARK = re.compile(r"\b(?:v\d+|version \d+|extended version|preprint)\b")


class Pick(NamedTuple):
    """One "For you" paper for one reader. Immutable; built a million times per 100k readers, hence a tuple."""

    paper_id: int
    score: float
    reason: str = ""


# --- Trending -------------------------------------------------------------------------------------------


def trending_score(paper: Paper, now: datetime | None = None) -> float:
    """Community signal, halved every TRENDING_HALF_LIFE_HOURS since the start of the paper's listing day.
    A digest passes the end of its own day as `now` (papers.models.day_end), so it ranks the same whenever
    it is built; only the ratio between papers matters, and that does not depend on `now`."""
    now = now or timezone.now()
    signal = (paper.upvotes or 0) + COMMENT_WEIGHT * (paper.num_comments or 0) + STAR_WEIGHT * (paper.github_stars or 0)
    listed_at = datetime.combine(paper.listed, time.min, tzinfo=UTC)
    age_hours = max(0.0, (now - listed_at).total_seconds() / 3600)
    boost = EDITORIAL_BOOST if paper.featured or paper.moderation == Moderation.APPROVED else 1.0
    return math.log1p(max(0.0, signal) + PRIOR_SIGNAL) * boost * 0.5 ** (age_hours / TRENDING_HALF_LIFE_HOURS)


def rank_trending(papers: Iterable[Paper], limit: int, now: datetime | None = None) -> list[Paper]:
    """The shared section: pinned papers first, then by trending score; never rejected, never two copies."""
    now = now or timezone.now()
    allowed = [p for p in papers if p.moderation != Moderation.REJECTED]
    ordered = sorted(allowed, key=lambda p: (not p.pinned, -trending_score(p, now), p.pk or 0))
    chosen: list[Paper] = []
    seen_titles: set[str] = set()
    for paper in ordered:
        key = title_key(paper.title)
        if key in seen_titles:
            continue
        seen_titles.add(key)
        chosen.append(paper)
        if len(chosen) >= limit:
            break
    return chosen


def title_key(title: str) -> str:
    """Equal for two versions of one title: case, punctuation and version markers don't count."""
    text = re.sub(r"[^a-z0-9]+", " ", (title or "").lower())
    return " ".join(VERSION_MARK.sub(" ", text).split())


# --- Candidate index: everything about today's papers that every reader's ranking reuses ------------------


def _stem(token: str) -> str:
    """Plural and singular are one term ("robots" finds "robot"); a full stemmer would merge too much."""
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is", "ics")):
        return token[:-1]
    return token


@functools.cache
def stop_words() -> frozenset[str]:
    """scikit-learn is imported where ranking runs, not by every process that imports this module: it takes
    about a second to load, which web processes and the send command's waiting loop never need."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS


def analyze(text: str) -> list[str]:
    stop = stop_words()
    words = [_stem(t) for t in TOKEN.findall(text.lower()) if t not in stop]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


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
    negatives: dict[str, np.ndarray] = field(default_factory=dict)  # positions mentioning each phrase, by phrase
    topic_rows: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # see topic_matrix

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


_indexes: OrderedDict[tuple, CandidateIndex] = OrderedDict()


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
        _indexes[key] = index
        while len(_indexes) > INDEX_CACHE_SIZE:
            _indexes.popitem(last=False)
    _indexes.move_to_end(key)
    return index


def paper_embeddings(papers: list[Paper]) -> np.ndarray:
    """Stored vectors; papers stored before the model was installed get theirs now, saved for next time."""
    vectors = [embeddings.from_bytes(p.embedding) for p in papers]
    missing = [i for i, v in enumerate(vectors) if v is None]
    if missing:
        fresh = embeddings.encode([embeddings.paper_text(papers[i].title, papers[i].abstract) for i in missing])
        for i, vector in zip(missing, fresh, strict=True):
            vectors[i] = vector
            papers[i].embedding = embeddings.to_bytes(vector)
        saved = [papers[i] for i in missing if papers[i].pk and not papers[i]._state.adding]
        Paper.objects.bulk_update(saved, ["embedding"], batch_size=500)
    return np.stack(vectors) if vectors else np.zeros((0, embeddings.DIMENSIONS), dtype=embeddings.DTYPE)


def build_index(papers: list[Paper], use_embeddings: bool, now: datetime | None = None) -> CandidateIndex:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, dtype=np.float32)
    # The title says more than any sentence: it counts twice.
    tfidf = (
        vectorizer.fit_transform([f"{p.title}. {p.title}. {p.abstract}" for p in papers])
        if papers
        else sparse.csr_matrix((0, 0), dtype=np.float32)
    )
    vectors = paper_embeddings(papers) if use_embeddings else None
    similarity = (vectors @ vectors.T) if vectors is not None else (tfidf @ tfidf.T).toarray()
    similarity = np.asarray(similarity, dtype=np.float32)
    threshold = NEAR_DUPLICATE_EMBEDDING if vectors is not None else NEAR_DUPLICATE_TFIDF
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
        boost=np.array(
            [EDITORIAL_BOOST if p.featured or p.moderation == Moderation.APPROVED else 1.0 for p in papers],
            dtype=np.float32,
        ),
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
    )


# --- For you --------------------------------------------------------------------------------------------


def interests_of(subscriber: object) -> Interests:
    """One reader's interests, read from their text and their chosen arXiv categories."""
    return parse_interests(
        getattr(subscriber, "interests", "") or "", tuple(getattr(subscriber, "categories", ()) or ())
    )


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
    known = index.topic_rows
    missing = [topic for topic in topics if topic not in known]
    fresh: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for start in range(0, len(missing), TOPIC_BLOCK):
        block = sparse.csr_matrix(topic_scores(index, missing[start : start + TOPIC_BLOCK]))
        for i, topic in enumerate(missing[start : start + TOPIC_BLOCK]):
            at = slice(block.indptr[i], block.indptr[i + 1])
            fresh[topic] = block.indices[at], block.data[at]
    rows = [fresh.get(topic) or known[topic] for topic in topics]
    if len(known) + len(fresh) > TOPIC_CACHE_SIZE:
        known.clear()
    known.update(fresh)
    if not rows:
        return sparse.csr_matrix((1, len(index.papers)), dtype=np.float32)
    lengths = np.fromiter((len(columns) for columns, _ in rows), dtype=np.int64, count=len(rows))
    indptr = np.concatenate(([0], np.cumsum(lengths), [lengths.sum()]))
    columns = np.concatenate([columns for columns, _ in rows])
    values = np.concatenate([values for _, values in rows]).astype(np.float32, copy=False)
    return sparse.csr_matrix((values, columns, indptr), shape=(len(rows) + 1, len(index.papers)))


def _rows_of(groups: list[Sequence[int]], width: int) -> sparse.csr_matrix:
    """A 0/1 matrix with one row per group and a 1 in each of the group's columns."""
    lengths = np.fromiter(map(len, groups), dtype=np.int64, count=len(groups))
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    columns = np.fromiter(itertools.chain.from_iterable(groups), dtype=np.int64, count=int(indptr[-1]))
    return sparse.csr_matrix((np.ones(columns.size, dtype=np.float32), columns, indptr), shape=(len(groups), width))


def _spans(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """start, start + 1, ..., end - 1 for each (start, end), one after the other: many slices gathered at once."""
    lengths = ends - starts
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))


@dataclass
class Wishes:
    """One kind of keyed interest (arXiv categories, favourite authors, negative keywords) for many readers.

    Readers share wishes ("cs.LG", "no quantum"), so each distinct one is a group: which keys it holds, times
    which candidates carry each key, says once per group where its wish meets a paper; a chunk of readers then
    gathers its groups' rows, without a Python loop per reader."""

    group: np.ndarray  # per profile: its wish's row in `meets`, -1 for none
    labels: list[Hashable]  # per group: the wish as the reader wrote it, for reasons
    meets: sparse.csr_matrix  # groups x papers: where each group's wish meets a paper (groups x keys x papers)
    said: dict[int, str] = field(default_factory=dict)  # reasons made so far, by group x papers + position

    @classmethod
    def build(
        cls,
        n_profiles: int,
        wished: Mapping[int, Hashable],
        keys_of: Callable[[Hashable], Iterable[str]],
        papers_with: Callable[[str], np.ndarray],
        n_papers: int,
    ) -> "Wishes":
        """wished: {profile: its wish} for the profiles that have one."""
        groups: dict[Hashable, int] = {}
        group = np.full(n_profiles, -1, dtype=np.int64)
        if wished:
            group[list(wished)] = [groups.setdefault(wish, len(groups)) for wish in wished.values()]
        keys: dict[str, int] = {}
        held = [[keys.setdefault(key, len(keys)) for key in keys_of(wish)] for wish in groups]
        carried = [papers_with(key) for key in keys]
        meets = (_rows_of(held, len(keys)) @ _rows_of(carried, n_papers)).tocsr()
        meets.eliminate_zeros()
        return cls(group, list(groups), meets)

    def met(self, profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, positions) where a reader of the chunk (given by profile) wants a paper's key."""
        group = self.group[profiles]
        rows = np.flatnonzero(group >= 0)
        if not rows.size or not self.meets.nnz:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        starts, ends = self.meets.indptr[group[rows]], self.meets.indptr[group[rows] + 1]
        return np.repeat(rows, ends - starts), self.meets.indices[_spans(starts, ends)].astype(np.int64)

    def reasons(
        self, describe: Callable[[int, Hashable], str], profiles: np.ndarray, positions: np.ndarray, n_papers: int
    ) -> np.ndarray:
        """describe(position, wish) for each reader's (profile's) paper, each distinct sentence made once a send."""
        pairs, inverse = np.unique(self.group[profiles] * n_papers + positions, return_inverse=True)
        said = self.said
        for pair in pairs.tolist():
            if pair not in said:
                said[pair] = describe(pair % n_papers, self.labels[pair // n_papers])
        return np.array([said[pair] for pair in pairs.tolist()], dtype=object)[inverse]


@dataclass
class Readers:
    """The interests of many readers as arrays. Each distinct interest text is read once and its topics looked
    up once, however many readers share it; a chunk of readers is then a gather by `profile`."""

    pks: list[int]
    limits: np.ndarray  # per reader: how many "For you" papers at most
    profile: np.ndarray  # per reader: their profile, each distinct (interests text, chosen categories) once
    wants: np.ndarray  # per profile: anything to match at all (else the trending section only)
    topic_names: list[str]  # every distinct topic once, in the order of the topic x paper matrix rows
    topic_reasons: np.ndarray  # per row of that matrix: "matches: <topic>" ("" for the "no topic" row), objects
    topics: np.ndarray  # profiles x most topics: rows of the topic matrix, padded with the "no topic" row
    topic_counts: np.ndarray  # per profile
    categories: Wishes
    authors: Wishes
    negatives: Wishes

    @classmethod
    def read(cls, subscribers: Sequence, index: CandidateIndex) -> "Readers":
        texts = list(map(attrgetter("interests"), subscribers))
        chosen = list(map(tuple, map(attrgetter("categories"), subscribers)))
        # Readers with the same text and categories are one profile, read once: each reader's first reader.
        first: dict[tuple[str, tuple[str, ...]], int] = {}
        firsts = np.fromiter(
            map(first.setdefault, zip(texts, chosen, strict=True), itertools.count()),
            dtype=np.int64,
            count=len(subscribers),
        )
        distinct, profile = np.unique(firsts, return_inverse=True)
        read = read_many(
            list(map(texts.__getitem__, distinct.tolist())), list(map(chosen.__getitem__, distinct.tolist()))
        )
        limits = list(map(attrgetter("papers_per_digest"), subscribers))
        if None in limits:
            limits = [settings.DIGEST_FOR_YOU_COUNT if limit is None else limit for limit in limits]
        n_profiles, n_papers, nothing = len(distinct), len(index.papers), np.zeros(0, dtype=np.int64)
        return cls(
            pks=_pks(subscribers),
            limits=np.array(limits, dtype=np.int64),
            profile=profile,
            wants=read.wants,
            topic_names=read.topic_names,
            topic_reasons=np.array([*(f"matches: {t}" for t in read.topic_names), ""], dtype=object),
            topics=read.topics,
            topic_counts=read.topic_counts,
            categories=Wishes.build(
                n_profiles,
                read.categories,
                lambda wanted: wanted,
                lambda key: index.categories.get(key, nothing),
                n_papers,
            ),
            authors=Wishes.build(
                n_profiles,
                read.authors,
                lambda names: map(author_key, names),
                lambda key: index.authors.get(key, nothing),
                n_papers,
            ),
            negatives=Wishes.build(
                n_profiles,
                read.negatives,
                lambda phrases: phrases,
                index.mentioning,
                n_papers,
            ),
        )


def _pks(rows: Sequence) -> list[int]:
    """Each row's pk. Subscriber rows' ids are read as the attribute Django stores them in: the `pk` property
    runs Python per row, a few hundredths of a second per hundred thousand readers."""
    meta = getattr(rows[0], "_meta", None)
    if meta is not None and all(map(type(rows[0]).__instancecheck__, rows)):
        return list(map(attrgetter(meta.pk.attname), rows))
    return list(map(attrgetter("pk"), rows))


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
    index: CandidateIndex, readers: Readers, chunk: slice, topics: sparse.csr_matrix, exclude: Mapping
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
        (readers.categories, CATEGORY_SCORE, _category_reason),
        (readers.authors, AUTHOR_SCORE, _author_reason),
    ):
        rows, positions = wishes.met(profile)
        if rows.size:
            # float64 like the weight, then back: the same sums as adding the whole hit matrix would give
            total[rows, positions] = total[rows, positions] + np.float64(weight)
            matched[rows, positions] = True
            hits.append((rows, positions, wishes, describe))
    matched[~readers.wants[profile]] = False
    matched[:, ~index.allowed] = False
    for rows, positions in (_blocked(index, readers.pks[chunk], exclude), readers.negatives.met(profile)):
        matched[rows, positions] = False
    # Only the papers a reader matched can be picked: a few dozen of 500. Their scores, best first per reader,
    # and each reader's best MMR pool of them: one sort of (row, score descending, position) packed in an int64.
    flat = np.flatnonzero(matched)  # row x n_papers + position: faster than a 2-D nonzero
    rows, positions = np.divmod(flat, n_papers)
    final = (total[rows, positions] + TRENDING_WEIGHT * index.trending[positions]) * index.boost[positions]
    rows, positions, final = _best_first(rows, positions, final.astype(np.float32), n, n_papers)
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
    return _picks(index, readers, chunk, picked, picked_scores, picked_topic, table, topical, hits)


# A float32 score's bits, as _best_first packs them into its sort keys.
FLOAT_BITS = 32
FLOAT_MASK = (1 << FLOAT_BITS) - 1


def _best_first(
    rows: np.ndarray, positions: np.ndarray, scores: np.ndarray, n_rows: int, n_papers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, positions, scores) ordered by row, then score from best, then position: one sort of int64 keys,
    (row | score's bits, order-preserving and reversed | position), which also carry the values back."""
    position_bits = max(int(n_papers - 1).bit_length(), 1)
    row_bits = max(int(n_rows - 1).bit_length(), 1)
    if row_bits + FLOAT_BITS + position_bits > 63:
        raise ValueError(f"{n_rows} readers x {n_papers} papers do not fit one sort key: rank in smaller chunks")
    bits = scores.astype(np.float32).view(np.uint32)
    ascending = np.where(bits >> 31, ~bits, bits | np.uint32(1 << 31))  # unsigned order = float order
    descending = (np.uint32(FLOAT_MASK) - ascending).astype(np.int64)
    keys = np.sort((rows << (FLOAT_BITS + position_bits)) | (descending << position_bits) | positions)
    descending = ((keys >> position_bits) & FLOAT_MASK).astype(np.uint32)
    ascending = np.uint32(FLOAT_MASK) - descending
    bits = np.where(ascending >> 31, ascending & np.uint32(FLOAT_MASK >> 1), ~ascending)
    return keys >> (FLOAT_BITS + position_bits), keys & ((1 << position_bits) - 1), bits.view(np.float32)


def mmr(
    index: CandidateIndex, candidates: np.ndarray, score: np.ndarray, topic: np.ndarray, limits: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy maximal marginal relevance for every reader of the chunk at once.

    Works on each reader's pool of best candidates (positions, -1 for none, and their scores), picks one paper per
    step: the best score minus similarity to what was already picked minus a penalty per paper already picked on
    the same topic. Near-duplicates of a picked paper are out. Returns (positions, scores, topics), -1 where
    nothing was left."""
    n = candidates.shape[0]
    k = int(limits.max()) if n else 0
    picked = np.full((n, k), -1, dtype=np.int64)
    picked_scores = np.zeros((n, k), dtype=np.float32)
    picked_topic = np.zeros((n, k), dtype=np.int64)
    if not n or not k or not candidates.shape[1]:
        return picked, picked_scores, picked_topic
    live = np.flatnonzero(candidates[:, 0] >= 0)  # readers with anything to pick from
    candidates, score, topic, limits = candidates[live], score[live].copy(), topic[live], limits[live]
    closeness = np.zeros(score.shape, dtype=np.float32)
    same_topic = np.zeros(score.shape, dtype=np.float32)  # papers already picked on each candidate's topic
    threshold = NEAR_DUPLICATE_EMBEDDING if index.embedding is not None else NEAR_DUPLICATE_TFIDF
    here = np.arange(live.size)
    for step in range(k):
        if not live.size:
            break
        if step:
            adjusted = score - DIVERSITY_WEIGHT * closeness - TOPIC_REPEAT_PENALTY * same_topic
            choice = np.argmax(adjusted, axis=1)
            best = adjusted[here, choice]
        else:  # nothing picked yet: each pool is best first, so its first paper
            choice, best = np.zeros(live.size, dtype=np.int64), score[:, 0]
        ok = np.isfinite(best) & (step < limits)
        chosen = candidates[here, choice]
        picked[live[ok], step] = chosen[ok]
        picked_scores[live[ok], step] = score[here, choice][ok]
        picked_topic[live[ok], step] = topic[here, choice][ok]
        if step == k - 1:
            break
        if not ok.all():  # a reader with nothing left (or a full list) is done: the next steps skip them
            keep, choice, chosen = np.flatnonzero(ok), choice[ok], chosen[ok]
            live, candidates, score, topic = live[keep], candidates[keep], score[keep], topic[keep]
            closeness, same_topic, limits = closeness[keep], same_topic[keep], limits[keep]
            here = np.arange(live.size)
        score[here, choice] = -np.inf
        similarity = np.take(index.similarity, chosen[:, None] * index.similarity.shape[1] + candidates)
        score[similarity >= threshold] = -np.inf  # a near-duplicate of a pick is out for good
        np.maximum(closeness, similarity, out=closeness)
        same_topic += topic == topic[here, choice][:, None]
    return picked, picked_scores, picked_topic


def _picks(
    index: CandidateIndex,
    readers: Readers,
    chunk: slice,
    picked: np.ndarray,
    picked_scores: np.ndarray,
    picked_topic: np.ndarray,
    table: np.ndarray,
    topical: np.ndarray,
    hits: list,
) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The chunk's picks as arrays, for PickLists: (subscriber ids, picks per subscriber, then per pick in
    order: paper id, score, reason), reasons made only for the papers picked."""
    valid = picked >= 0
    owner, where = np.flatnonzero(valid) // valid.shape[1], picked[valid]
    # The topic each pick matched, as a row of the topic matrix ("no topic" when it matched otherwise).
    no_topic = len(readers.topic_names)
    reasons = readers.topic_reasons[np.where(topical[owner, where], table[owner, picked_topic[valid]], no_topic)]
    for met_rows, met_positions, wishes, describe in hits:
        hit = np.zeros(topical.shape, dtype=bool)
        hit[met_rows, met_positions] = True
        at = np.flatnonzero(hit[owner, where])
        extra = wishes.reasons(
            functools.partial(describe, index), readers.profile[chunk][owner[at]], where[at], topical.shape[1]
        )
        before = reasons[at]
        reasons[at] = np.where(before != "", before + "; " + extra, extra)
    counts = valid.sum(axis=1)
    return readers.pks[chunk], counts, index.ids[where], np.round(picked_scores[valid], 4), reasons


def _category_reason(index: CandidateIndex, position: int, wanted: frozenset[str]) -> str:
    """The paper's first category among the reader's (lowercased) ones."""
    return "category: " + next(c for c in index.category_names[position] if c.lower() in wanted)


def _author_reason(index: CandidateIndex, position: int, names: tuple[str, ...]) -> str:
    """The first of the reader's favourite authors (as they wrote the name) who is on the paper."""
    on_paper = index.author_keys[position]
    return "author: " + next(name for name in names if author_key(name) in on_paper)


class PickLists(Mapping[int, list[Pick]]):
    """{subscriber id: their "For you" picks, best first}, as for_you_many ranked them.

    Kept as flat arrays (paper ids, scores, reasons, and where each reader's run starts), not as a million
    Pick tuples: a send reads each reader's list once, when it renders their digest, and a tuple made then
    is gone with the digest."""

    def __init__(self, parts: Sequence[tuple[list[int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> None:
        pks = list(itertools.chain.from_iterable(part[0] for part in parts))
        self._row = dict(zip(pks, itertools.count(), strict=False))
        counts = np.concatenate([part[1] for part in parts]) if parts else np.zeros(0, dtype=np.int64)
        self._starts = np.concatenate(([0], np.cumsum(counts))).tolist()
        self._ids, self._scores, self._reasons = (
            np.concatenate([part[field] for part in parts]) if parts else np.zeros(0) for field in (2, 3, 4)
        )

    def __getitem__(self, pk: int) -> list[Pick]:
        row = self._row[pk]
        at = slice(self._starts[row], self._starts[row + 1])
        make = functools.partial(tuple.__new__, Pick)  # Pick(...) would run Python per pick
        return list(
            map(make, zip(self._ids[at].tolist(), self._scores[at].tolist(), self._reasons[at].tolist(), strict=True))
        )

    def __iter__(self) -> Iterator[int]:
        return iter(self._row)

    def __len__(self) -> int:
        return len(self._row)


def for_you_many(
    subscribers: Sequence, candidates: Sequence[Paper], exclude: Mapping[int, Iterable[int]]
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
        return PickLists(
            [
                _rank_chunk(index, readers, slice(start, start + RANK_CHUNK_SIZE), topics, exclude)
                for start in range(0, len(subscribers), RANK_CHUNK_SIZE)
            ]
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Reading a hundred thousand interest texts makes a million short-lived lists and strings, which would run
    Python's cycle collector hundreds of times, each pass walking every object made so far; they form no
    cycles, so it waits until the ranking is done."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def for_you(interests: str, papers: Sequence[Paper], limit: int, exclude: Iterable[int] = ()) -> list[Pick]:
    """One hypothetical reader's list (the rank_papers command, the evaluation)."""
    reader = SimpleNamespace(pk=0, interests=interests, categories=[], papers_per_digest=limit)
    return for_you_many([reader], papers, {0: set(exclude)})[0]


# --- Repeats and the ingest hook ------------------------------------------------------------------------


def with_title_twins(sent: Mapping[int, set[int]], candidates: Sequence[Paper]) -> dict[int, set[int]]:
    """`sent` plus, for each reader, today's candidates that share a title with a paper they were sent earlier.

    A paper sent on an earlier day that is still a candidate keeps its near-duplicates out through the
    candidate index; one that has left the candidate window cannot, so a later copy of it (another version,
    another source's id) is matched on its title instead. Titles of earlier papers are read once per process."""
    earlier = set().union(*sent.values()) - {p.pk for p in candidates} if sent else set()
    if not earlier:
        return dict(sent)
    unknown = [pk for pk in earlier if pk not in _earlier_titles]
    if unknown:
        if len(_earlier_titles) + len(unknown) > EARLIER_TITLE_CACHE_SIZE:
            _earlier_titles.clear()
        _earlier_titles.update(
            (pk, title_key(t)) for pk, t in Paper.objects.filter(pk__in=unknown).values_list("pk", "title")
        )
    by_title: dict[str, set[int]] = {}
    for paper in candidates:
        by_title.setdefault(title_key(paper.title), set()).add(paper.pk)
    twins = {pk: by_title[key] for pk in earlier if (key := _earlier_titles.get(pk)) and key in by_title}
    if not twins:
        return dict(sent)
    return {reader: ids.union(*(twins[pk] for pk in ids if pk in twins)) for reader, ids in sent.items()}


# Titles of papers sent on earlier days, by id: a month of digests is a few thousand papers.
EARLIER_TITLE_CACHE_SIZE = 50_000
_earlier_titles: dict[int, str] = {}


def clear_caches() -> None:
    """Forget the candidate indexes, earlier titles and parsed interests this process keeps."""
    _indexes.clear()
    _earlier_titles.clear()
    parse_interests.cache_clear()
    read_item.cache_clear()


def after_ingest(paper_ids: list[int]) -> None:
    """Called by ingest with the ids of papers created or changed: their sentence embeddings are computed once
    here and stored (Paper.embedding, float32 bytes), when the model is enabled."""
    if not paper_ids or not embeddings.enabled():
        return
    papers = list(Paper.objects.filter(pk__in=paper_ids).only("pk", "title", "abstract"))
    try:
        vectors = embeddings.encode([embeddings.paper_text(p.title, p.abstract) for p in papers])
    except Exception:  # ingest must not fail on the optional model; ranking computes them later
        log.exception("could not compute embeddings for %d papers; ranking will compute them later", len(papers))
        return
    for paper, vector in zip(papers, vectors, strict=True):
        paper.embedding = embeddings.to_bytes(vector)
    Paper.objects.bulk_update(papers, ["embedding"], batch_size=500)
