"""Run every benchmark module and print one table; the same figures go to var/bench/<time>.json.

Sizes: BENCH_SUBSCRIBERS=1000|10000|100000 (default 1000). Only some: BENCH_ONLY=ingest,render.
Database: BENCH_DATABASE_URL (default: PostgreSQL on 127.0.0.1, database "bench", created if missing).
"""

import importlib
import json
import os
import pkgutil
import secrets
import sys
import time
from pathlib import Path

DEFAULT_SUBSCRIBERS = 1_000  # the default run finishes in a few minutes; 100_000 is the issue-sized run
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench"
ROOT = Path(__file__).resolve().parent.parent
BENCH_SECRET_BYTES = 32  # a throwaway SECRET_KEY per run, shared by every process of the run


def ensure_database(url: str, anew: bool = False) -> None:
    """The database of `url`, created if missing (dropped first, `anew`)."""
    if not url.startswith("postgres"):
        return
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if anew:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main() -> int:
    os.environ.setdefault("DATABASE_URL", os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    os.environ.setdefault("OUTBOX_DIR", str(ROOT / "var" / "bench" / "outbox"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.config.settings")
    # Lexical relevance unless asked (BENCH_RANKING_EMBEDDINGS=auto): the optional model adds its memory to
    # every process it loads in. The ranking and eval stages measure the model on their own.
    os.environ.setdefault("RANKING_EMBEDDINGS", os.environ.get("BENCH_RANKING_EMBEDDINGS", "off"))
    # Production settings for every process the benchmarks start: with DEBUG on, Django keeps and formats
    # every SQL statement a worker runs, which is not what a deployment pays.
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(BENCH_SECRET_BYTES))
    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bench import Row

    size = int(os.environ.get("BENCH_SUBSCRIBERS", DEFAULT_SUBSCRIBERS))
    only = {name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip()}
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
    rows: list[Row] = []
    started = time.monotonic()
    for name in names:
        if only and name.removeprefix("bench_") not in only:
            continue
        print(f"… {name}", file=sys.stderr, flush=True)
        fresh_process_state()
        rows.extend(importlib.import_module(f"bench.{name}").run(size))
    print_table(rows, size, time.monotonic() - started)
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"subscribers": size, "rows": [r.as_dict() for r in rows]}, indent=2))
    print(f"written: {path}")
    return 0


def fresh_process_state() -> None:
    """Each stage starts without the previous stage's caches: the ranking stage leaves ~100k parsed interests
    cached, and the cycle collector walking them showed up as a third more time per digest in the render
    stage that followed."""
    import gc

    from papers import caches

    caches.clear_all()
    # What earlier stages left alive (the embedding model's objects above all) moves out of the collector's
    # way: otherwise every full collection during a stage walks it, and the stage that allocates more pays
    # more for a heap that is not its own. Workers do the same after start-up (newsletter/config/celery.py).
    gc.collect()
    gc.freeze()


def print_table(rows: list, size: int, seconds: float) -> None:
    header = f"{'stage':<10} {'figure':<34} {'value':>12}  {'limit (same run)':<34} {'limit':>12} {'ratio':>7}  target"
    print(f"\nBenchmarks, BENCH_SUBSCRIBERS={size}, {seconds:.0f} s\n{header}\n{'-' * len(header)}")
    for r in rows:
        ratio = f"{r.ratio:.0%}" if r.ratio is not None else ""
        limit = f"{r.baseline_value:,.1f}" if r.baseline_value is not None else ""
        verdict = {True: "met", False: "NOT MET", None: ""}[r.ok]
        print(
            f"{r.stage:<10} {r.figure:<34} {r.value:>12,.1f}  {r.baseline:<34} {limit:>12} {ratio:>7}  "
            f"{r.target} {verdict}"
        )


if __name__ == "__main__":
    sys.exit(main())
