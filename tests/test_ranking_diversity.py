"""Diversity in one digest: never two copies of one work, and several topics for a reader who follows several."""

import pytest

from papers.models import Paper
from papers.ranking import for_you, mmr, rank_trending
from tests.ranking_helpers import seed_papers

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tfidf_only(settings):
    settings.RANKING_EMBEDDINGS = "off"


@pytest.fixture
def seed() -> list[Paper]:
    return seed_papers()


def second_copy(paper: Paper, canonical_id: str, title: str | None = None) -> Paper:
    """The same work seen again: another source with no shared id, or a revised version."""
    return Paper.objects.create(
        canonical_id=canonical_id,
        title=title or paper.title,
        abstract=paper.abstract + " Code and models are released.",
        upvotes=50,
    )


def test_two_copies_of_one_work_never_both_appear(seed):
    best = next(p for p in seed if p.pk == for_you("model merging", seed, 1)[0].paper_id)
    copy = second_copy(best, "title:copy", title=f"{best.title.upper()} v2")
    papers = [*seed, copy]
    picked = {p.paper_id for p in for_you("model merging", papers, 10)}
    assert len(picked & {best.pk, copy.pk}) == 1
    # The shared section too: one copy, even though both would rank.
    best.upvotes = 60
    trending = rank_trending([best, copy, *seed[:3]], 5)
    assert len({best.pk, copy.pk} & {p.pk for p in trending}) == 1


def test_a_copy_of_a_paper_sent_before_is_not_new(seed):
    best = next(p for p in seed if p.pk == for_you("model merging", seed, 1)[0].paper_id)
    copy = second_copy(best, "doi:10.1/copy")
    picked = {p.paper_id for p in for_you("model merging", [*seed, copy], 10, exclude={best.pk})}
    assert not picked & {best.pk, copy.pk}


def test_a_reader_of_two_topics_gets_both_in_turn(seed, monkeypatch):
    def top_reasons() -> list[str]:
        return [p.reason for p in for_you("continual learning, language models", seed, 6)]

    assert sorted(top_reasons()) == ["matches: continual learning"] * 3 + ["matches: language models"] * 3
    # Without the diversity terms, the stronger topic takes most places.
    monkeypatch.setattr(mmr, "DIVERSITY_WEIGHT", 0.0)
    monkeypatch.setattr(mmr, "TOPIC_REPEAT_PENALTY", 0.0)
    assert top_reasons().count("matches: language models") < 3
