"""What a reader is shown: their picks (paper, score, and the reason it was picked), kept for a whole send as
flat arrays and read back as each reader's list of Pick when their digest is rendered."""

import functools
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from papers.interests import author_key
from papers.ranking.index import CandidateIndex
from papers.ranking.readers import Readers


class Pick(NamedTuple):
    """One "For you" paper for one reader. Immutable; built a million times per 100k readers, hence a tuple."""

    paper_id: int
    score: float
    reason: str = ""


def chunk_picks(
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


def category_reason(index: CandidateIndex, position: int, wanted: frozenset[str]) -> str:
    """The paper's first category (as the paper spells it) among the reader's, whatever their case."""
    lowered = {c.lower() for c in wanted}
    return "category: " + next(c for c in index.category_names[position] if c.lower() in lowered)


def author_reason(index: CandidateIndex, position: int, names: tuple[str, ...]) -> str:
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
