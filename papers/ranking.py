"""Which papers each reader sees: trending score, relevance to interests, editorial overrides, diversity.

- Trending (shared by everyone): community signals (upvotes, comments, GitHub stars), log-damped and halved
  every TRENDING_HALF_LIFE_HOURS; approved/featured papers boosted; pinned papers lead.
- For you (per reader): each interest topic is scored against every candidate paper by TF-IDF cosine
  (words the reader shares with the paper) blended with sentence-embedding cosine (meaning, when the model is
  installed); a reader's relevance to a paper is their best-matching topic, plus arXiv-category and
  favourite-author matches. Matching papers are ordered by relevance + a little trending, with editorial
  boosts, then picked by MMR so that a reader who follows several topics gets several topics and never two
  versions of one work. Negative keywords and excluded papers (already shown, already sent) are removed.

Everything is computed for a chunk of readers at once as matrix operations (unique topics x papers, then a
gather per reader, top-k per row with argpartition); see for_you_many.
"""

import hashlib
import itertools
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import numpy as np
from django.conf import settings
from django.utils import timezone
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from papers import embeddings
from papers.interests import Interests, author_key, negative_pattern, parse_interests
from papers.models import Moderation, Paper

log = logging.getLogger(__name__)

# --- Trending -------------------------------------------------------------------------------------------
# A paper's pull halves every 36 hours: yesterday's strong paper still beats today's weak one, and a
# three-day-old paper keeps an eighth of its pull, so last week's hit doesn't squat the section.
TRENDING_HALF_LIFE_HOURS = 36.0
# A comment costs more effort than an upvote, so it says more; GitHub stars are cheap and come in hundreds.
COMMENT_WEIGHT = 2.0
STAR_WEIGHT = 0.02
# A paper nobody has voted on yet still ranks, by freshness alone (log1p(1) × decay), below any voted one.
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
# How far back the delivery ledger is read to avoid repeats: past the candidate window of any digest
# (two days daily, a week for weekly readers), with room to spare.
REPEAT_LOOKBACK = timedelta(days=30)

TOKEN = re.compile(r"[a-z0-9][a-z0-9+-]*[a-z0-9+]|[a-z0-9]")
VERSION_MARK = re.compile(r"\b(?:v\d+|version \d+|extended version|preprint)\b")


@dataclass(frozen=True)
class Pick:
    paper_id: int
    score: float
    reason: str = ""


# --- Trending -------------------------------------------------------------------------------------------


def trending_score(paper: Paper, now: datetime | None = None) -> float:
    now = now or timezone.now()
    signal = (paper.upvotes or 0) + COMMENT_WEIGHT * (paper.num_comments or 0) + STAR_WEIGHT * (paper.github_stars or 0)
    age_hours = max(0.0, (now - paper.first_seen).total_seconds() / 3600)
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


def analyze(text: str) -> list[str]:
    words = [_stem(t) for t in TOKEN.findall(text.lower()) if t not in ENGLISH_STOP_WORDS]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


@dataclass
class CandidateIndex:
    papers: list[Paper]
    ids: np.ndarray
    position: dict[int, int]
    vectorizer: TfidfVectorizer
    tfidf: sparse.csr_matrix  # papers × terms, rows of unit length
    embedding: np.ndarray | None  # papers × 384, unit rows; None without the model
    similarity: np.ndarray  # papers × papers, for MMR and near-duplicates
    duplicates: list[np.ndarray]  # per paper, the positions of its near-duplicates
    trending: np.ndarray  # 0..1, the best candidate is 1
    boost: np.ndarray  # editorial multiplier
    allowed: np.ndarray  # False for rejected papers
    texts: list[str]
    categories: dict[str, np.ndarray]
    authors: dict[str, np.ndarray]
    negatives: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)

    def negative_mask(self, phrases: tuple[str, ...]) -> np.ndarray:
        """True for the papers that mention any of the phrases (title or abstract)."""
        mask = self.negatives.get(phrases)
        if mask is None:
            pattern = negative_pattern(phrases)
            mask = np.array([bool(pattern and pattern.search(t)) for t in self.texts], dtype=bool)
            self.negatives[phrases] = mask
        return mask


_indexes: OrderedDict[str, CandidateIndex] = OrderedDict()


