"""Does "For you" learn from ratings? Simulated readers (bench/feedback_readers.json, written before any tuning)
type some of what they want at sign-up; what they really want is one or two labelled profiles of the retrieval
evaluation (bench/retrieval_labels.json). Day after day each gets a digest from a day's papers of the retrieval
corpus ("For you" with their ratings so far, and "Trending today"), and rates what it shows the way the file
says. After 0, 5, 20 and 50 ratings their "For you" is measured on papers held out from every digest
(precision@10 and nDCG@10 against what they really want), against interests alone (the same ranking without
ratings) and trending alone.

    BENCH_ONLY=feedback .venv/bin/python -m bench     # the rows, in the bench table
    .venv/bin/python -m bench.feedback_report          # the table alone
"""

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from bench import Row
from bench.bench_eval import NOW, ndcg_at, precision_at
from bench.retrieval_data import corpus, profiles

READERS = Path(__file__).resolve().parent / "feedback_readers.json"
CHECKPOINTS = (0, 5, 20, 50)
K = 10  # the "For you" section's length, and what the figures read
TRENDING = 5  # the trending section's length
HELD_OUT = 400  # papers no digest shows: the test set
PAPERS_PER_DAY = 60  # a day's candidates
SPLIT_SEED = 17
METHODS = ("learned", "interests alone", "trending alone")
METRICS = {"P@10": precision_at, "nDCG@10": ndcg_at}


@dataclass
class Reader:
    number: int
    typed: str
    wants: dict[int, int]  # paper pk → grade
    kind: str
    rated: list[tuple[int, int]] = field(default_factory=list)  # (paper pk, +1/-1), in the order given

    def rate(self, pk: int) -> int:
        """+1 for a paper they want; -1 for half the others (a fixed coin per reader and paper); 0 otherwise."""
        if self.wants.get(pk, 0) > 0:
            return 1
        return -1 if hashlib.sha256(f"{self.number}:{pk}".encode()).digest()[0] % 2 == 0 else 0


def papers():
    from bench.bench_retrieval import candidate_papers

    return candidate_papers(with_vectors=False)


def readers() -> list[Reader]:
    labelled = profiles()
    pk = {doc.id: i + 1 for i, doc in enumerate(corpus())}
    out = []
    for number, spec in enumerate(json.loads(READERS.read_text())["readers"]):
        wants: dict[int, int] = {}
        for profile in spec["hidden"]:
            for doc_id, grade in labelled[profile].relevant.items():
                wants[pk[doc_id]] = max(wants.get(pk[doc_id], 0), grade)
        out.append(Reader(number, spec["typed"], wants, spec["kind"]))
    return out


def split(all_papers: Sequence) -> tuple[list, list[list]]:
    """(held-out papers, the days' candidates), the same on every run."""
    shuffled = list(all_papers)
    random.Random(SPLIT_SEED).shuffle(shuffled)
    rest = shuffled[HELD_OUT:]
    return shuffled[:HELD_OUT], [rest[i : i + PAPERS_PER_DAY] for i in range(0, len(rest), PAPERS_PER_DAY)]


def for_you(reader: Reader, candidates: Sequence, ratings: list[tuple[int, int]], by_pk: dict, exclude=()) -> list:
    from papers.ranking import for_you as rank

    ids = [pk for pk, _ in reversed(ratings)]
    rated = (ids, [v for _, v in reversed(ratings)], {pk: by_pk[pk] for pk in ids}) if ratings else None
    return [pick.paper_id for pick in rank(reader.typed, candidates, K, exclude=exclude, rated=rated)]


def simulate(people: list[Reader], days: list[list], by_pk: dict) -> None:
    """Each day, each reader's digest from that day's papers; they rate what it shows, up to the last checkpoint."""
    from papers.ranking import rank_trending

    enough = CHECKPOINTS[-1]
    for day in days:
        trending = [p.pk for p in rank_trending(day, TRENDING, now=NOW)]
        for reader in people:
            if len(reader.rated) >= enough:
                continue
            shown = for_you(reader, day, reader.rated, by_pk, exclude=trending) + trending
            seen = {pk for pk, _ in reader.rated}
            for pk in shown:
                value = reader.rate(pk)
                if value and pk not in seen and len(reader.rated) < enough:
                    reader.rated.append((pk, value))


def measure(people: list[Reader], held_out: list, by_pk: dict) -> dict[tuple[str, int], dict[str, float]]:
    """{(method, ratings): {metric: mean over readers}} on the held-out papers."""
    from papers.ranking import rank_trending

    trending = [p.pk for p in rank_trending(held_out, K, now=NOW)]
    held = {p.pk for p in held_out}
    sums: dict[tuple[str, int], dict[str, float]] = {}
    for reader in people:
        relevant = {pk: grade for pk, grade in reader.wants.items() if pk in held}
        plain = for_you(reader, held_out, [], by_pk)
        for k in CHECKPOINTS:
            lists = {
                "learned": for_you(reader, held_out, reader.rated[:k], by_pk),
                "interests alone": plain,
                "trending alone": trending,
            }
            for method, ranked in lists.items():
                row = sums.setdefault((method, k), dict.fromkeys(METRICS, 0.0))
                for name, metric in METRICS.items():
                    row[name] += metric(ranked, relevant, K) / len(people)
    return sums


def evaluate() -> tuple[dict, list[Reader]]:
    from django.test import override_settings

    all_papers = papers()
    by_pk = {p.pk: p for p in all_papers}
    held_out, days = split(all_papers)
    people = readers()
    with mock.patch("django.utils.timezone.now", return_value=NOW), override_settings(RANKING_EMBEDDINGS="off"):
        simulate(people, days, by_pk)
        return measure(people, held_out, by_pk), people


def table(scores: dict) -> str:
    lines = [f"{'ratings':>7}  " + "  ".join(f"{m + ' ' + name:>28}" for m in METHODS for name in METRICS)]
    for k in CHECKPOINTS:
        cells = [f"{scores[(m, k)][name]:>28.1%}" for m in METHODS for name in METRICS]
        lines.append(f"{k:>7}  " + "  ".join(cells))
    return "\n".join(lines)


def run(size: int) -> list[Row]:
    scores, people = evaluate()
    print(table(scores))
    reached = sum(len(r.rated) >= CHECKPOINTS[-1] for r in people)
    print(f"readers who reached {CHECKPOINTS[-1]} ratings: {reached} of {len(people)}")
    rows = []
    for k in CHECKPOINTS:
        for name in METRICS:
            learned, alone = scores[("learned", k)][name], scores[("interests alone", k)][name]
            # Never below interests alone; at 20 ratings and more, above it.
            ok = learned > alone if k >= 20 else learned >= alone
            target = "> interests alone" if k >= 20 else ">= interests alone"
            rows.append(Row("feedback", f"learned {name} @{k} ratings (%)", 100 * learned,
                            "interests alone (%)", 100 * alone, target, ok))  # fmt: skip
    for name in METRICS:
        rows.append(Row("feedback", f"trending alone {name} (%)", 100 * scores[("trending alone", 0)][name]))
    return rows
