"""The feedback evaluation's table alone (bench/bench_feedback.py): .venv/bin/python -m bench.feedback_report"""

import os
import sys


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.config.settings")
    import django

    django.setup()
    from bench.bench_feedback import evaluate, table

    scores, people = evaluate()
    print(table(scores))
    print(f"ratings reached: {sorted(len(r.rated) for r in people)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
