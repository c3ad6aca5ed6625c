"""Every retrieval method on the labelled profiles as one table: precision@10 and nDCG@10, overall and per kind.

.venv/bin/python -m bench.retrieval_report

The rows: TF-IDF alone and MiniLM alone (the baselines), the product's "For you" with and without the model, and
the research methods of bench/retrieval_research.py that led to it.
"""

import os
import sys


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.config.settings")
    import django

    django.setup()
    from bench.bench_retrieval import baselines, embeddings_only, evaluate, print_table, product
    from bench.retrieval_methods import ENCODER
    from bench.retrieval_research import hybrid, methods, per_reader

    if ENCODER:  # another runtime for the research side only: the product embeds with its own
        research = per_reader(lambda topics: hybrid(topics, dense_weight=1.5))
        print_table(evaluate({f"embeddings only [{ENCODER}]": embeddings_only, "hybrid (research)": research}))
    else:
        print_table(evaluate(baselines() | product() | methods()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