def _fingerprint(papers: Sequence[Paper], use_embeddings: bool) -> str:
    digest = hashlib.sha256(str(use_embeddings).encode())
    for p in papers:
        digest.update(
            repr((p.pk, p.title, p.abstract, p.moderation, p.featured, p.pinned, p.upvotes, p.num_comments)).encode()
            + repr((p.github_stars, p.first_seen, p.categories, p.authors, p.embedding is not None)).encode()
        )
    return digest.hexdigest()


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
    texts = [f"{p.title}. {p.title}. {p.abstract}" for p in papers]  # the title says more than any sentence
    vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, dtype=np.float32)
    tfidf = vectorizer.fit_transform(texts) if papers else sparse.csr_matrix((0, 0), dtype=np.float32)
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
    now = now or timezone.now()
    trending = np.array([trending_score(p, now) for p in papers], dtype=np.float32)
    if trending.size and trending.max() > 0:
        trending /= trending.max()
    categories: dict[str, list[int]] = {}
    authors: dict[str, list[int]] = {}
    for i, p in enumerate(papers):
        for c in {*(p.categories or []), p.primary_category} - {""}:
            categories.setdefault(c.lower(), []).append(i)
        for name in p.authors or []:
            authors.setdefault(author_key(str(name)), []).append(i)
    return CandidateIndex(
        papers=papers,
        ids=np.array([p.pk for p in papers], dtype=np.int64),
        position={p.pk: i for i, p in enumerate(papers)},
        vectorizer=vectorizer,
        tfidf=tfidf.tocsr(),
        embedding=vectors,
        similarity=similarity,
        duplicates=[np.flatnonzero(row) for row in duplicate_pairs],
        trending=trending,
        boost=np.array(
            [EDITORIAL_BOOST if p.featured or p.moderation == Moderation.APPROVED else 1.0 for p in papers],
            dtype=np.float32,
        ),
        allowed=np.array([p.moderation != Moderation.REJECTED for p in papers], dtype=bool),
        texts=[f"{p.title}\n{p.abstract}" for p in papers],
        categories={k: np.array(v) for k, v in categories.items()},
        authors={k: np.array(v) for k, v in authors.items()},
    )


# --- For you --------------------------------------------------------------------------------------------


def interests_of(subscriber: object) -> Interests:
    return parse_interests(getattr(subscriber, "interests", "") or "", tuple(getattr(subscriber, "categories", ())))


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


def _feature_hits(
    wanted: list[Iterable[str]], features: Mapping[str, np.ndarray], n_papers: int
) -> tuple[np.ndarray, sparse.csr_matrix] | None:
    """Readers x papers: does any of a reader's categories (or authors) appear on the paper?"""
    rows, cols = [], []
    for r, keys in enumerate(wanted):
        for key in keys:
            hit = features.get(key)
            if hit is not None:
                rows.append(np.full(hit.size, r))
                cols.append(hit)
    if not rows:
        return None
    r, c = np.concatenate(rows), np.concatenate(cols)
    matrix = sparse.csr_matrix((np.ones(r.size, dtype=np.float32), (r, c)), shape=(len(wanted), n_papers))
    return matrix.toarray() > 0, matrix


def _exclusions(index: CandidateIndex, ids: Iterable[int] | None, memo: dict[int, np.ndarray]) -> np.ndarray:
    """Positions of excluded papers and of their near-duplicates (a second version of a paper sent before)."""
    if not ids:
        return np.zeros(0, dtype=np.int64)
    found = memo.get(id(ids))
    if found is None:
        positions = [index.position[i] for i in ids if i in index.position]
        twins = [index.duplicates[p] for p in positions]
        found = np.unique(np.concatenate([np.array(positions, dtype=np.int64), *twins]))
        memo[id(ids)] = found
    return found


