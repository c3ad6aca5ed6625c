""" "For you" relevance on the 79 real seed abstracts, with the TF-IDF fallback (no model): topics, negative
keywords, categories, favourite authors, editorial overrides, exclusions, reasons, many readers at once."""

from types import SimpleNamespace

import numpy as np
import pytest

from papers import ranking
from papers.ingest import fetch_and_ingest
from papers.models import Moderation, Paper
from papers.ranking import for_you, for_you_many, foryou
from papers.ranking.mmr import best_first
from subscribers.models import Subscriber
from tests.conftest import fixture_path
from tests.ranking_helpers import seed_papers

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tfidf_only(settings):
    settings.RANKING_EMBEDDINGS = "off"


@pytest.fixture
def seed() -> dict[str, Paper]:
    return {p.title: p for p in seed_papers()}


def titles(picks, papers) -> list[str]:
    by_id = {p.pk: p for p in papers.values()} if isinstance(papers, dict) else {p.pk: p for p in papers}
    return [by_id[p.paper_id].title for p in picks]


def test_a_topic_finds_the_papers_about_it_with_a_reason(seed):
    picks = for_you("continual learning", list(seed.values()), 5)
    assert len(picks) == 5
    for title in titles(picks, seed):
        assert "continual" in (title + seed[title].abstract).lower()
    assert {p.reason for p in picks} == {"matches: continual learning"}
    assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True)


def test_a_negative_keyword_removes_papers_entirely(seed):
    papers = list(seed.values())
    with_quantum = titles(for_you("reinforcement learning", papers, 20), seed)
    assert "AdsorbRL: Deep Multi-Objective Reinforcement Learning for Inverse Catalysts Design" in with_quantum
    without = titles(for_you("reinforcement learning, no quantum", papers, 20), seed)
    assert without and not any("quantum" in (t + seed[t].abstract).lower() for t in without)
    assert set(without) == set(with_quantum) - {t for t in with_quantum if "quantum" in seed[t].abstract.lower()}
    # "quantum" is not "quantization": the quantization papers stay.
    quantization = titles(for_you("quantization, no quantum", papers, 10), seed)
    assert any("Quantization" in t for t in quantization)


def test_no_interests_means_trending_only(seed):
    assert for_you("", list(seed.values()), 10) == []
    assert for_you("no quantum", list(seed.values()), 10) == []


def test_categories_and_favourite_authors_match(db):
    fetch_and_ingest("arxiv", path=fixture_path("arxiv_api_atom_10entries.xml"))
    papers = list(Paper.objects.all())
    in_category = [p for p in papers if "q-bio.NC" in p.categories]
    picks = for_you("q-bio.NC", papers, 10)
    assert {p.paper_id for p in picks} == {p.pk for p in in_category}
    assert all(p.reason == "category: q-bio.NC" for p in picks)

    author = in_category[0].authors[0]
    picks = for_you(f"author: {author.upper()}", papers, 10)
    assert picks and all(author in Paper.objects.get(pk=p.paper_id).authors for p in picks)
    assert picks[0].reason == f"author: {author.upper()}"


def test_rejected_never_and_approved_or_featured_boosted(seed):
    papers = list(seed.values())
    first, second = for_you("continual learning", papers, 2)
    Paper.objects.filter(pk=first.paper_id).update(moderation=Moderation.REJECTED)
    Paper.objects.filter(pk=second.paper_id).update(featured=True)
    papers = list(Paper.objects.all())
    picks = for_you("continual learning", papers, 10)
    assert first.paper_id not in {p.paper_id for p in picks}
    assert picks[0].paper_id == second.paper_id and picks[0].score > second.score


def test_excluded_papers_are_left_out(seed):
    papers = list(seed.values())
    best = for_you("model merging", papers, 1)[0]
    assert best.paper_id not in {p.paper_id for p in for_you("model merging", papers, 10, exclude={best.paper_id})}


