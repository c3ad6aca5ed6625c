"""A reader's ratings of papers ("more like this" / "less like this"): recording, undoing and removing them, what
the preferences page and the data export show, and the ranking's view of them (handed to papers.ranking.learned
on start-up, so papers/ never imports subscribers/)."""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db import transaction
from django.utils import timezone

from papers import embeddings
from papers.models import Paper
from papers.ranking import learned
from papers.ranking.learned import MAX_RATINGS_USED, Ratings
from subscribers.models import Rating, Subscriber, Taste

# What a rating is called in the email's links, the page's buttons and the data export.
WORDS = {Rating.MORE: "more", Rating.LESS: "less"}
VALUES = {word: value for value, word in WORDS.items()}
# The paper fields the ranking reads from a rated paper: its text for TF-IDF and its stored embedding.
RANKED_FIELDS = ("pk", "title", "abstract", "embedding")


@dataclass(frozen=True)
class Rated:
    paper: Paper
    value: int
    at: datetime

    @property
    def word(self) -> str:
        return WORDS[self.value]


def current(subscriber_id: int, paper_id: int) -> int | None:
    return Rating.objects.filter(subscriber_id=subscriber_id, paper_id=paper_id).values_list("value", flat=True).first()


def rate(subscriber_id: int, paper_id: int, value: int | None) -> None:
    """Set the reader's rating of the paper (None removes it). Rating again replaces the earlier rating and
    makes it the newest."""
    if value is None:
        Rating.objects.filter(subscriber_id=subscriber_id, paper_id=paper_id).delete()
        return
    if value not in WORDS:
        raise ValueError(f"a rating is {Rating.MORE} or {Rating.LESS}, not {value!r}")
    with transaction.atomic():
        Rating.objects.update_or_create(
            subscriber_id=subscriber_id,
            paper_id=paper_id,
            defaults={"value": value, "created_at": timezone.now()},
        )


def reset(subscriber_id: int) -> int:
    """Forget every rating of the reader (and the model they made). Returns how many."""
    Taste.objects.filter(subscriber_id=subscriber_id).delete()
    return Rating.objects.filter(subscriber_id=subscriber_id).delete()[0]


def retrain(subscriber_id: int) -> bool:
    """Refit the reader's kept model from their ratings (with the embedding model, past the threshold), or drop
    it. True when a model is kept."""
    ratings = reader_ratings([subscriber_id]) if embeddings.enabled() else Ratings()
    ids, values = ratings.by_reader.get(subscriber_id, ((), ()))
    known = [(ratings.papers[i], v) for i, v in zip(ids, values, strict=True) if i in ratings.papers]
    if len(known) < learned.MIN_RATINGS_FOR_MODEL:
        Taste.objects.filter(subscriber_id=subscriber_id).delete()
        return False
    vectors = embeddings.paper_vectors([paper for paper, _ in known])
    weights = learned.fit(vectors, np.array([v for _, v in known]))
    Taste.objects.update_or_create(
        subscriber_id=subscriber_id,
        defaults={"weights": embeddings.to_bytes(weights), "ratings": len(known), "updated_at": timezone.now()},
    )
    return True


def ratings_of(subscriber: Subscriber) -> list[Rated]:
    """The reader's ratings, newest first, with their papers."""
    rows = subscriber.ratings.select_related("paper").only(
        "value", "created_at", "paper__title", "paper__canonical_id", "paper__url", "paper__arxiv_id"
    )
    return [Rated(r.paper, r.value, r.created_at) for r in rows.order_by("-created_at", "-pk")]


def export_rows(subscriber: Subscriber) -> list[dict]:
    """The ratings as the data download lists them."""
    return [
        {"paper": r.paper.canonical_id, "title": r.paper.title, "rating": r.word, "at": r.at.isoformat()}
        for r in ratings_of(subscriber)
    ]


def export_model(subscriber: Subscriber) -> dict | None:
    """The model kept from the reader's ratings, as the data download shows it (its weights are numbers
    derived from the ratings listed beside it)."""
    taste = Taste.objects.filter(subscriber=subscriber).first()
    if taste is None:
        return None
    weights = embeddings.from_bytes(taste.weights)
    return {
        "fitted_on_ratings": taste.ratings,
        "updated_at": taste.updated_at.isoformat(),
        "weights": [round(float(w), 6) for w in weights] if weights is not None else [],
    }


def reader_ratings(pks: Sequence[int]) -> Ratings:
    """The newest MAX_RATINGS_USED ratings of each of these readers, and the papers they rated, for ranking."""
    rows = (
        Rating.objects.filter(subscriber_id__in=list(pks))
        .order_by("subscriber_id", "-created_at", "-pk")
        .values_list("subscriber_id", "paper_id", "value")
    )
    by_reader: dict[int, tuple[list[int], list[int]]] = {}
    for pk, group in itertools.groupby(rows.iterator(), key=lambda r: r[0]):
        newest = list(itertools.islice(group, MAX_RATINGS_USED))
        by_reader[pk] = ([r[1] for r in newest], [r[2] for r in newest])
    ids = {pid for ids, _ in by_reader.values() for pid in ids}
    papers = {p.pk: p for p in Paper.objects.filter(pk__in=ids).only(*RANKED_FIELDS)} if ids else {}
    weights = {}
    if by_reader and embeddings.enabled():
        kept = Taste.objects.filter(subscriber_id__in=list(by_reader)).values_list("subscriber_id", "weights")
        weights = {pk: vector for pk, data in kept.iterator() if (vector := embeddings.from_bytes(data)) is not None}
    return Ratings(by_reader, papers, weights)


def on_papers_merging(sender: object, keep: Paper, duplicate_ids: set[int], **kwargs: object) -> None:
    repoint(keep, duplicate_ids)


def repoint(keep: Paper, duplicate_ids: set[int]) -> None:
    """Ratings of papers merged into `keep` become ratings of `keep` (a reader who rated both keeps the newest)."""
    moved = Rating.objects.filter(paper_id__in=duplicate_ids).order_by("-created_at")
    for rating in moved:
        if not Rating.objects.filter(subscriber_id=rating.subscriber_id, paper=keep).exists():
            Rating.objects.filter(pk=rating.pk).update(paper=keep)
    Rating.objects.filter(paper_id__in=duplicate_ids).delete()
