"""One worker-like process for bench_embedding: Django set up and papers imported, then the sentence-embedding
model loaded by the product's code (papers.embeddings) and a day's papers embedded as ingest embeds them.

    python -m bench.embedding_worker PAPERS     # the runtime papers.embeddings chooses (RANKING_EMBEDDINGS_MODEL
                                                # pointing at a missing file: the torch runtime)

Prints one JSON line: resident memory before loading, after loading, after embedding; papers embedded per second.
"""

import json
import os
import sys
import time


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def main(papers: int) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.config.settings")
    os.environ["RANKING_EMBEDDINGS"] = "on"
    import django

    django.setup()
    from bench.retrieval_data import corpus
    from papers import embeddings, ranking  # noqa: F401  (what a worker has imported before it ranks)

    texts = [embeddings.paper_text(d.title, d.abstract) for d in corpus()[:papers]]
    before = rss_mb()
    started = time.perf_counter()
    embeddings.model()
    embeddings.encode(["warming up", "the first call sets up the session"])
    loaded, load_seconds = rss_mb(), time.perf_counter() - started
    started = time.perf_counter()
    embeddings.encode(texts)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "runtime": embeddings.runtime(),
                "rss_before_mb": before,
                "rss_loaded_mb": loaded,
                "rss_after_mb": rss_mb(),
                "load_s": load_seconds,
                "papers": len(texts),
                "papers_per_s": len(texts) / seconds,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
