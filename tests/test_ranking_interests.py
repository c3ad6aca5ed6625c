"""Reading a reader's free-text interests: topics, arXiv categories, favourite authors, negative keywords."""

import pytest

from papers.interests import (
    MAX_TOPICS,
    Item,
    Kind,
    author_key,
    negative_pattern,
    parse_interests,
    read_interests,
    read_item,
)


def test_one_interest_per_line_comma_or_semicolon():
    parsed = parse_interests("continual learning, speech synthesis\nrobots; cs.LG; stat.ML")
    assert parsed.topics == ("continual learning", "speech synthesis", "robots")
    assert parsed.categories == {"cs.LG", "stat.ML"}
    assert parsed.wants_something


def test_authors_and_negatives_are_recognised():
    parsed = parse_interests("author: Léa Dupont, by: Yoshua Bengio, no quantum, -crypto, without medical imaging")
    assert parsed.author_names == ("Léa Dupont", "Yoshua Bengio")
    assert parsed.authors == ("lea dupont", "yoshua bengio")
    assert parsed.negatives == ("quantum", "crypto", "medical imaging")
    assert parsed.topics == ()


def test_subscriber_categories_join_the_typed_ones():
    assert parse_interests("cs.CL", ("cs.LG", " ")).categories == {"cs.CL", "cs.LG"}


@pytest.mark.parametrize(
    "text",
    ["", " , ;\n\n,", "no", "author:", "-", "\x00", "   "],
)
def test_empty_or_hostile_text_gives_no_interests(text):
    parsed = parse_interests(text)
    assert not parsed.wants_something


def test_words_that_look_like_categories_stay_topics():
    # A reader's "robots" or "e.g. diffusion" is not an arXiv category; "hep-th" and "q-bio.NC" are.
    parsed = parse_interests("robots, large-scale training, hep-th, q-bio.NC")
    assert parsed.topics == ("robots", "large-scale training")
    assert parsed.categories == {"hep-th", "q-bio.NC"}


def test_pasted_walls_of_text_are_capped():
    parsed = parse_interests(", ".join(f"topic {n}" for n in range(500)) + ", " + "x" * 100_000)
    assert len(parsed.topics) == MAX_TOPICS
    assert all(len(t) <= 200 for t in parsed.topics)


def test_duplicate_topics_are_read_once():
    assert parse_interests("Speech, speech,  speech ").topics == ("Speech",)


def test_negative_pattern_matches_whole_words_and_plurals_only():
    pattern = negative_pattern(["quantum", "robot arm"])
    assert pattern.search("Machine Learning for quantum chemistry")
    assert pattern.search("two Robot  Arms in a kitchen")
    assert not pattern.search("quantization-aware training")
    assert negative_pattern([]) is None


def test_author_key_ignores_accents_case_and_spacing():
    assert author_key("  Léa   DUPONT ") == author_key("lea dupont") == "lea dupont"


def test_each_piece_is_read_on_its_own():
    # The pieces of "continual learning, cs.LG; author: Léa Dupont\nno quantum computing, ;"
    assert read_item(" Continual  Learning") == Item(Kind.TOPIC, "Continual Learning", "continual learning")
    assert read_item(" cs.LG") == Item(Kind.CATEGORY, "cs.LG")
    assert read_item(" author: Léa Dupont") == Item(Kind.AUTHOR, "lea dupont", "Léa Dupont")
    assert read_item("no Quantum  Computing") == Item(Kind.NEGATIVE, "quantum computing")
    assert read_item(" ") is None and read_item("no") is None


def test_a_send_reads_the_same_interests_as_one_reader_does():
    text = "Continual learning, cs.LG; author: Léa Dupont\nno quantum, continual LEARNING, speech synthesis"
    assert read_interests(text, ("stat.ML",)) == parse_interests(text, ("stat.ML",))
    assert read_interests(text).topics == ("Continual learning", "speech synthesis")
    assert parse_interests(text) is parse_interests(text)  # one reader at a time: kept
