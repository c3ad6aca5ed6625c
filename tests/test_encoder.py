"""The model's run time without torch: the int8 ONNX file `make ml` builds from the packaged weights gives the
vectors sentence-transformers gave for the same texts (tests/fixtures/minilm_reference.json), and
papers.embeddings uses it whenever it is there."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings

from papers import embeddings
from tests.conftest import fixture_path, require

# int8 weights move a vector a little: per-channel quantization keeps it within this cosine of float32's.
MIN_COSINE = 0.98


def built() -> bool:
    return Path(django_settings.RANKING_EMBEDDINGS_MODEL).is_file() and importlib.util.find_spec("onnxruntime")


@pytest.fixture
def reference() -> tuple[list[str], np.ndarray]:
    data = json.loads(fixture_path("minilm_reference.json").read_text())
    return data["texts"], np.array(data["vectors"], dtype=np.float32)


def test_the_onnx_model_gives_the_reference_vectors(reference):
    require(built(), "the ONNX model is not built: make ml")
    from papers.encoder import OnnxEncoder
    from papers.minilm_onnx import model_dir

    texts, expected = reference
    vectors = OnnxEncoder(Path(django_settings.RANKING_EMBEDDINGS_MODEL), model_dir() / "tokenizer.json")(texts)
    assert vectors.shape == expected.shape and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cosine = (vectors * expected).sum(axis=1)
    assert cosine.min() >= MIN_COSINE, cosine
    # Each text is nearest its own reference, not merely near all of them.
    assert (np.argmax(vectors @ expected.T, axis=1) == np.arange(len(texts))).all()
    # The order of a batch changes nothing (batches are sorted by length inside).
    again = OnnxEncoder(Path(django_settings.RANKING_EMBEDDINGS_MODEL), model_dir() / "tokenizer.json")(texts[::-1])
    assert np.allclose(again[::-1], vectors, atol=1e-5)


def test_the_product_encodes_with_onnx_when_the_file_is_there(settings, reference):
    require(built(), "the ONNX model is not built: make ml")
    settings.RANKING_EMBEDDINGS = "on"
    assert embeddings.runtime() == embeddings.ONNX
    texts, expected = reference
    assert ((embeddings.encode(texts) * expected).sum(axis=1) >= MIN_COSINE).all()


def test_without_the_file_the_onnx_runtime_is_not_chosen(settings, tmp_path):
    settings.RANKING_EMBEDDINGS_MODEL = tmp_path / "missing.onnx"
    assert embeddings.runtime() != embeddings.ONNX
