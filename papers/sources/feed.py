"""Any RSS / Atom / RDF feed (a journal, bioRxiv, a lab blog), mapped best-effort; and the feed reading that
the arXiv sources share: feedparser, with the input's encoding and truncation handled once, here."""

import re
from datetime import date

import feedparser

from papers.sources.base import PaperRecord, ParseResult, Source, SourceError
from papers.text import arxiv_id_from

DOI_PATTERN = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)
# What feedparser reports when it had to guess the encoding: the entries are fine, only the declaration lied.
ENCODING_WARNINGS = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
# The closing tags of the entries of every feed format; an entry whose closing tag never came was cut off.
ENTRY_END_TAGS = (b"</item>", b"</entry>", b"</rss:item>", b"</atom:entry>")


def read_feed(data: bytes) -> tuple[feedparser.FeedParserDict, list[str]]:
    """Parse feed bytes; raise SourceError for input that is no feed at all, report damage as error lines.

    A body that is valid UTF-8 is read as UTF-8 whatever it declares (a UTF-8 feed that says ISO-8859-1
    would otherwise turn every accent into two characters); anything else is left to feedparser's detection.
    Only complete entries of a truncated feed are kept."""
    if not data.strip():
        raise SourceError("empty input: no feed")
    headers = {}
    if not data.isascii():
        try:
            data.decode("utf-8")
            headers = {"content-type": "application/xml; charset=utf-8"}
        except UnicodeDecodeError:
            pass
    # feedparser's own HTML sanitizing is skipped: ingest strips all markup from every field anyway.
    feed = feedparser.parse(data, response_headers=headers, sanitize_html=False, resolve_relative_uris=False)
    errors: list[str] = []
    damage = feed.get("bozo_exception") if feed.bozo else None
    if isinstance(damage, ENCODING_WARNINGS):
        errors.append(f"wrong encoding: {damage}")
        damage = None
    if not feed.entries and (damage is not None or not feed.get("version")):
        what = "malformed feed" if feed.get("version") else "not a feed (no RSS, Atom or RDF document found)"
        raise SourceError(f"{what}: {damage}" if damage is not None else what)
    if damage is not None:
        complete = sum(data.count(tag) for tag in ENTRY_END_TAGS)
        if complete < len(feed.entries):
            del feed.entries[complete:]
        errors.append(f"malformed feed ({damage}); kept the {len(feed.entries)} complete entries")
    return feed, errors


def entry_date(entry: dict) -> date | None:
    """The entry's publication date (feedparser normalizes every date format to a UTC struct_time)."""
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return date(*parsed[:3]) if parsed else None


def entry_doi(entry: dict) -> str:
    for key in ("arxiv_doi", "prism_doi", "dc_identifier", "id", "link"):
        match = DOI_PATTERN.search(str(entry.get(key) or ""))
        if match:
            return match.group(1).rstrip(".")
    return ""


def entry_abstract(entry: dict) -> str:
    content = entry.get("content") or []
    longest = max((c.get("value", "") for c in content), key=len, default="")
    summary = entry.get("summary", "")
    return longest if len(longest) > len(summary) else summary


class FeedSource(Source):
    kind = "feed"

    def check_arg(self) -> None:
        if not self.arg.startswith(("https://", "http://")):
            raise SourceError(f"feed source needs a URL: feed:https://... (got {self.arg!r})")

    def url_for(self, day: date | None) -> str:
        return self.arg

    def parse(self, data: bytes) -> ParseResult:
        feed, errors = read_feed(data)
        result = ParseResult(errors=errors)
        for index, entry in enumerate(feed.entries):
            title = entry.get("title", "")
            if not title.strip():
                result.skipped += 1
                result.errors.append(f"entry {index}: no title ({entry.get('link') or entry.get('id') or '?'})")
                continue
            link = entry.get("link", "")
            result.records.append(
                PaperRecord(
                    title=title,
                    abstract=entry_abstract(entry),
                    arxiv_id=arxiv_id_from(link) if "arxiv.org" in link else "",
                    doi=entry_doi(entry),
                    authors=[a.get("name", "") for a in entry.get("authors", []) if a.get("name")],
                    url=link,
                    categories=[t.get("term", "") for t in entry.get("tags", []) if t.get("term")],
                    published=entry_date(entry),
                )
            )
        return result
