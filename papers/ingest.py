"""Records from any source → clean, identified, merged Paper rows; every run logged as a FetchRun.

One transaction per source: a run either writes all of its papers or none. Unchanged input is not parsed
again (an HTTP 304, or the same bytes as the last successful run of that location), and papers whose merged
values did not change are not written."""

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from papers.embeddings import embed_papers
from papers.latex import latex_to_unicode
from papers.models import FetchRun, FetchState, Paper, today
from papers.signals import papers_listed
from papers.sources import PaperRecord, SourceError, get_source
from papers.text import arxiv_id_from, clean_text, title_id

log = logging.getLogger(__name__)

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
# What the offline run (and an unreachable network) reads instead of each kind of source.
# The arXiv listing stands in for the other feed-shaped sources: each of their parsers reads it.
SAMPLE_FILES = {
    "hf": SAMPLES_DIR / "hf_daily_papers.json",
    "arxiv": SAMPLES_DIR / "arxiv_listing.xml",
    "arxiv-api": SAMPLES_DIR / "arxiv_listing.xml",
    "feed": SAMPLES_DIR / "arxiv_listing.xml",
    "json": SAMPLES_DIR / "seed_papers.jsonl",
}
OFFLINE_SOURCES = ["json", "hf", "arxiv:cs.LG+cs.CL+cs.AI+stat.ML"]

TEXT_FIELDS = ("title", "abstract", "comment", "journal_ref", "ai_summary", "primary_category", "doi")
URL_FIELDS = ("url", "pdf_url", "code_url", "project_url", "thumbnail_url")
SIGNAL_FIELDS = ("upvotes", "num_comments", "github_stars")
LIST_FIELDS = ("authors", "categories", "ai_keywords")
LATEX_FIELDS = ("title", "abstract")  # arXiv authors write inline math in both
EMBEDDED_FIELDS = frozenset({"title", "abstract"})  # what a paper's sentence vector is made of
DOI_PREFIX = "doi:"
COUNT_NAMES = ("fetched", "created", "updated", "skipped", "errors")
# Which sources are the authority for a field, best first. The best source that has seen a paper owns the
# field (the earliest seen wins a tie); any other source only fills it while it is empty. So community signals
# come from HF, bibliographic data from arXiv, and alternating sources never flip a value back and forth.
COMMUNITY = ("hf",)
BIBLIOGRAPHIC = ("arxiv-api", "arxiv")
COMMUNITY_FIELDS = (*SIGNAL_FIELDS, "ai_summary", "ai_keywords", "thumbnail_url", "code_url", "project_url")
BIBLIOGRAPHIC_FIELDS = ("title", "authors", "url", "pdf_url", "categories", "primary_category", "doi", "comment")
FIELD_AUTHORITY: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(COMMUNITY_FIELDS, COMMUNITY),
    **dict.fromkeys((*BIBLIOGRAPHIC_FIELDS, "journal_ref", "published", "arxiv_id"), BIBLIOGRAPHIC),
}
# Column sizes: a value that does not fit is junk from a broken feed, and must not abort the whole run.
MAX_LENGTHS = {f.name: f.max_length for f in Paper._meta.get_fields() if getattr(f, "max_length", None)}
MAX_SIGNAL = 2**31 - 1  # the integer columns' range
MAX_RUN_MESSAGES = 200  # a run over a broken 2,000-entry file keeps the first lines, not thousands
WRITE_BATCH = 500  # rows per INSERT / UPDATE statement


@dataclass
class IngestCounts:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: int = 0
    messages: list[str] = field(default_factory=list)
    paper_ids: list[str] = field(default_factory=list)  # canonical ids of the papers the input stands for

    def summary(self) -> str:
        return " ".join(f"{name}={getattr(self, name)}" for name in COUNT_NAMES)

    def add(self, other: "IngestCounts | FetchRun") -> None:
        for name in COUNT_NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def canonical_id(record: PaperRecord) -> str:
    """arXiv id without version, else `doi:<doi>`, else the record's own id, else a hash of the title."""
    given = clean_text(record.canonical_id)
    doi = clean_text(record.doi) or (given.removeprefix(DOI_PREFIX) if given.startswith((DOI_PREFIX, "10.")) else "")
    return (
        arxiv_id_from(record.arxiv_id)
        or arxiv_id_from(given)
        or arxiv_id_from(record.url)
        or (f"{DOI_PREFIX}{doi.lower()}" if doi else "")
        or given
        or title_id(record.title)
    )


