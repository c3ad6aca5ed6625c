"""A reader's interests, read from the free text they typed: topics, arXiv categories, authors, things to avoid.

One interest per line, comma or semicolon:
    continual learning, speech synthesis
    cs.LG; stat.ML
    author: Yoshua Bengio
    no quantum
"""

import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from papers import caches

SEPARATORS = re.compile(r"[,;\n]+")
# read_many splits many texts at once, with this character between them.
BOUNDARY = "\x00"
LETTER_OR_DIGIT = re.compile(r"[^\W_]")
# arXiv category ids: "cs.LG", "stat.ML", "q-bio.NC", "astro-ph.CO", "math.OC"; plus archives that have no
# sub-categories. Anything else is a topic, so a reader's "robots" never turns into a category.
CATEGORY = re.compile(
    r"^(?:[a-z]+(?:-[a-z]+)?\.[A-Za-z]{2,3}|hep-(?:ex|lat|ph|th)|gr-qc|nucl-(?:ex|th)|quant-ph|math-ph)$"
)
AUTHOR_PREFIX = re.compile(r"^(?:author|by)\s*:\s*", re.IGNORECASE)
NEGATIVE_WORDS = frozenset(["no", "not", "without", "exclude", "except"])
NEGATIVE_PREFIX = re.compile(r"^(?:" + "|".join(NEGATIVE_WORDS) + r")\s+|^-\s*", re.IGNORECASE)
# A reader with a hundred topics is pasting, not choosing; more would only blur their list (and the matrices).
MAX_TOPICS = 12
MAX_TOPIC_CHARS = 200


class Interests(NamedTuple):
    """Immutable; one per distinct interest text, read for every reader of a send, hence a tuple."""

    topics: tuple[str, ...] = ()
    categories: frozenset[str] = frozenset()
    authors: tuple[str, ...] = ()  # normalized with author_key()
    author_names: tuple[str, ...] = ()  # as the reader wrote them, for reasons
    negatives: tuple[str, ...] = ()

    @property
    def wants_something(self) -> bool:
        """False for a reader with no interests (or only negatives): they get the trending section only."""
        return bool(self.topics or self.categories or self.authors)


def author_key(name: str) -> str:
    """'Léa  Dupont' and 'lea dupont' are the same author: accents, case and spacing don't count."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


class Kind(Enum):
    TOPIC = "topic"
    CATEGORY = "category"
    AUTHOR = "author"
    NEGATIVE = "negative"


class Item(NamedTuple):
    """One comma-, semicolon- or line-separated piece of a reader's text, read on its own."""

    kind: Kind
    value: str  # the topic as written, the category id, the author's key, the negative phrase
    label: str = ""  # the topic lowercased (what makes two topics one), the author's name as written


# Readers share their pieces ("continual learning", "cs.LG", "no quantum") far more than their whole texts, so
# each distinct piece is read once per process; this many stay cached (a few MB).
ITEM_CACHE_SIZE = 262_144


@lru_cache(maxsize=ITEM_CACHE_SIZE)
def read_item(raw: str) -> Item | None:
    """What one piece says; None for a piece that says nothing (punctuation, control characters, a lone "no")."""
    item = " ".join(raw.split())[:MAX_TOPIC_CHARS]
    low = item.lower()
    if low in NEGATIVE_WORDS or not LETTER_OR_DIGIT.search(item):
        return None
    # Cheap tests first: most items are plain topics.
    if ":" in item and AUTHOR_PREFIX.match(item):
        name = AUTHOR_PREFIX.sub("", item)
        return Item(Kind.AUTHOR, author_key(name), name)
    if (item[0] == "-" or low.partition(" ")[0] in NEGATIVE_WORDS) and NEGATIVE_PREFIX.match(item):
        return Item(Kind.NEGATIVE, NEGATIVE_PREFIX.sub("", low).strip())
    if ("." in item or "-" in item) and CATEGORY.match(item):
        return Item(Kind.CATEGORY, item)
    return Item(Kind.TOPIC, item, low)


@dataclass
class ManyInterests:
    """The interests of many readers at once, as arrays, without an Interests value per reader (ranking a send
    reads a hundred thousand of them). Profiles are numbered as given."""

    topic_names: list[str]  # every distinct topic (as first written) once
    topics: np.ndarray  # profiles x most topics: indexes into topic_names, padded with len(topic_names)
    topic_counts: np.ndarray  # per profile
    categories: dict[int, frozenset[str]]  # per profile that has any: the arXiv categories as written
    authors: dict[int, tuple[str, ...]]  # per profile that has any: favourite authors' names as written
    negatives: dict[int, tuple[str, ...]]  # per profile that has any: the phrases to avoid
    wants: np.ndarray  # per profile: Interests.wants_something


