"""A reader's interests, read from the free text they typed: topics, arXiv categories, authors, things to avoid.

One interest per line, comma or semicolon:
    continual learning, speech synthesis
    cs.LG; stat.ML
    author: Yoshua Bengio
    no quantum
"""

import re
import unicodedata
from collections.abc import Iterable
from enum import Enum
from functools import lru_cache
from typing import NamedTuple

SEPARATORS = re.compile(r"[,;\n]+")
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


def read_interests(text: str, categories: tuple[str, ...] = ()) -> Interests:
    """Read the free text (and the subscriber's chosen categories) into an Interests value."""
    topics: list[str] = []
    cats = {c.strip() for c in categories if c and c.strip()}
    authors: list[str] = []
    names: list[str] = []
    negatives: list[str] = []
    seen: set[str] = set()
    for item in map(read_item, SEPARATORS.split(text or "")):
        if item is None:
            continue
        kind, value, label = item
        if kind is Kind.TOPIC:
            if label not in seen and len(topics) < MAX_TOPICS:
                seen.add(label)
                topics.append(value)
        elif kind is Kind.CATEGORY:
            cats.add(value)
        elif kind is Kind.AUTHOR:
            if value and value not in authors:
                authors.append(value)
                names.append(label)
        elif value and value not in negatives:
            negatives.append(value)
    return Interests(tuple(topics), frozenset(cats), tuple(authors), tuple(names), tuple(negatives))


# One reader at a time (a preview, a reader's trending section), the same texts come back: keep them. Many
# readers at once (ranking a send) read each distinct text once with read_interests.
parse_interests = lru_cache(maxsize=65536)(read_interests)


def negative_pattern(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any of the phrases as whole words (plurals too): "no quantum" removes "quantum
    chemistry" but not "quantization"."""
    parts = [r"\s+".join(re.escape(w) for w in phrase.split()) for phrase in phrases if phrase.split()]
    if not parts:
        return None
    return re.compile(r"\b(?:" + "|".join(parts) + r")(?:s|es)?\b", re.IGNORECASE)
