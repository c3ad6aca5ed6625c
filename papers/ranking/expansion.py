"""A reader's topic read the way the papers say it: acronyms spelled out from the papers' own definitions, and,
with the model, the candidates' terms nearest to the topic in meaning.

- Acronyms: "graph neural networks (GNNs)" in an abstract teaches that a reader's "GNNs" means graph neural
  networks. The long form is found by Schwartz & Hearst's rule (2003): the shortest run of words before the
  parenthesis whose letters spell the acronym in order, the first letter starting a word.
- Nearest terms: the candidates' words and word pairs closest to the topic in the model's space ("robots and drones
  working together" → "multi-robot"), added to the lexical query, so that a paraphrase also finds the papers
  that use the field's words.
"""

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from papers import embeddings
from papers.ranking.lexical import Bm25

# An acronym in more than this share of the candidates ("AI", "LLM") is understood as it is: spelling it out
# would only dilute the query.
COMMON_ACRONYM = 0.05
# Characters before a parenthesis searched for its long form: the longest definitions are a dozen words.
DEFINITION_WINDOW = 200
# Terms offered as expansions appear in at least this many candidates: rarer ones are typos and names...
TERM_MIN_DF = 3
# ...and in at most this share of them: a word most abstracts use ("demonstrate", "model") says nothing about a
# topic, however close the model finds it (the same share as COMMON_ACRONYM, for the same reason).
TERM_MAX_SHARE = 0.05
# Expansion terms per topic, each at least this close to it in the model's space (cosine): closer terms are
# the topic's own vocabulary, farther ones drift to neighbouring fields.
NEAR_TERMS = 5
NEAR_MIN_COSINE = 0.5
# Topics compared with the candidates' terms per step: 256 × 10,000 terms × 4 bytes is 10 MB.
NEAR_BLOCK = 256
ACRONYM = re.compile(r"\(([A-Za-z][A-Za-z0-9-]*?[A-Z][A-Za-z0-9-]*?)(s?)\)")
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")


def long_form(before: str, short: str) -> str | None:
    """Schwartz & Hearst: scanning both from the end, every letter or digit of the short form must appear in order
    in the words before the parenthesis, the first one at the start of a word; the long form starts at that word."""
    s, i = len(short) - 1, len(before) - 1
    while s >= 0:
        c = short[s].lower()
        if not c.isalnum():
            s -= 1
            continue
        while i >= 0 and (before[i].lower() != c or (s == 0 and i > 0 and before[i - 1].isalnum())):
            i -= 1
        if i < 0:
            return None
        i -= 1
        s -= 1
    return before[before.rfind(" ", 0, i + 1) + 1 :].strip()


def learn_acronyms(texts: Sequence[str]) -> dict[str, str]:
    """acronym (lowercase, singular) → its most frequent long form in the texts, for acronyms in at most
    COMMON_ACRONYM of them."""
    seen: dict[str, Counter] = defaultdict(Counter)
    holding: Counter = Counter()  # texts holding each word, lowercased, a plural "s" also dropped
    for text in texts:
        for match in ACRONYM.finditer(text):
            short = match.group(1)
            if len(re.sub(r"[^A-Za-z]", "", short)) < 2 or sum(c.isupper() for c in short) < 2:
                continue
            words = WORD.findall(text[max(0, match.start() - DEFINITION_WINDOW) : match.start()])
            found = long_form(" ".join(words[-min(len(short) + 5, 2 * len(short)) :]), short)
            if found and len(found) > len(short) and short.lower() not in found.lower().split():
                seen[short.lower()][found.lower()] += 1
        words = {w.lower() for w in WORD.findall(text)}
        holding.update(words | {w[:-1] for w in words if w.endswith("s")})
    limit = COMMON_ACRONYM * len(texts)
    return {short: forms.most_common(1)[0][0] for short, forms in seen.items() if holding[short] <= limit}


def expand(topic: str, acronyms: dict[str, str]) -> str:
    """The topic with the long form of each acronym it holds, as the papers spell it. Only words typed with two
    capitals or more are acronyms ("GNNs", "MoE", "KV"; not "it" or "apps")."""
    extra = []
    for word in WORD.findall(topic):
        if sum(c.isupper() for c in word) < 2:
            continue
        key = word.lower()
        for candidate in (key, key[:-1] if key.endswith("s") else None):
            if candidate and candidate in acronyms:
                extra.append(acronyms[candidate])
                break
    return f"{topic} ({', '.join(extra)})" if extra else topic


@dataclass
class TermSpace:
    """The candidates' terms (in TERM_MIN_DF papers or more) and their vectors in the model's space."""

    names: list[str]
    vectors: np.ndarray  # terms × 384, unit rows

    @classmethod
    def build(cls, bm25: Bm25) -> "TermSpace":
        most = TERM_MAX_SHARE * bm25.weights.shape[1]
        names = sorted(
            t
            for t, column in bm25.vocabulary.items()
            if TERM_MIN_DF <= bm25.df[column] <= max(most, TERM_MIN_DF) and not t.isdigit()
        )
        # Shared across workers like interests: a day's terms are mostly yesterday's.
        return cls(names, embeddings.encode(names, shared=True))

    def nearest(self, topics: np.ndarray) -> list[list[str]]:
        """For each topic vector, its NEAR_TERMS nearest terms at NEAR_MIN_COSINE or closer, nearest first."""
        found: list[list[str]] = [[] for _ in range(len(topics))]
        if not self.names:
            return found
        for start in range(0, len(topics), NEAR_BLOCK):
            cosine = topics[start : start + NEAR_BLOCK] @ self.vectors.T
            # Few terms are that close to a topic: sort those only, by topic then nearest first.
            rows, terms = np.nonzero(cosine >= NEAR_MIN_COSINE)
            order = np.lexsort((terms, -cosine[rows, terms], rows))
            rows, terms = rows[order], terms[order]
            first = np.searchsorted(rows, rows)  # where each topic's run starts
            keep = np.arange(rows.size) - first < NEAR_TERMS
            for row, term in zip(rows[keep].tolist(), terms[keep].tolist(), strict=True):
                found[start + row].append(self.names[term])
        return found
