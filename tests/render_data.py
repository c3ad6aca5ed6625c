"""Real papers for rendering tests and the render benchmark: the feed captures in tests/fixtures/ (with their
authors, votes, AI summaries and LaTeX) and the 79-paper seed corpus, ingested the way production ingests."""

from pathlib import Path

import pytest

from papers import caches
from papers.ingest import fetch_and_ingest
from papers.models import Paper

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_SOURCES = [
    ("hf", "hf_daily_papers_5items.json"),
    ("hf", "hf_daily_papers_3items.json"),
    ("arxiv:cs.AI", "arxiv_rss2_cs.AI_3items.xml"),
    ("arxiv:cs.LG", "arxiv_rss2_cs.LG_3items.xml"),
    ("arxiv:cs.CL", "arxiv_rss2_cs.CL_3items.xml"),
    ("arxiv:cs.AI", "arxiv_rss_atom_cs.AI_7items.xml"),
    ("arxiv:hep-ex", "arxiv_rss1_rdf_hep-ex.xml"),
    ("arxiv:cs.LG", "arxiv_rss2_combined_4items.xml"),
    ("json", "seed_papers.json"),
]


def ingest_fixture_papers() -> list[Paper]:
    """Every fixture paper in the database; HF papers (with votes) first, then by id."""
    for spec, name in FIXTURE_SOURCES:
        fetch_and_ingest(spec, path=FIXTURES / name)
    return sorted(Paper.objects.all(), key=lambda p: (-(p.upvotes or -1), p.pk))


# Fixtures for the rendering tests; a test module uses them by importing the *_fixture functions.
@pytest.fixture(name="fresh_render_caches")
def fresh_render_caches_fixture():
    """Paper views and digest parts are cached per process; a test starts and ends without them."""
    caches.clear_all()
    yield
    caches.clear_all()


@pytest.fixture(name="papers")
def papers_fixture(db, fresh_render_caches) -> list[Paper]:
    return ingest_fixture_papers()