def test_many_readers_at_once_match_each_readers_own_list(seed):
    papers = list(seed.values())
    readers = [
        Subscriber(pk=1, email="a@example.com", interests="continual learning", papers_per_digest=3),
        Subscriber(pk=2, email="b@example.com", interests="speech, no voice", papers_per_digest=5),
        Subscriber(pk=3, email="c@example.com", interests="", papers_per_digest=5),
        Subscriber(pk=4, email="d@example.com", interests="model merging, multi-task learning", papers_per_digest=4),
    ]
    best_merging = for_you("model merging", papers, 1)[0].paper_id
    together = for_you_many(readers, papers, {4: {best_merging}})
    assert len(together[1]) == 3 and together[3] == []
    for reader in readers[:3]:
        assert together[reader.pk] == for_you(reader.interests, papers, reader.papers_per_digest)
    assert together[4] == for_you(readers[3].interests, papers, 4, exclude={best_merging})
    assert together[2] and all("voice" not in str(seed_text(p.paper_id)) for p in together[2])


def seed_text(paper_id: int) -> str:
    paper = Paper.objects.get(pk=paper_id)
    return f"{paper.title} {paper.abstract}".lower()


def test_subscribers_with_hostile_interests_do_not_break_a_chunk(seed):
    papers = list(seed.values())
    readers = [
        SimpleNamespace(pk=n, interests=text, categories=[], papers_per_digest=10)
        for n, text in enumerate(["\x00\x01", "'; DROP TABLE papers; --", "a" * 50_000, "é" * 300, "no " * 100])
    ]
    picks = for_you_many(readers, papers, {})
    assert set(picks) == {0, 1, 2, 3, 4}
    assert all(isinstance(p, list) for p in picks.values())


def test_each_reader_gets_at_most_their_papers_per_digest(seed):
    papers = list(seed.values())
    readers = [
        Subscriber(pk=n, email=f"r{n}@example.com", interests="continual learning", papers_per_digest=n)
        for n in (0, 1, 7)
    ]
    picks = for_you_many(readers, papers, {})
    assert [len(picks[n]) for n in (0, 1, 7)] == [0, 1, 7]
    assert for_you_many(readers[:1], papers, {}) == {0: []}


def test_readers_who_share_a_text_across_chunks_get_what_each_would_get_alone(seed, monkeypatch):
    monkeypatch.setattr(foryou, "RANK_CHUNK_SIZE", 3)  # readers of one text land in different chunks
    papers = list(seed.values())
    texts = ["continual learning", "speech, no voice", "model merging, Model Merging", "", "continual learning"]
    readers = [
        SimpleNamespace(pk=n, interests=texts[n % len(texts)], categories=[], papers_per_digest=2 + n % 4)
        for n in range(11)
    ]
    best = for_you("continual learning", papers, 1)[0].paper_id
    exclude = {0: {best}, 5: set(), 9: {best}}
    together = for_you_many(readers, papers, exclude)
    for reader in readers:
        alone = for_you_many([reader], papers, {reader.pk: exclude.get(reader.pk, set())})
        assert together[reader.pk] == alone[reader.pk], reader
    assert best not in {p.paper_id for p in together[0]} and best in {p.paper_id for p in together[4]}


def test_shared_category_and_author_wishes_keep_each_readers_own_words(db):
    fetch_and_ingest("arxiv", path=fixture_path("arxiv_api_atom_10entries.xml"))
    papers = list(Paper.objects.all())
    paper = next(p for p in papers if "q-bio.NC" in p.categories)
    author = paper.authors[0]
    readers = [
        SimpleNamespace(pk=1, interests="q-bio.NC", categories=[], papers_per_digest=10),
        SimpleNamespace(pk=2, interests="", categories=["Q-BIO.NC"], papers_per_digest=10),
        SimpleNamespace(pk=3, interests=f"author: {author.upper()}", categories=[], papers_per_digest=10),
        SimpleNamespace(pk=4, interests=f"by: {author.lower()}", categories=[], papers_per_digest=10),
    ]
    picks = for_you_many(readers, papers, {})
    assert paper.pk in {p.paper_id for p in picks[1]} and picks[1] == picks[2]
    assert {p.reason for p in picks[1]} == {"category: q-bio.NC"}  # the paper's spelling of its category
    assert paper.pk in {p.paper_id for p in picks[3]}
    assert [p.paper_id for p in picks[3]] == [p.paper_id for p in picks[4]]
    assert {p.reason for p in picks[3]} == {f"author: {author.upper()}"}
    assert {p.reason for p in picks[4]} == {f"author: {author.lower()}"}


