"""Per-process caches stay bounded, and one call forgets everything a process keeps of the database."""

from papers import caches
from papers.interests import parse_interests
from papers.ranking import candidate_index, clear_caches
from tests.ranking_helpers import seed_papers


def test_a_full_cache_forgets_the_least_recently_used_entry_first():
    cache = caches.Lru("test: letters", 2, registered=False)
    cache.update({"a": 1, "b": 2})
    assert cache.get("a") == 1  # "a" is now the more recent
    cache.put("c", 3)
    assert cache.get_many(["a", "b", "c"]) == {"a": 1, "c": 3}
    assert len(cache) == 2


def test_clear_all_forgets_registered_caches_and_leaves_the_others():
    registered = caches.Lru("test: registered", 4)
    own = caches.Lru("test: owned by something else", 4, registered=False)
    registered.put(1, "one")
    own.put(1, "one")
    caches.clear_all()
    assert registered.get(1) is None and own.get(1) == "one"


def test_clear_caches_forgets_candidate_indexes_and_parsed_interests(db):
    papers = seed_papers()
    index = candidate_index(papers)
    assert candidate_index(papers) is index  # the chunks of a send share one index
    parsed = parse_interests("continual learning")
    clear_caches()
    assert candidate_index(papers) is not index
    assert parse_interests("continual learning") is not parsed