def _rank_chunk(
    index: CandidateIndex, subscribers: Sequence, exclude: Mapping[int, Iterable[int]], limits: np.ndarray
) -> dict[int, list[Pick]]:
    n, n_papers = len(subscribers), len(index.papers)
    parsed = [interests_of(s) for s in subscribers]
    unique_topics = list(dict.fromkeys(t for i in parsed for t in i.topics))
    topic_row = {t: r for r, t in enumerate(unique_topics)}
    # One extra all-zero row stands for "no topic here" in the padded reader × topic table.
    scores = np.vstack([topic_scores(index, unique_topics), np.zeros((1, n_papers), dtype=np.float32)])
    width = max((len(i.topics) for i in parsed), default=0)
    table = np.full((n, max(width, 1)), len(unique_topics), dtype=np.int32)
    for r, i in enumerate(parsed):
        table[r, : len(i.topics)] = [topic_row[t] for t in i.topics]
    relevance = scores[table[:, 0]]
    best = np.zeros((n, n_papers), dtype=np.int8)
    for t in range(1, width):
        column = scores[table[:, t]]
        better = column > relevance
        best[better] = t
        np.maximum(relevance, column, out=relevance)
    topical = relevance > 0
    matched = topical.copy()
    total = np.where(topical, relevance, 0.0).astype(np.float32)
    category_hits = _feature_hits([{c.lower() for c in i.categories} for i in parsed], index.categories, n_papers)
    author_hits = _feature_hits([i.authors for i in parsed], index.authors, n_papers)
    for hits, weight in ((category_hits, CATEGORY_SCORE), (author_hits, AUTHOR_SCORE)):
        if hits is not None:
            total += weight * hits[0]
            matched |= hits[0]
    final = np.where(matched, (total + TRENDING_WEIGHT * index.trending) * index.boost, -np.inf).astype(np.float32)
    final[:, ~index.allowed] = -np.inf
    memo: dict[int, np.ndarray] = {}
    for r, (s, i) in enumerate(zip(subscribers, parsed, strict=True)):
        if i.negatives:
            final[r, index.negative_mask(i.negatives)] = -np.inf
        if not i.wants_something:
            final[r] = -np.inf
        excluded = _exclusions(index, exclude.get(s.pk), memo)
        if excluded.size:
            final[r, excluded] = -np.inf
    picked, picked_scores = mmr(index, final, best, limits)
    return _picks(subscribers, parsed, picked, picked_scores, topical, best, category_hits, author_hits, index)


