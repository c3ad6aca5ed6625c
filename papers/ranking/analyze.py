"""Text as the ranking reads it: terms for TF-IDF (words and word pairs, stop words out, plurals folded), and
titles as keys that are equal for two versions of one work."""

import functools
import itertools
import re

TOKEN = re.compile(r"[a-z0-9][a-z0-9+-]*[a-z0-9+]|[a-z0-9]")
VERSION_MARK = re.compile(r"\b(?:v\d+|version \d+|extended version|preprint)\b")


def _stem(token: str) -> str:
    """Plural and singular are one term ("robots" finds "robot"); a full stemmer would merge too much."""
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is", "ics")):
        return token[:-1]
    return token


@functools.cache
def stop_words() -> frozenset[str]:
    """scikit-learn is imported where ranking runs, not by every process that imports this module: it is slow to
    load, and web processes and the send command's waiting loop never need it."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS


def analyze(text: str) -> list[str]:
    stop = stop_words()
    words = [_stem(t) for t in TOKEN.findall(text.lower()) if t not in stop]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def title_key(title: str) -> str:
    """Equal for two versions of one title: case, punctuation and version markers don't count."""
    text = re.sub(r"[^a-z0-9]+", " ", (title or "").lower())
    return " ".join(VERSION_MARK.sub(" ", text).split())
