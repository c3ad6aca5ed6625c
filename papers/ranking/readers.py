"""Readers' interests as arrays, for ranking a chunk of readers at once: each distinct profile (interest text
and chosen categories) is read once, its topics are rows of the topic matrix, and its categories, favourite
authors and negative keywords are groups of wishes that say once where they meet a candidate paper."""

import itertools
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

import numpy as np
from django.conf import settings
from scipy import sparse

from papers.interests import author_key, read_many
from papers.ranking.index import CandidateIndex


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
                lambda wanted: {c.lower() for c in wanted},
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
    runs Python per row, and a send reads every reader's."""
    meta = getattr(rows[0], "_meta", None)
    if meta is not None and all(map(type(rows[0]).__instancecheck__, rows)):
        return list(map(attrgetter(meta.pk.attname), rows))
    return list(map(attrgetter("pk"), rows))
