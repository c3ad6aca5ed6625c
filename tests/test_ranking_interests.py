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
    read_many,
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


MANY_TEXTS = [
    "continual learning, speech synthesis\nrobots; cs.LG; stat.ML",
    "Speech, speech,  speech ; SPEECH synthesis, speech synthesis",
    "author: Léa Dupont, by: lea dupont, author: Yoshua Bengio, author: ???",
    "no quantum, -crypto, without medical imaging, no quantum, no, -",
    ", ".join(f"topic {n}" for n in range(30)),
    "robots, large-scale training, hep-th, q-bio.NC, CS.lg",
    "",
    None,
    " , ;\n\n,",
    "\x00\x01, ok then",
    "a,\x00,b",  # the character read_many joins texts with, as a piece of its own
    "'; DROP TABLE papers; --",
    "é" * 300,
    "continual learning",
]


@pytest.mark.parametrize("with_separator_text", [False, True])
def test_many_readers_are_read_as_each_alone(with_separator_text):
    """Readers read together (ranking a send) get what each gets read alone (a preview, one reader's trending
    section): no reader's pieces leak into another's, whatever the texts hold."""
    texts = [t for t in MANY_TEXTS if with_separator_text or not (t and "\x00" in t)]
    chosen = [(), ("cs.LG", " "), ("Q-BIO.NC",), (), ("", "stat.ML")] * 3
    texts, chosen = texts * 2, (chosen * 6)[: 2 * len(texts)]
    many = read_many(texts, chosen)
    for reader, (text, categories) in enumerate(zip(texts, chosen, strict=True)):
        alone = read_interests(text or "", categories)
        topics = many.topics[reader, : many.topic_counts[reader]]
        assert tuple(many.topic_names[t] for t in topics) == alone.topics, text
        assert many.categories.get(reader, frozenset()) == alone.categories, text
        assert many.authors.get(reader, ()) == alone.author_names, text
        assert many.negatives.get(reader, ()) == alone.negatives, text
        assert many.wants[reader] == alone.wants_something, text
    assert len(many.topic_names) == len(set(many.topic_names))  # a topic's row is shared by its readers
    assert (many.topics[many.topic_counts == 0] == len(many.topic_names)).all()  # padding is the "no topic" row
