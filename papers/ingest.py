"""Records from any source → clean, identified, merged Paper rows; every run logged as a FetchRun."""

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from papers.models import FetchRun, Paper
from papers.sources import PaperRecord, SourceError, get_source
from papers.text import arxiv_id_from, clean_text, title_id

log = logging.getLogger(__name__)

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
# What the offline run (and an unreachable network) reads instead of each kind of source.
SAMPLE_FILES = {
    "hf": SAMPLES_DIR / "hf_daily_papers.json",
    "arxiv": SAMPLES_DIR / "arxiv_listing.xml",
    "json": SAMPLES_DIR / "seed_papers.jsonl",
}
OFFLINE_SOURCES = ["json", "hf", "arxiv:cs.LG+cs.CL+cs.AI+stat.ML"]

TEXT_FIELDS = ("title", "abstract", "comment", "journal_ref", "ai_summary", "primary_category", "doi")
URL_FIELDS = ("url", "pdf_url", "code_url", "project_url", "thumbnail_url")
SIGNAL_FIELDS = ("upvotes", "num_comments", "github_stars")


@dataclass
class IngestCounts:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: int = 0
    messages: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"fetched={self.fetched} created={self.created} updated={self.updated} "
            f"skipped={self.skipped} errors={self.errors}"
        )


def canonical_id(record: PaperRecord) -> str:
    return (
        arxiv_id_from(record.arxiv_id)
        or arxiv_id_from(record.canonical_id)
        or arxiv_id_from(record.url)
        or (f"doi:{record.doi.lower()}" if record.doi else "")
        or clean_text(record.canonical_id)
        or title_id(record.title)
    )


def _clean_url(value: str) -> str:
    value = clean_text(value)
    return value if value.startswith(("https://", "http://")) else ""


def record_fields(record: PaperRecord, source_name: str) -> dict:
    """The Paper field values this record offers, cleaned; empty values are left out."""
    values: dict = {}
    for name in TEXT_FIELDS:
        text = clean_text(getattr(record, name))
        if text:
            values[name] = text
    for name in URL_FIELDS:
        url = _clean_url(getattr(record, name))
        if url:
            values[name] = url
    for name in SIGNAL_FIELDS:
        if getattr(record, name) is not None:
            values[name] = getattr(record, name)
    authors = [clean_text(a) for a in record.authors if clean_text(a)]
    if authors:
        values["authors"] = authors
    categories = [clean_text(c) for c in record.categories if clean_text(c)]
    if categories:
        values["categories"] = categories
    keywords = [clean_text(k) for k in record.ai_keywords if clean_text(k)]
    if keywords:
        values["ai_keywords"] = keywords
    arxiv_id = arxiv_id_from(record.arxiv_id) or arxiv_id_from(record.url)
    if arxiv_id:
        values["arxiv_id"] = arxiv_id
    if record.published:
        values["published"] = record.published
    return values


def merge_into(paper: Paper, values: dict, source_name: str) -> bool:
    """Merge one source's view into a paper; True if anything changed. Longest abstract wins."""
    changed = False
    for name, value in values.items():
        current = getattr(paper, name)
        if name == "abstract" and current and len(current) >= len(value):
            continue
        if current != value:
            setattr(paper, name, value)
            changed = True
    kind = source_name.partition(":")[0]
    if kind not in paper.sources:
        paper.sources = [*paper.sources, kind]
        changed = True
    return changed


def ingest_records(records: list[PaperRecord], source_name: str) -> IngestCounts:
    counts = IngestCounts(fetched=len(records))
    by_id: dict[str, dict] = {}
    for record in records:
        values = record_fields(record, source_name)
        if not values.get("title"):
            counts.skipped += 1
            counts.messages.append("record without a usable title")
            continue
        key = canonical_id(record)
        if key in by_id:  # the same paper twice in one input: merge, count once
            counts.skipped += 1
            by_id[key].update({k: v for k, v in values.items() if k not in by_id[key]})
            continue
        by_id[key] = values
    with transaction.atomic():
        existing = Paper.objects.select_for_update().in_bulk(list(by_id), field_name="canonical_id")
        new_papers, changed_papers = [], []
        for key, values in by_id.items():
            paper = existing.get(key) or Paper(canonical_id=key)
            if merge_into(paper, values, source_name):
                (changed_papers if paper.pk else new_papers).append(paper)
        Paper.objects.bulk_create(new_papers)
        for paper in changed_papers:
            paper.save()
    if new_papers or changed_papers:
        from papers.ranking import after_ingest

        after_ingest([p.pk for p in new_papers + changed_papers if p.pk])
    counts.created, counts.updated = len(new_papers), len(changed_papers)
    return counts


def fetch_and_ingest(spec: str, day: date | None = None, path: Path | None = None, offline: bool = False) -> FetchRun:
    """Read one source (a local file, the live URL, or in offline mode its bundled sample) into the database.

    Raises SourceError when the input as a whole is unusable; the FetchRun records it either way."""
    from papers.fetch import http_get  # the HTTP client is only needed online

    source = get_source(spec)
    run = FetchRun.objects.create(source=spec)
    counts = IngestCounts()
    try:
        if path is None and offline:
            path = SAMPLE_FILES[source.kind]
        if path is not None:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                raise SourceError(f"cannot read {path}: {exc.strerror}") from None
        else:
            data = http_get(source.url_for(day))
        parsed = source.parse(data)
        counts = ingest_records(parsed.records, spec)
        counts.fetched += parsed.skipped
        counts.skipped += parsed.skipped
        counts.errors += len(parsed.errors)
        counts.messages = parsed.errors + counts.messages
    except SourceError as exc:
        counts.errors += 1
        counts.messages.append(str(exc))
        _finish(run, counts, FetchRun.Status.FAILED)
        raise
    status = FetchRun.Status.EMPTY if counts.fetched == 0 else FetchRun.Status.OK
    if counts.errors:
        status = FetchRun.Status.PARTIAL
    _finish(run, counts, status)
    if counts.fetched == 0:
        log.info("%s: no items (weekend or holiday listing)", spec)
    return run


def _finish(run: FetchRun, counts: IngestCounts, status: str) -> None:
    for name in ("fetched", "created", "updated", "skipped", "errors"):
        setattr(run, name, getattr(counts, name))
    run.messages = counts.messages[:200]
    run.status = status
    run.finished_at = timezone.now()
    run.save()