def test_best_first_orders_by_reader_then_score_then_position():
    """The packed sort key gives what a stable sort by (reader, -score) gives, ties and signs included."""
    rng = np.random.default_rng(7)
    n_rows, n_papers = 300, 700
    rows = rng.integers(0, n_rows, 5_000)
    positions = rng.integers(0, n_papers, 5_000)
    scores = rng.choice(np.array([-2.5, -0.0, 0.0, 1e-30, 0.1, 0.1, 0.35, 7.0, 1e30], dtype=np.float32), 5_000)
    scores = (scores + rng.integers(0, 3, 5_000).astype(np.float32) * 0.25).astype(np.float32)
    got = best_first(rows, positions, scores, n_rows, n_papers)
    order = np.lexsort((positions, -scores.astype(np.float64), rows))
    assert [a.tolist() for a in got] == [rows[order].tolist(), positions[order].tolist(), scores[order].tolist()]


def test_negative_phrases_match_in_any_script_and_case(seed):
    """A phrase with a stop word is searched in the text itself; texts that are not ASCII are searched too
    ("K", the Kelvin sign, is a "k" to a case-blind reader)."""
    papers = list(seed.values())
    target = next(p for p in papers if "reinforcement learning" in p.abstract.lower())
    target.abstract = "We study THE \u212anot problem in reinforcement learning. " + target.abstract
    shown = for_you("reinforcement learning", papers, 50)
    assert target.pk in {p.paper_id for p in shown}
    hidden = for_you("reinforcement learning, no the knot", papers, 50)
    assert hidden and target.pk not in {p.paper_id for p in hidden}


def test_picks_read_back_the_same_each_time_and_as_a_mapping(seed):
    papers = list(seed.values())
    readers = [
        SimpleNamespace(pk=n, interests=text, categories=[], papers_per_digest=3)
        for n, text in ((7, "continual learning"), (3, ""), (5, "speech synthesis"))
    ]
    picks = for_you_many(readers, papers, {})
    assert list(picks) == [7, 3, 5] and len(picks) == 3 and 4 not in picks and picks.get(4) is None
    assert picks[7] == picks[7] and picks[7] is not picks[7]  # each reading is the reader's own list
    assert picks[3] == [] and len(picks[7]) == 3 and picks[5]
    assert dict(picks) == {7: picks[7], 3: [], 5: picks[5]}
    assert all(isinstance(p, ranking.Pick) and isinstance(p.score, float) for p in picks[7])


def test_a_candidate_changed_in_place_is_ranked_afresh(seed):
    """The candidate index and the topic rows kept with it belong to the exact candidates they were built from."""
    papers = list(seed.values())
    first = for_you("continual learning", papers, 5)[0].paper_id
    top = next(p for p in papers if p.pk == first)
    top.moderation = Moderation.REJECTED
    assert first not in {p.paper_id for p in for_you("continual learning", papers, 5)}
    other = next(p for p in papers if "continual" not in f"{p.title} {p.abstract}".lower())
    assert other.pk not in {p.paper_id for p in for_you("continual learning", papers, 79)}
    other.abstract += " We study continual learning: continual learning without forgetting."
    assert other.pk in {p.paper_id for p in for_you("continual learning", papers, 79)}