def _clean_url(value: str) -> str:
    value = clean_text(value)
    return value if value.startswith(("https://", "http://")) else ""


def listing_day(record: PaperRecord, day: date | None, local: bool) -> date:
    """The listing day a record is news for. A local file stands for the listing of the day the operator
    names (`--date`; the bundled samples for the day asked for, or today); otherwise the source's own date for
    the entry counts first (arXiv's announcement, HF's daily page, an export's `listed`), then the day
    fetched, then today."""
    if local and day:
        return day
    return record.listed or day or today()


def record_fields(record: PaperRecord, listed: date) -> dict:
    """The Paper field values this record offers, cleaned; empty values are left out."""
    values: dict = {"listed": listed}
    for name in TEXT_FIELDS:
        text = clean_text(getattr(record, name))
        if text and len(text) <= MAX_LENGTHS.get(name, len(text)):  # an over-long "DOI" is not one
            values[name] = latex_to_unicode(text) if name in LATEX_FIELDS else text
    for name in URL_FIELDS:
        url = _clean_url(getattr(record, name))
        if url and len(url) <= MAX_LENGTHS[name]:
            values[name] = url
    for name in SIGNAL_FIELDS:
        signal = getattr(record, name)
        if isinstance(signal, int) and 0 <= signal <= MAX_SIGNAL:
            values[name] = signal
    for name in LIST_FIELDS:
        cleaned = [clean_text(item) for item in getattr(record, name)]
        items = list(dict.fromkeys(item for item in cleaned if item))
        if items:
            values[name] = items
    arxiv_id = arxiv_id_from(record.arxiv_id) or arxiv_id_from(record.url)
    if arxiv_id:
        values["arxiv_id"] = arxiv_id
    if values.get("doi"):
        values["doi"] = values["doi"].lower()
    if record.published:
        values["published"] = record.published
    return values


def _owner(name: str, kinds: list[str]) -> str:
    """The source kind among `kinds` (in the order they first saw the paper) whose value of a field counts."""
    authority = FIELD_AUTHORITY.get(name, ())
    ranks = {kind: authority.index(kind) if kind in authority else len(authority) for kind in kinds}
    return min(kinds, key=lambda kind: (ranks[kind], kinds.index(kind)))


def merge_into(paper: Paper, values: dict, source_name: str) -> set[str]:
    """Merge one source's view into a paper; the names of the fields that changed. The longest abstract wins;
    every other field follows FIELD_AUTHORITY."""
    kind = source_name.partition(":")[0]
    kinds = [*paper.sources, kind] if kind not in paper.sources else list(paper.sources)
    changed = set()
    for name, value in values.items():
        current = getattr(paper, name)
        if current == value:
            continue
        if name == "abstract":
            take = len(value) > len(current or "")
        elif name == "listed":
            take = current is None or value < current  # news from the first listing that announced it
        else:
            take = current in (None, "", []) or _owner(name, kinds) == kind
        if take:
            setattr(paper, name, value)
            changed.add(name)
    if kind not in paper.sources:
        paper.sources = kinds
        changed.add("sources")
    return changed


def _combine(first: dict, second: dict) -> None:
    """The same paper twice in one input: keep the first entry's values, fill gaps, keep the longer abstract."""
    for name, value in second.items():
        if name not in first or (name == "abstract" and len(value) > len(first[name])):
            first[name] = value


