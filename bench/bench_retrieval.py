"""Retrieval quality of "For you" on the labelled profiles: precision@10 and nDCG@10, overall and per kind of wording.

Corpus and labels: bench/retrieval_data.py (1,837 real abstracts, 45 profiles; a third in the papers' own words, a
third plain-language paraphrases, a third technical terms and acronyms). Every method ranks all papers for each
profile. Baselines measured in the same run: TF-IDF cosine alone and MiniLM cosine alone. The product's ranking
(papers.ranking.for_you over all papers as candidates: its relevance, trending and diversity) is measured with
the model (the final method) and without it (the lexical fallback).

    BENCH_ONLY=retrieval .venv/bin/python -m bench     # the rows, in the bench table
    .venv/bin/python -m bench.retrieval_report         # every method, overall and per kind, as one table
"""

from collections.abc import Callable
from functools import cache
from unittest import mock

from bench import Row
from bench.bench_eval import NOW, ndcg_at, precision_at, synthetic_signals
from bench.retrieval_data import KINDS, K, corpus, profiles
from bench.retrieval_methods import minilm_papers, minilm_scores, order, tfidf_scores
from papers import embeddings

Ranker = Callable[[str], list[str]]
SLICES = ("overall", *KINDS)
SHORT = {"overall": "all", "keywords": "kw", "paraphrase": "para", "technical": "tech"}  # the bench table is narrow
METRICS = {"P@10": precision_at, "nDCG@10": ndcg_at}


def tfidf_only(interests: str) -> list[str]:
    return order(tfidf_scores(interests))


def embeddings_only(interests: str) -> list[str]:
    return order(minilm_scores(interests))


@cache
def candidate_papers(with_vectors: bool) -> tuple:
    """The corpus as unsaved Paper rows, with dates and votes synthesized from each title (bench_eval's signals,
    spread over the last three days); with_vectors gives each its stored MiniLM vector, as ingest would."""
    from papers.models import Paper

    vectors = minilm_papers() if with_vectors else None
    papers = []
    for i, doc in enumerate(corpus()):
        seen, upvotes, comments = synthetic_signals(doc.title)
        papers.append(
            Paper(
                pk=i + 1,
                canonical_id=f"bench:{doc.id}",
                title=doc.title,
                abstract=doc.abstract,
                categories=list(doc.categories),
                primary_category=doc.categories[0] if doc.categories else "",
                first_seen=seen,
                listed=seen.date(),
                upvotes=upvotes,
                num_comments=comments,
                embedding=embeddings.to_bytes(vectors[i]) if vectors is not None else None,
            )
        )
    return tuple(papers)


def for_you_ranker(mode: str) -> Ranker:
    """The product's "For you" list for one reader with these interests (at most K papers: it stops where nothing
    more matches)."""
    from django.test import override_settings

    from papers.ranking import for_you

    papers = candidate_papers(with_vectors=mode == "on")
    ids = {p.pk: d.id for p, d in zip(papers, corpus(), strict=True)}

    def rank(interests: str) -> list[str]:
        with mock.patch("django.utils.timezone.now", return_value=NOW), override_settings(RANKING_EMBEDDINGS=mode):
            return [ids[pick.paper_id] for pick in for_you(interests, papers, K)]

    return rank


# The product's "For you" with the model (papers.ranking: acronyms, nearest terms, BM25 and MiniLM fused by rank,
# feedback), held to beating both single retrievers on every figure.
FINAL = "For you (hybrid)"
LEXICAL = "For you (lexical)"  # the same without the model: BM25 with acronyms


def baselines() -> dict[str, Ranker]:
    rankers = {"tf-idf only": tfidf_only}
    if embeddings.installed():
        rankers["embeddings only"] = embeddings_only
    return rankers


def product() -> dict[str, Ranker]:
    rankers = {LEXICAL: for_you_ranker("off")}
    if embeddings.installed():
        rankers[FINAL] = for_you_ranker("on")
    return rankers


def evaluate(rankers: dict[str, Ranker]) -> dict[str, dict[tuple[str, str], float]]:
    """{method: {(metric, slice): mean over the slice's profiles}}."""
    labelled = profiles()
    results = {}
    for name, rank in rankers.items():
        per_profile = [(p.kind, rank(p.interests), p.relevant) for p in labelled]
        scores = {}
        for metric, measure in METRICS.items():
            for part in SLICES:
                values = [measure(r, rel, K) for kind, r, rel in per_profile if part in ("overall", kind)]
                scores[(metric, part)] = sum(values) / len(values)
        results[name] = scores
    return results


def rows_against(results: dict, method: str, references: list[str], target: str) -> list[Row]:
    """One row per metric, slice and reference: the method's figure beside the reference's, in percent."""
    rows = []
    for metric in METRICS:
        for part in SLICES:
            for reference in references:
                value, limit = 100 * results[method][(metric, part)], 100 * results[reference][(metric, part)]
                rows.append(
                    Row(
                        stage="retrieval",
                        figure=f"{metric} % {SHORT[part]}, {method}",
                        value=value,
                        baseline=reference,
                        baseline_value=limit,
                        target=target,
                        ok=value > limit if target else None,
                    )
                )
    return rows


def run(size: int) -> list[Row]:
    results = evaluate(baselines() | product())
    rows = rows_against(results, LEXICAL, ["tf-idf only"], "")
    if FINAL in results:
        rows += rows_against(results, FINAL, ["tf-idf only", "embeddings only"], "> both")
    return rows


def print_table(results: dict[str, dict[tuple[str, str], float]]) -> None:
    columns = [(metric, part) for metric in METRICS for part in SLICES]
    width = max(map(len, results)) + 2
    print(f"{'':<{width}}" + "".join(f"{metric + ' ' + part[:4]:>13}" for metric, part in columns))
    for name, scores in results.items():
        print(f"{name:<{width}}" + "".join(f"{100 * scores[c]:>13.1f}" for c in columns))
