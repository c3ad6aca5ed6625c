"""Ingest of a 2,000-item arXiv listing built from the real captured items, next to feedparser's bare parse of the
same file in the same run; and re-ingest of the same file next to the first ingest.

Targets (issue "Paper ingestion"): the whole ingest at >= 50% of the bare parse rate; re-ingest >= 2x faster
than the first ingest. Re-ingest of the very same bytes is recognised without parsing (as an HTTP 304 would
be); the forced row shows the cost when the listing is parsed again and compared with the stored papers.
"""

import logging
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import feedparser

from bench import Row

ENTRIES = 2000  # a busy day of cs.* announcements, several times the largest single-category listing
TRIALS = 3  # best of each figure: the first trial also warms imports and the database connection
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
REAL_LISTINGS = [
    "arxiv_rss2_combined_4items.xml",
    "arxiv_rss2_cs.AI_3items.xml",
    "arxiv_rss2_cs.CL_3items.xml",
    "arxiv_rss2_cs.LG_3items.xml",
]
ITEM = re.compile(rb"<item>.*?</item>", re.DOTALL)
ARXIV_ID = re.compile(rb"\d{4}\.\d{4,5}")
SPEC = "arxiv:cs.LG+cs.CL+cs.AI+stat.ML"


def build_listing(entries: int) -> tuple[bytes, list[str]]:
    """An RSS 2.0 listing of `entries` real items, each given its own arXiv id; and those ids."""
    items = [item for name in REAL_LISTINGS for item in ITEM.findall((FIXTURES / name).read_bytes())]
    head = (FIXTURES / REAL_LISTINGS[0]).read_bytes().split(b"<item>", 1)[0]
    body, ids = [], []
    for n in range(entries):
        new_id = f"2612.{10000 + n:05d}"
        ids.append(new_id)
        body.append(ARXIV_ID.sub(new_id.encode(), items[n % len(items)]))
    return head + b"\n".join(body) + b"\n  </channel>\n</rss>\n", ids


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(size: int) -> list[Row]:
    from papers.ingest import fetch_and_ingest
    from papers.models import FetchState, Paper

    data, ids = build_listing(ENTRIES)
    logging.getLogger("papers.ingest").setLevel(logging.WARNING)  # not a line per "unchanged" run in the table
    times: dict[str, list[float]] = {"bare": [], "first": [], "again": [], "forced": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "listing.xml"
        path.write_bytes(data)

        def clean_slate() -> None:
            Paper.objects.filter(canonical_id__in=ids).delete()
            FetchState.objects.filter(location__endswith=f"file:{path.resolve()}").delete()

        # Each trial measures every figure back to back, so that a figure and its limit meet the same load.
        for _ in range(TRIALS):
            clean_slate()
            times["bare"].append(timed(lambda: feedparser.parse(data)))
            times["first"].append(timed(lambda: fetch_and_ingest(SPEC, path=path)))
            created = Paper.objects.filter(canonical_id__in=ids).count()
            times["again"].append(timed(lambda: fetch_and_ingest(SPEC, path=path)))
            forced_run = fetch_and_ingest(SPEC, path=path, force=True)
            times["forced"].append(timed(lambda: fetch_and_ingest(SPEC, path=path, force=True)))
        clean_slate()
    bare, first, again, forced = (ENTRIES / min(times[name]) for name in ("bare", "first", "again", "forced"))
    assert created > 0 and (forced_run.created, forced_run.updated) == (0, 0), "re-ingest must change nothing"
    first_row = Row(
        "ingest", f"first ingest entries/s ({created} new)", first, "bare feedparser.parse", bare, ">= 50% of bare"
    )
    first_row.ok = first >= 0.5 * bare
    again_row = Row("ingest", "re-ingest entries/s (same bytes)", again, "first ingest", first, ">= 2x first")
    again_row.ok = again >= 2 * first
    return [
        Row("ingest", "bare feedparser.parse entries/s", bare),
        first_row,
        again_row,
        Row("ingest", "re-ingest entries/s (forced parse)", forced, "first ingest", first, "no target: shown"),
    ]