def mmr(
    index: CandidateIndex, final: np.ndarray, best: np.ndarray, limits: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy maximal marginal relevance for every reader of the chunk at once.

    Works on each reader's pool of top candidates (argpartition), picks one paper per step: the best score
    minus similarity to what was already picked minus a penalty per paper already picked on the same topic.
    Near-duplicates of a picked paper are out. Returns (positions, scores), -1 where nothing was left."""
    n, n_papers = final.shape
    k = int(limits.max()) if n else 0
    picked = np.full((n, k), -1, dtype=np.int64)
    picked_scores = np.zeros((n, k), dtype=np.float32)
    if not n or not n_papers or not k:
        return picked, picked_scores
    pool = min(n_papers, k * MMR_POOL_FACTOR)
    rows = np.arange(n)[:, None]
    candidates = (
        np.argpartition(-final, pool - 1, axis=1)[:, :pool] if pool < n_papers else np.tile(np.arange(n_papers), (n, 1))
    )
    score = final[rows, candidates]
    topic = best[rows, candidates]
    closeness = np.zeros(score.shape, dtype=np.float32)
    per_topic = np.zeros((n, int(best.max()) + 1 if best.size else 1), dtype=np.float32)
    threshold = NEAR_DUPLICATE_EMBEDDING if index.embedding is not None else NEAR_DUPLICATE_TFIDF
    flat = np.arange(n)
    for step in range(k):
        adjusted = score - DIVERSITY_WEIGHT * closeness - TOPIC_REPEAT_PENALTY * np.take_along_axis(per_topic, topic, 1)
        adjusted[closeness >= threshold] = -np.inf
        choice = np.argmax(adjusted, axis=1)
        ok = np.isfinite(adjusted[flat, choice]) & (step < limits)
        chosen = candidates[flat, choice]
        picked[ok, step] = chosen[ok]
        picked_scores[ok, step] = score[flat, choice][ok]
        score[flat[ok], choice[ok]] = -np.inf
        np.maximum(closeness, np.where(ok[:, None], index.similarity[chosen[:, None], candidates], 0.0), out=closeness)
        per_topic[flat[ok], topic[flat, choice][ok]] += 1
    return picked, picked_scores


def _picks(
    subscribers: Sequence,
    parsed: list[Interests],
    picked: np.ndarray,
    picked_scores: np.ndarray,
    topical: np.ndarray,
    best: np.ndarray,
    category_hits: tuple | None,
    author_hits: tuple | None,
    index: CandidateIndex,
) -> dict[int, list[Pick]]:
    """Picks with their reasons, built only for the papers picked (the matrices stay numeric)."""
    n = len(subscribers)
    rows = np.arange(n)[:, None]
    safe = np.maximum(picked, 0)
    topic_ok = topical[rows, safe].tolist()
    topic_at = best[rows, safe].tolist()
    category_ok = category_hits[0][rows, safe].tolist() if category_hits else None
    author_ok = author_hits[0][rows, safe].tolist() if author_hits else None
    ids, scores = index.ids[safe].tolist(), np.round(picked_scores, 4).tolist()
    positions = picked.tolist()
    result: dict[int, list[Pick]] = {}
    for r, s in enumerate(subscribers):
        interests, picks = parsed[r], []
        for j, position in enumerate(positions[r]):
            if position < 0:
                break
            reasons = []
            if topic_ok[r][j]:
                reasons.append("matches: " + interests.topics[topic_at[r][j]])
            if category_ok and category_ok[r][j]:
                reasons.append("category: " + _category_matched(index.papers[position], interests))
            if author_ok and author_ok[r][j]:
                reasons.append("author: " + _author_matched(index.papers[position], interests))
            picks.append(Pick(ids[r][j], scores[r][j], "; ".join(reasons)))
        result[s.pk] = picks
    return result


def _category_matched(paper: Paper, interests: Interests) -> str:
    wanted = {c.lower() for c in interests.categories}
    return next(c for c in [*(paper.categories or []), paper.primary_category] if c.lower() in wanted)


def _author_matched(paper: Paper, interests: Interests) -> str:
    on_paper = {author_key(str(a)) for a in paper.authors or []}
    return next(name for name, key in zip(interests.author_names, interests.authors, strict=True) if key in on_paper)


def for_you_many(
    subscribers: Sequence, candidates: Sequence[Paper], exclude: Mapping[int, Iterable[int]]
) -> dict[int, list[Pick]]:
    """ "For you" for many subscribers at once: {subscriber id: picks, best first}.

    Each subscriber gets at most `papers_per_digest` picks, none of the paper ids in `exclude[id]` (nor their
    near-duplicates), nothing matching their negative keywords, nothing rejected. A subscriber with no
    interests gets no picks (the trending section only)."""
    subscribers = list(subscribers)
    if not subscribers:
        return {}
    if not candidates:
        return {s.pk: [] for s in subscribers}
    index = candidate_index(candidates)
    result: dict[int, list[Pick]] = {}
    for start in range(0, len(subscribers), RANK_CHUNK_SIZE):
        chunk = subscribers[start : start + RANK_CHUNK_SIZE]
        limits = np.array([s.papers_per_digest or settings.DIGEST_FOR_YOU_COUNT for s in chunk], dtype=np.int64)
        result.update(_rank_chunk(index, chunk, exclude, limits))
    return result


def for_you(interests: str, papers: Sequence[Paper], limit: int, exclude: Iterable[int] = ()) -> list[Pick]:
    """One hypothetical reader's list (the rank_papers command, the evaluation)."""
    reader = SimpleNamespace(pk=0, interests=interests, categories=[], papers_per_digest=limit)
    return for_you_many([reader], papers, {0: set(exclude)})[0]


# --- The ledger and ingest hooks ------------------------------------------------------------------------


def already_sent(subscriber_ids: Iterable[int], since: date, before: date | None = None) -> dict[int, set[int]]:
    """{subscriber id: paper ids} each was sent in digests dated since ≤ date < before (the delivery ledger)."""
    from newsletter.models import Delivery

    ids = list(subscriber_ids)
    sent: dict[int, set[int]] = {i: set() for i in ids}
    rows = Delivery.objects.filter(subscriber_id__in=ids, digest__date__gte=since).exclude(paper_ids=[])
    if before is not None:
        rows = rows.filter(digest__date__lt=before)
    for subscriber_id, paper_ids in rows.values_list("subscriber_id", "paper_ids").iterator(chunk_size=2000):
        sent[subscriber_id].update(int(p) for p in paper_ids or [])
    return sent


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
