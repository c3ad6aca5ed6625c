"""The labelled retrieval evaluation: its corpus, its profiles and labels, and the metrics read on them.

Corpus: bench/retrieval_corpus.jsonl, 1,837 real arXiv abstracts (CC0 metadata) with the `source` each was read
from (`repo@commit:path` of the shared arXiv corpus, or the seed page fixture). Labels:
bench/retrieval_labels.json, interest profiles as readers type them with graded relevance (2 clearly wanted,
1 related, 0 unlisted), judged by reading the pooled papers; its "about" says how the pool was made.
"""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "retrieval_corpus.jsonl"
LABELS = HERE / "retrieval_labels.json"
KINDS = ("keywords", "paraphrase", "technical")
K = 10  # a digest's "For you" section shows ten papers


@dataclass(frozen=True)
class Doc:
    id: str
    title: str
    abstract: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Profile:
    interests: str
    kind: str
    relevant: dict[str, int]  # paper id → grade (1 or 2)


@cache
def corpus() -> tuple[Doc, ...]:
    rows = (json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip())
    return tuple(Doc(r["id"], r["title"], r["abstract"], tuple(r["categories"])) for r in rows)


def profiles() -> list[Profile]:
    data = json.loads(LABELS.read_text())
    return [Profile(p["interests"], p["kind"], {k: int(v) for k, v in p["relevant"].items()}) for p in data["profiles"]]
