"""Every retrieval method on the labelled profiles as one table: precision@10 and nDCG@10, overall and per kind.

.venv/bin/python -m bench.retrieval_report
"""

import os
import sys


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.config.settings")
    import django

    django.setup()
    from bench.bench_retrieval import baselines, candidate, embeddings_only, evaluate, print_table
    from bench.retrieval_methods import ENCODER
    from bench.retrieval_research import methods

    if ENCODER:  # another runtime: the product's For you still embeds with torch, so only the research side
        print_table(evaluate({f"embeddings only [{ENCODER}]": embeddings_only} | candidate()))
    else:
        print_table(evaluate(baselines() | methods()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
