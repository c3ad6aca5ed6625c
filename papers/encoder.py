"""The sentence-embedding model at run time, without torch: onnxruntime over the int8 ONNX file that `make ml`
builds from the packaged all-MiniLM-L6-v2 weights (papers/minilm_onnx.py), and the model's own WordPiece
tokenizer (tokenizers, from the same package's tokenizer.json). Imports onnxruntime, tokenizers and numpy only.
"""

import os
from pathlib import Path

import numpy as np

# Word pieces read per text. A title and the abstract's first sentences say what a paper is about; on the
# labelled evaluation 128 keeps the quality of the model's 256 (README, "For you") at about half the work.
MAX_TOKENS = 128
# Texts per model call: sorted by length first, so that a batch pads to its own longest text, not the day's.
BATCH = 32


def threads() -> int:
    """One intra-op thread per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class OnnxEncoder:
    """Unit-length sentence vectors, float32, one row per text."""

    def __init__(self, model: Path, tokenizer: Path, max_tokens: int = MAX_TOKENS) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads()
        options.inter_op_num_threads = 1
        # The arena would keep the largest batch's buffers for the life of the worker.
        options.enable_cpu_mem_arena = False
        self.session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.dimensions = self.session.get_outputs()[0].shape[1]

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(texts), BATCH):
            at = by_length[start : start + BATCH]
            batch = self.tokenizer.encode_batch([texts[i] for i in at])
            ids = np.array([b.ids for b in batch], dtype=np.int64)
            mask = np.array([b.attention_mask for b in batch], dtype=np.int64)
            out[at] = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out