def ingest_records(
    records: list[PaperRecord], source_name: str, day: date | None = None, local: bool = False
) -> IngestCounts:
    """Write one source's records: created, updated, or left alone when nothing changed. One transaction.

    `day` is the listing day asked for (`--date`); `local` says the records come from a file or the bundled
    samples, which then stand for that day's listing (see listing_day)."""
    counts = IngestCounts(fetched=len(records))
    by_id: dict[str, dict] = {}
    update_only: dict[str, bool] = {}
    for record in records:
        values = record_fields(record, listing_day(record, day, local))
        if not values.get("title"):
            counts.skipped += 1
            counts.errors += 1
            counts.messages.append(f"entry without a usable title: {record.arxiv_id or record.url or '?'}")
            continue
        key = canonical_id(record)
        if len(key) > MAX_LENGTHS["canonical_id"]:
            counts.skipped += 1
            counts.errors += 1
            counts.messages.append(f"entry id longer than {MAX_LENGTHS['canonical_id']} characters: {key[:60]}...")
            continue
        if key in by_id:
            counts.skipped += 1
            counts.messages.append(f"duplicate entry for {key}: merged into the first")
            _combine(by_id[key], values)
            update_only[key] = update_only[key] and record.update_only
            continue
        by_id[key] = values
        update_only[key] = record.update_only
    try:
        written = _write_retrying(by_id, update_only, source_name)
    except DatabaseError:
        # A value the database refuses, however it got past cleaning, must not cost the batch: write the entries
        # one by one and count the refused ones as errors (they are not stored, so they count as skipped too).
        written = Written([], [], [], set(), [])
        for key, values in by_id.items():
            try:
                one = _write_retrying({key: values}, {key: update_only[key]}, source_name)
            except DatabaseError as exc:
                counts.errors += 1
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                counts.messages.append(f"entry {key[:60]} refused by the database: {reason[:200]}")
                continue
            written.add(one)
    new_papers, changed_papers, counts.paper_ids = written.created, written.changed, written.paper_ids
    counts.skipped += len(by_id) - len(counts.paper_ids)  # replacements of papers we do not have
    # Only new papers and papers whose words changed need the model: new votes or a new listing day do not move
    # a paper's vector.
    if new_papers or written.reworded:
        embed_papers([p.pk for p in new_papers + written.reworded if p.pk])
    counts.created, counts.updated = len(new_papers), len(changed_papers)
    if written.listed_days:
        papers_listed.send(sender=Paper, days=sorted(written.listed_days))
    return counts


@dataclass
class Written:
    created: list[Paper]
    changed: list[Paper]
    paper_ids: list[str]  # canonical ids of all the papers the records stand for
    listed_days: set[date]  # listing days that gained a paper
    reworded: list[Paper]  # changed papers whose title or abstract changed (their stored vector is cleared)

    def add(self, other: "Written") -> None:
        self.created += other.created
        self.changed += other.changed
        self.reworded += other.reworded
        self.paper_ids += other.paper_ids
        self.listed_days |= other.listed_days


def _write_retrying(by_id: dict[str, dict], update_only: dict[str, bool], source_name: str) -> Written:
    try:
        return _write(by_id, update_only, source_name)
    except IntegrityError:
        # Another worker created one of these papers since we looked: now they exist, merge into them.
        return _write(by_id, update_only, source_name)


def _write(by_id: dict[str, dict], update_only: dict[str, bool], source_name: str) -> Written:
    """Create and update in bulk. A replacement of a paper we do not have stands for no paper."""
    paper_ids: list[str] = []
    listed_days: set[date] = set()
    with transaction.atomic():
        existing = Paper.objects.select_for_update().in_bulk(list(by_id), field_name="canonical_id")
        dois = {
            key.removeprefix(DOI_PREFIX): key for key in by_id if key.startswith(DOI_PREFIX) and key not in existing
        }
        if dois:  # a journal's DOI-only entry for a paper we know by its arXiv id: the same paper
            for paper in Paper.objects.select_for_update().filter(doi__in=list(dois)):
                existing[dois[paper.doi]] = existing.get(paper.canonical_id, paper)
        new_papers, changed_fields = [], set()
        changed_papers: dict[int, Paper] = {}  # by pk: two entries of the input may be the same paper
        reworded: dict[int, Paper] = {}
        now = timezone.now()
        for key, values in by_id.items():
            paper = existing.get(key)
            if paper is None:
                if update_only[key]:
                    continue  # a new version of a paper we never had is not news
                paper = Paper(canonical_id=key, first_seen=now, listed=values["listed"])
                merge_into(paper, values, source_name)
                listed_days.add(paper.listed)
                new_papers.append(paper)
                paper_ids.append(key)
                continue
            paper_ids.append(paper.canonical_id)
            changed = merge_into(paper, values, source_name)
            if "listed" in changed:
                listed_days.add(paper.listed)
            if changed:
                paper.updated_at = now
                changed_papers[paper.pk] = paper
                changed_fields |= changed
                if changed & EMBEDDED_FIELDS:
                    paper.embedding = None  # stale: embed_papers computes it again
                    reworded[paper.pk] = paper
                    changed_fields.add("embedding")
        _insert(new_papers)
        if changed_papers:
            fields = [*sorted(changed_fields), "updated_at"]
            Paper.objects.bulk_update(changed_papers.values(), fields, batch_size=WRITE_BATCH)
    return Written(new_papers, list(changed_papers.values()), paper_ids, listed_days, list(reworded.values()))


