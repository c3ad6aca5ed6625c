"""The labelled retrieval evaluation stays usable: labels name real corpus papers, the three kinds of wording stay
balanced, and the corpus's own acronyms spell out what a reader typed."""

from collections import Counter

from bench.retrieval_data import KINDS, corpus, profiles
from bench.retrieval_research import expand
from papers.ranking.expansion import long_form

MIN_PAPERS = 1_000
MIN_PROFILES = 40
MIN_RELEVANT, MAX_RELEVANT = 5, 45


def test_labels_name_corpus_papers_with_grades_one_or_two():
    ids = {doc.id for doc in corpus()}
    assert len(ids) == len(corpus()) >= MIN_PAPERS
    for profile in profiles():
        assert set(profile.relevant) <= ids, profile.interests
        assert set(profile.relevant.values()) <= {1, 2}, profile.interests
        assert MIN_RELEVANT <= len(profile.relevant) <= MAX_RELEVANT, profile.interests


def test_profiles_are_a_third_of_each_kind():
    kinds = Counter(profile.kind for profile in profiles())
    assert set(kinds) == set(KINDS)
    assert sum(kinds.values()) >= MIN_PROFILES
    assert len(set(kinds.values())) == 1


def test_long_form_is_the_shortest_run_whose_letters_spell_the_acronym():
    assert long_form("message passing with graph neural networks", "GNNs") == "graph neural networks"
    assert long_form("a mixture-of-experts", "MoE") == "mixture-of-experts"
    assert long_form("nothing that matches here", "XYZ") is None


def test_typed_acronyms_are_spelled_out_and_plain_words_are_not():
    assert expand("GNNs") == "GNNs (graph neural networks)"
    assert expand("SSMs like Mamba") == "SSMs like Mamba (state space models)"
    assert expand("it works on apps") == "it works on apps"
    # In more than one paper in twenty: readers and papers both say "AI", nothing to spell out.
    assert expand("AI that writes software") == "AI that writes software"
