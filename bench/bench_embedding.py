"""The sentence-embedding model in a worker: memory with the model loaded and a day's papers embedded, and papers
embedded per second at ingest, for the runtime the product uses (int8 ONNX, no torch) beside the torch runtime of
the same weights measured in the same run (when torch is installed: requirements-torch.txt).

Each runtime runs in its own fresh process (bench/embedding_worker.py), so that one's memory is not the other's.
Targets (issue "For you understands what readers mean"): under 300 MB per worker process with the model loaded;
ingest embedding at least 5x the torch runtime's rate (which was ~23 papers/s).
"""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from django.conf import settings

from bench import Row

DAY = 300  # a busy day's new papers across the configured arXiv categories
TARGET_MB = 300.0
TARGET_SPEEDUP = 5.0
ROOT = Path(__file__).resolve().parent.parent


def measure(env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.embedding_worker", str(DAY)],
        cwd=ROOT,
        env=os.environ | env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(size: int) -> list[Row]:
    if not Path(settings.RANKING_EMBEDDINGS_MODEL).is_file():
        return [Row("embedding", "ONNX model not built (make ml): not measured", 0.0)]
    onnx = measure({})
    rows = [
        Row("embedding", "worker RSS before loading the model, MB", onnx["rss_before_mb"]),
        Row("embedding", "worker RSS, model loaded (ONNX int8), MB", onnx["rss_loaded_mb"]),
        Row(
            "embedding",
            f"worker RSS, + {DAY} papers embedded, MB",
            onnx["rss_after_mb"],
            "target",
            TARGET_MB,
            f"< {TARGET_MB:.0f} MB",
            onnx["rss_after_mb"] < TARGET_MB,
        ),
    ]
    has_torch = importlib.util.find_spec("torch") and importlib.util.find_spec("sentence_transformers")
    if has_torch:
        with tempfile.TemporaryDirectory() as tmp:
            torch = measure({"RANKING_EMBEDDINGS_MODEL": str(Path(tmp) / "none.onnx")})
        rows += [
            Row("embedding", "torch runtime: RSS before loading, MB", torch["rss_before_mb"]),
            Row("embedding", f"torch runtime: RSS, + {DAY} papers embedded, MB", torch["rss_after_mb"]),
        ]
    rate = onnx["papers_per_s"]
    if has_torch:
        rows.append(
            Row(
                "embedding",
                "ingest: papers embedded/s (ONNX int8)",
                rate,
                "torch runtime, papers/s",
                torch["papers_per_s"],
                f">= {TARGET_SPEEDUP:.0f}x torch",
                rate >= TARGET_SPEEDUP * torch["papers_per_s"],
            )
        )
    else:
        rows.append(Row("embedding", "ingest: papers embedded/s (ONNX int8)", rate, "torch not installed"))
    rows.append(Row("embedding", "model load time (ONNX int8), s", onnx["load_s"]))
    return rows