def _insert(papers: list[Paper]) -> None:
    """Insert new papers and set their primary keys. On PostgreSQL through COPY: bulk_create's INSERT carries
    one placeholder per value (30 columns times 2,000 papers), and building and splitting that statement on both
    sides took most of the time of a first ingest (measured with bench/bench_ingest.py and pyinstrument)."""
    if connection.vendor != "postgresql" or not papers:
        Paper.objects.bulk_create(papers, batch_size=WRITE_BATCH)
        return
    fields = [f for f in Paper._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    statement = f"COPY {connection.ops.quote_name(Paper._meta.db_table)} ({columns}) FROM STDIN"
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.copy(statement) as copy:
        for paper in papers:
            copy.write_row([f.get_db_prep_save(f.pre_save(paper, add=True), connection) for f in fields])
    keys = Paper.objects.filter(canonical_id__in=[p.canonical_id for p in papers]).values_list("canonical_id", "pk")
    pks = dict(keys)
    for paper in papers:  # a save() of one of them later updates its row: Paper's key has no default
        paper.pk = pks[paper.canonical_id]


def fetch_and_ingest(
    spec: str, day: date | None = None, path: Path | None = None, offline: bool = False, force: bool = False
) -> FetchRun:
    """Read one source (a local file, the live URL, or in offline mode its bundled sample) into the database.

    Input unchanged since the last run (an HTTP 304, or the same bytes) is not parsed again while the papers it
    gave all still exist; `force` parses it anyway. Raises SourceError when the input as a whole is unusable;
    the FetchRun records every outcome."""
    source = get_source(spec)
    run = FetchRun.objects.create(source=spec[:300])
    counts = IngestCounts()
    try:
        if path is None and offline:
            path = SAMPLE_FILES[source.kind]
            day = day or today()  # the bundled samples stand for the listing of the day asked for, or today's
        location = f"{source.name} file:{Path(path).resolve()}" if path is not None else source.url_for(day)
        state = FetchState.objects.filter(location=location[:500]).first() or FetchState(location=location[:500])
        reusable = not force and _still_there(state)
        data = _read(location, path, state, conditional=reusable)
        digest = hashlib.sha256(data).hexdigest() if data is not None else ""
        if data is None or (reusable and digest == state.body_sha256):
            counts.fetched = state.entries
            state.save()  # the validators the server sent this time
            _finish(run, counts, FetchRun.Status.UNCHANGED)
            log.info("%s: unchanged since the last run, not parsed again", spec)
            return run
        parsed = source.parse(data)
        counts = ingest_records(parsed.records, spec, day, local=path is not None)
        counts.fetched += parsed.skipped
        counts.skipped += parsed.skipped
        counts.errors += len(parsed.errors)
        counts.messages = parsed.errors + counts.messages
        state.body_sha256, state.entries, state.paper_ids = digest, counts.fetched, counts.paper_ids
        state.save()
    except Exception as exc:
        # A run never stays "running": unusable input (SourceError) and our own failures alike are recorded.
        counts.errors += 1
        counts.messages.append(str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}")
        _finish(run, counts, FetchRun.Status.FAILED)
        raise
    if counts.errors:
        status = FetchRun.Status.PARTIAL
    elif counts.fetched == 0:
        status = FetchRun.Status.EMPTY
        log.info("%s: no items (a weekend or holiday listing)", spec)
    else:
        status = FetchRun.Status.OK
    _finish(run, counts, status)
    return run


def _read(location: str, path: Path | None, state: FetchState, conditional: bool) -> bytes | None:
    """The input's bytes; None when the server says it is not modified. A live fetch sends the validators of
    the last run when `conditional`, and keeps the new ones on `state`."""
    if path is not None:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    from papers.fetch import http_get  # the HTTP client is only needed online

    fetched = http_get(location, *((state.etag, state.last_modified) if conditional else ("", "")))
    state.etag, state.last_modified = fetched.etag[:300], fetched.last_modified[:100]
    return fetched.body


def _still_there(state: FetchState) -> bool:
    """Whether the papers the location's last input gave all still exist (an operator may have deleted some)."""
    if not state.pk:
        return False
    ids = state.paper_ids
    return not ids or Paper.objects.filter(canonical_id__in=ids).count() == len(set(ids))


def _finish(run: FetchRun, counts: IngestCounts, status: str) -> None:
    for name in COUNT_NAMES:
        setattr(run, name, getattr(counts, name))
    run.messages = counts.messages[:MAX_RUN_MESSAGES]
    run.status = status
    run.finished_at = timezone.now()
    run.save()
