""" "For you" reads a topic the way the papers say it: an acronym a reader types finds papers that only spell it out
(from the candidates' own definitions, with or without the model), and with the model the lexical and the
semantic lists are fused by rank. Fixtures: the 79 real seed abstracts plus papers written here."""

import numpy as np
import pytest

from papers import embeddings
from papers.models import Paper
from papers.ranking import candidate_index, for_you
from papers.ranking.expansion import expand
from papers.ranking.topics import RRF_K, reciprocal_ranks
from tests.conftest import require
from tests.ranking_helpers import seed_papers

pytestmark = pytest.mark.django_db
DEFINES = (
    "Message passing with graph neural networks (GNNs) for molecules",
    "We study message passing in graph neural networks (GNNs) on molecular graphs and show that deeper GNNs "
    "over-smooth atom features.",
)
SPELLS_OUT = (
    "Traffic forecasting on road networks",
    "A graph neural network over sensors on a road network forecasts traffic speed an hour ahead; we compare "
    "graph neural networks with recurrent baselines.",
)


@pytest.fixture
def papers() -> list[Paper]:
    seed = seed_papers()
    made = [
        Paper.objects.create(canonical_id=f"made:{i}", title=t, abstract=a)
        for i, (t, a) in enumerate((DEFINES, SPELLS_OUT))
    ]
    return [*seed, *made]


def tfidf_cosine(papers: list[Paper], topic: str, paper: Paper) -> float:
    """What word matching alone (the TF-IDF of the candidates) gives the topic and the paper."""
    index = candidate_index(papers)
    return float((index.vectorizer.transform([topic]) @ index.tfidf.T).toarray()[0, index.position[paper.pk]])


@pytest.mark.parametrize("mode", ["off", "auto"])
def test_an_acronym_finds_papers_that_only_spell_it_out(papers, settings, monkeypatch, mode):
    """Without the model ("off", or "auto" where it is not installed) relevance is lexical, acronyms included."""
    settings.RANKING_EMBEDDINGS = mode
    monkeypatch.setattr(embeddings, "installed", lambda: False)
    spells_out = papers[-1]
    assert "gnn" not in f"{spells_out.title} {spells_out.abstract}".lower()
    assert tfidf_cosine(papers, "GNNs", spells_out) == 0.0  # the words alone never meet
    assert candidate_index(papers).embedding is None
    picks = for_you("GNNs", papers, 5)
    assert {p.paper_id for p in picks} >= {papers[-2].pk, spells_out.pk}
    assert {p.reason for p in picks} == {"matches: GNNs"}


def test_acronyms_are_learnt_from_the_candidates(papers):
    acronyms = candidate_index(papers).acronyms
    assert acronyms["gnn"] == "graph neural networks"
    assert expand("GNNs for chemistry", acronyms) == "GNNs for chemistry (graph neural networks)"
    assert expand("gnns", acronyms) == "gnns"  # typed in lower case: a word, not an acronym


def test_with_the_model_a_paraphrase_finds_what_word_matching_misses(papers, settings):
    require(embeddings.installed(), "the sentence-embedding model is not installed: make ml")
    settings.RANKING_EMBEDDINGS = "on"
    topic = "networks that learn from nodes and edges"
    picks = for_you(topic, papers, 3)
    picked = {p.paper_id for p in picks}
    assert papers[-1].pk in picked or papers[-2].pk in picked
    assert tfidf_cosine(papers, topic, papers[-1]) < 0.08  # below what word matching counts as a match
    settings.RANKING_EMBEDDINGS = "off"
    assert not {p.paper_id for p in for_you(topic, papers, 3)} & {papers[-1].pk, papers[-2].pk}


def test_reciprocal_rank_fusion_counts_ranks_not_scores():
    lexical = np.array([[9.0, 3.0, 0.0, 1.0]], dtype=np.float32)
    dense = np.array([[0.1, 0.5, 0.4, 0.2]], dtype=np.float32)
    ranks = reciprocal_ranks(lexical)
    assert ranks[0].tolist() == pytest.approx([1 / (RRF_K + 1), 1 / (RRF_K + 2), 0.0, 1 / (RRF_K + 3)])
    fused = ranks + reciprocal_ranks(dense, 1.5, every=True)
    # Paper 0 is first on the words and last on meaning; paper 1, second and first, wins: no scale counts.
    assert np.argmax(fused[0]) == 1
