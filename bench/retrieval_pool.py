"""The judging pool of each labelled profile: what a person reads to label it.

    .venv/bin/python -m bench.retrieval_pool 3 7    # pools of profiles 3 and 7 (0-based), for reading
    .venv/bin/python -m bench.retrieval_pool --sizes  # pool size of every profile

A profile's pool is the union of the top POOL_DEPTH papers of TF-IDF cosine, BM25 and MiniLM cosine, every paper
its own regular expression matches (written for the profile, up to REGEX_DEPTH by BM25), and the top
CATEGORY_DEPTH of its arXiv categories by MiniLM. Papers print in id order with no score, so the reader judges the
text, not a retriever's opinion of it.
"""

import json
import os
import re
import sys
import textwrap

import numpy as np

POOL_DEPTH = 25
REGEX_DEPTH = 40
CATEGORY_DEPTH = 15
ABSTRACT_CHARS = 280  # the abstract's opening printed beside the title; `--full ID` prints the rest


def pool(spec: dict) -> list[str]:
    from bench.retrieval_data import corpus
    from bench.retrieval_methods import bm25_scores, minilm_scores, order, tfidf_scores

    docs = corpus()
    interests, how = spec["interests"], spec.get("pool", {})
    found: set[str] = set()
    for scores in (tfidf_scores(interests), bm25_scores(interests), minilm_scores(interests)):
        found.update(order(scores)[:POOL_DEPTH])
    bm25 = bm25_scores(interests)
    if how.get("regex"):
        pattern = re.compile(how["regex"], re.IGNORECASE)
        hits = np.array([bool(pattern.search(f"{d.title}\n{d.abstract}")) for d in docs])
        found.update(order(np.where(hits, bm25 + 1, 0.0))[: min(REGEX_DEPTH, int(hits.sum()))])
    wanted = set(how.get("categories", ()))
    if wanted:
        inside = np.array([bool(wanted & set(d.categories)) for d in docs])
        cosine = minilm_scores(interests) + 2  # positive, so that the papers outside stay last
        found.update(order(np.where(inside, cosine, 0.0))[: min(CATEGORY_DEPTH, int(inside.sum()))])
    return sorted(found)


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.config.settings")
    import django

    django.setup()
    from bench.retrieval_data import LABELS, corpus

    specs = json.loads(LABELS.read_text())["profiles"]
    by_id = {d.id: d for d in corpus()}
    if argv[:1] == ["--full"]:
        for i in argv[1:]:
            print(f"[{i}] {by_id[i].title}\n{textwrap.fill(by_id[i].abstract, 140)}\n")
        return 0
    if argv == ["--sizes"]:
        for n, spec in enumerate(specs):
            print(n, len(pool(spec)), len(spec.get("relevant", {})), spec["interests"])
        return 0
    for n in map(int, argv):
        spec = specs[n]
        ids = pool(spec)
        print(f"=== {n} [{spec['kind']}] {spec['interests']}  ({len(ids)} pooled)")
        for i in ids:
            d = by_id[i]
            text = d.abstract if len(d.abstract) <= ABSTRACT_CHARS else d.abstract[:ABSTRACT_CHARS] + "…"
            print(f"[{i}] {d.title} ({' '.join(d.categories[:2])}) :: {' '.join(text.split())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