def read_many(texts: Sequence[str | None], chosen: Sequence[Sequence[str]]) -> ManyInterests:
    """The interests of many readers (profiles): texts[i] and the categories chosen[i] they picked from the list.

    The one home of the rules that make a reader's pieces into their interests: a topic once by its lowercased
    label, at most MAX_TOPICS; categories typed or chosen; authors once by their key; negatives once. Every
    piece of every text is read once per distinct piece, in one pass, and the rules are applied to all readers
    together as array operations. Only the rarer pieces (categories, authors, negatives) are gathered in
    Python. One reader is read as a group of one (read_interests)."""
    n = len(texts)
    # Every text's pieces in one split (what SEPARATORS.split does per text): the texts are joined with a piece
    # of their own, BOUNDARY, between them, unless some text holds that character. Runs of separators give
    # empty pieces, which say nothing, as read_item says of them.
    if None in texts:
        texts = [text or "" for text in texts]
    joined = f",{BOUNDARY},".join(texts)
    owner = None
    if joined.count(BOUNDARY) == n - 1:
        flat = joined.replace(";", ",").replace("\n", ",").split(",")
    else:
        split = [SEPARATORS.split(text) for text in texts]
        flat = list(itertools.chain.from_iterable(split))
        owner = np.repeat(np.arange(n), np.fromiter(map(len, split), dtype=np.int64, count=n))
    number = dict(zip(dict.fromkeys(flat), itertools.count(), strict=False))  # each distinct piece is read once
    distinct = list(map(read_item, number))
    code = np.fromiter(map(number.__getitem__, flat), dtype=np.int64, count=len(flat))
    if owner is None:
        boundary = code == number.get(BOUNDARY, -1)
        owner, code = np.cumsum(boundary)[~boundary], code[~boundary]
    # Per distinct piece: is it a topic, and which label and which written form.
    labels: dict[str, int] = {}
    values: dict[str, int] = {}
    is_topic = np.zeros(len(distinct), dtype=bool)
    said = np.zeros(len(distinct), dtype=bool)
    label_of = np.zeros(len(distinct), dtype=np.int64)
    value_of = np.zeros(len(distinct), dtype=np.int64)
    for i, item in enumerate(distinct):
        if item is not None:
            said[i] = True
            if item.kind is Kind.TOPIC:
                is_topic[i] = True
                label_of[i] = labels.setdefault(item.label, len(labels))
                value_of[i] = values.setdefault(item.value, len(values))
    # Topics: each reader's first piece of each label, in their order, at most MAX_TOPICS.
    topical = is_topic[code]
    who, piece = owner[topical], code[topical]
    _, first = np.unique(who * max(len(labels), 1) + label_of[piece], return_index=True)
    first.sort()
    who, value = who[first], value_of[piece[first]]
    counts = np.bincount(who, minlength=n)
    rank = np.arange(who.size) - np.repeat(np.cumsum(counts) - counts, counts)
    kept = rank < MAX_TOPICS
    who, rank, value = who[kept], rank[kept], value[kept]
    used, row = np.unique(value, return_inverse=True)  # only topics some reader kept get a row
    written = list(values)
    topic_counts = np.minimum(counts, MAX_TOPICS)
    topics = np.full((n, max(int(topic_counts.max(initial=0)), 1)), used.size, dtype=np.int64)
    topics[who, rank] = row
    # The other kinds of piece, reader by reader.
    categories: dict[int, set[str]] = {}
    authors: dict[int, dict[str, str]] = {}
    negatives: dict[int, dict[str, None]] = {}
    other = np.flatnonzero(~topical & said[code])
    for reader, i in zip(owner[other].tolist(), code[other].tolist(), strict=True):
        kind, value_, label = distinct[i]
        if kind is Kind.CATEGORY:
            categories.setdefault(reader, set()).add(value_)
        elif kind is Kind.AUTHOR:
            if value_:
                authors.setdefault(reader, {}).setdefault(value_, label)
        elif value_:
            negatives.setdefault(reader, {}).setdefault(value_, None)
    for reader in np.flatnonzero(np.fromiter(map(bool, chosen), dtype=bool, count=n)).tolist():
        picked = {c.strip() for c in chosen[reader] if c and c.strip()}
        if picked:
            categories.setdefault(reader, set()).update(picked)
    wants = topic_counts > 0
    wants[list(categories)] = True
    wants[list(authors)] = True
    return ManyInterests(
        topic_names=[written[v] for v in used.tolist()],
        topics=topics,
        topic_counts=topic_counts,
        categories={reader: frozenset(c) for reader, c in categories.items()},
        authors={reader: tuple(names.values()) for reader, names in authors.items()},
        negatives={reader: tuple(phrases) for reader, phrases in negatives.items()},
        wants=wants,
    )


def read_interests(text: str, categories: tuple[str, ...] = ()) -> Interests:
    """One reader's free text (and the categories they chose) as an Interests value: read_many of one."""
    many = read_many([text], [categories])
    names = many.authors.get(0, ())
    return Interests(
        topics=tuple(many.topic_names[t] for t in many.topics[0, : many.topic_counts[0]].tolist()),
        categories=many.categories.get(0, frozenset()),
        authors=tuple(map(author_key, names)),
        author_names=names,
        negatives=many.negatives.get(0, ()),
    )


# One reader at a time (a preview, a reader's trending section), the same texts come back: keep them. Many
# readers at once (ranking a send) are read together with read_many.
parse_interests = lru_cache(maxsize=65536)(read_interests)
caches.register("interest pieces", read_item.cache_clear)
caches.register("interests by text", parse_interests.cache_clear)


def interests_of(subscriber: object) -> Interests:
    """One reader's interests, read from their text and their chosen arXiv categories."""
    return parse_interests(
        getattr(subscriber, "interests", "") or "", tuple(getattr(subscriber, "categories", ()) or ())
    )


def negative_pattern(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any of the phrases as whole words (plurals too): "no quantum" removes "quantum
    chemistry" but not "quantization"."""
    parts = [r"\s+".join(re.escape(w) for w in phrase.split()) for phrase in phrases if phrase.split()]
    if not parts:
        return None
    return re.compile(r"\b(?:" + "|".join(parts) + r")(?:s|es)?\b", re.IGNORECASE)
