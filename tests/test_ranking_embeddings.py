"""The optional sentence-embedding model: plain-words interests find papers in their field's words; embeddings
are computed once at ingest and stored; the setting chooses, and TF-IDF takes over without the model."""

import numpy as np
import pytest

from papers import embeddings
from papers.ingest import fetch_and_ingest
from papers.models import Paper
from papers.ranking import for_you
from tests.conftest import require
from tests.ranking_helpers import seed_papers

pytestmark = pytest.mark.django_db
IMITATION = {
    "Multi-Stage Cable Routing through Hierarchical Imitation Learning",
    "Video PreTraining (VPT): Learning to Act by Watching Unlabeled Online Videos",
    "Inverse Dynamics Pretraining Learns Good Representations for Multitask Imitation",
}


@pytest.fixture
def model(settings) -> None:
    """The model (`make ml`); skips without it, fails under CI=true."""
    require(embeddings.installed(), "the sentence-embedding model is not installed: make ml")
    settings.RANKING_EMBEDDINGS = "on"


@pytest.fixture
def seed() -> list[Paper]:
    return seed_papers()


def test_plain_words_find_papers_that_never_use_them(model, seed, settings):
    by_id = {p.pk: p for p in seed}
    picks = for_you("teaching robots by showing them", seed, 10)
    found = {by_id[p.paper_id].title for p in picks}
    assert len(found & IMITATION) >= 2, found
    by_title = {p.title: p for p in seed}
    assert all("teaching" not in f"{t} {by_title[t].abstract}".lower() for t in IMITATION)
    assert {p.reason for p in picks} == {"matches: teaching robots by showing them"}
    # Word matching alone finds fewer (only where a paper says "robot"): that is why the model is there.
    settings.RANKING_EMBEDDINGS = "off"
    words_only = {by_id[p.paper_id].title for p in for_you("teaching robots by showing them", seed, 10)}
    assert len(words_only & IMITATION) < len(found & IMITATION)


def test_embeddings_are_computed_at_ingest_and_stored_as_float32(model):
    fetch_and_ingest("hf", offline=True)
    papers = list(Paper.objects.all())
    assert papers and all(p.embedding is not None for p in papers)
    vectors = np.stack([np.frombuffer(bytes(p.embedding), dtype=np.float32) for p in papers])
    assert vectors.shape == (len(papers), embeddings.DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    # The stored vector is the model's reading of the paper's own text.
    paper = papers[0]
    expected = embeddings.encode([embeddings.paper_text(paper.title, paper.abstract)])[0]
    assert np.allclose(vectors[0], expected, atol=1e-5)


def test_papers_stored_before_the_model_get_their_embedding_when_ranked(model, settings, seed):
    assert all(p.embedding is None for p in seed)  # bulk-created: ingest's hook never ran
    for_you("continual learning", seed, 3)
    assert Paper.objects.filter(embedding=None).count() == 0


def test_off_stores_nothing_and_ranks_by_words(settings):
    settings.RANKING_EMBEDDINGS = "off"
    fetch_and_ingest("hf", offline=True)
    assert not Paper.objects.exclude(embedding=None).exists()


def test_auto_without_the_model_falls_back_and_on_without_it_refuses(settings, monkeypatch, seed):
    monkeypatch.setattr(embeddings, "installed", lambda: False)
    settings.RANKING_EMBEDDINGS = "auto"
    assert not embeddings.enabled()
    assert for_you("continual learning", seed, 3)
    settings.RANKING_EMBEDDINGS = "on"
    with pytest.raises(embeddings.ModelUnavailable):
        embeddings.enabled()


def test_a_model_that_fails_to_load_means_tfidf_in_auto_mode(settings, monkeypatch, seed, caplog):
    def broken() -> None:
        raise OSError("model.safetensors: unexpected end of file")

    monkeypatch.setattr(embeddings, "installed", lambda: True)
    monkeypatch.setattr(embeddings, "model", broken)
    embeddings.model_loads.cache_clear()
    try:
        settings.RANKING_EMBEDDINGS = "auto"
        assert not embeddings.enabled()
        assert "does not load" in caplog.text
        assert [p.reason for p in for_you("continual learning", seed, 2)] == ["matches: continual learning"] * 2
    finally:
        embeddings.model_loads.cache_clear()


def test_ingest_embeds_a_paper_again_only_when_its_words_change(model):
    fetch_and_ingest("hf", offline=True)
    first, second = Paper.objects.order_by("pk")[:2]
    marker = embeddings.to_bytes(np.full(embeddings.DIMENSIONS, 1 / np.sqrt(embeddings.DIMENSIONS)))
    # New votes arrive for one paper, a corrected title for the other: ingest brings the source's values back.
    Paper.objects.filter(pk=first.pk).update(embedding=marker, upvotes=first.upvotes + 1)
    Paper.objects.filter(pk=second.pk).update(embedding=marker, title=second.title + " (draft)")
    run = fetch_and_ingest("hf", offline=True, force=True)
    assert run.updated == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert bytes(first.embedding) == marker  # votes do not move a vector: no model call
    assert bytes(second.embedding) != marker  # new words: embedded again, from the words it has now
    expected = embeddings.encode([embeddings.paper_text(second.title, second.abstract)])[0]
    assert np.allclose(embeddings.from_bytes(second.embedding), expected, atol=1e-3)
