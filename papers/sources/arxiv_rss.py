"""arXiv daily listings: rss.arxiv.org RSS 2.0 and Atom, and the old (pre-2024) RDF / RSS 1.0 format.

Spec: `arxiv:cs.LG`, or several categories joined with `+` (`arxiv:cs.LG+cs.CL`), as arXiv's own URLs do."""

import re
from datetime import date

from papers.sources.base import PaperRecord, ParseResult, Source, SourceError
from papers.sources.feed import entry_date, entry_doi, read_feed
from papers.text import arxiv_id_from, clean_text

ARXIV_RSS_URL = "https://rss.arxiv.org/rss/"
DEFAULT_CATEGORIES = "cs.LG"
CATEGORY = re.compile(r"^[a-z-]+(\.[A-Za-z-]+)?$")
# Announcement types (arXiv RSS): new and cross-lists are today's papers; the rest are new versions of old ones.
NEW_ANNOUNCE_TYPES = frozenset({"new", "cross"})
UPDATE_ANNOUNCE_TYPES = frozenset({"replace", "replace-cross", "absonly"})
ABSTRACT_PREFIX = re.compile(r"^\s*arXiv:\S+\s+Announce Type:\s*\S+\s*Abstract:\s*", re.IGNORECASE)
# The old RDF format appends "(arXiv:2107.03419v1 [hep-ex] UPDATED)" to each title.
OLD_TITLE_SUFFIX = re.compile(r"\s*\(arXiv:\S+\s*\[[^\]]*\]\s*(?P<note>[A-Z ]*)\)\s*$")
# The old RDF format lists authors as links and may end with "et al. (909 additional authors not shown)".
AUTHORS_NOT_SHOWN = re.compile(r",?\s*et al\.?(\s*\(\d+ additional authors not shown\))?\s*$", re.IGNORECASE)


class ArxivListingSource(Source):
    kind = "arxiv"

    def check_arg(self) -> None:
        bad = [c for c in self.arg.split("+") if self.arg and not CATEGORY.match(c)]
        if bad:
            raise SourceError(f"not an arXiv category: {', '.join(bad)} (write arxiv:cs.LG or arxiv:cs.LG+cs.CL)")

    def url_for(self, day: date | None) -> str:
        return ARXIV_RSS_URL + (self.arg or DEFAULT_CATEGORIES)

    def parse(self, data: bytes) -> ParseResult:
        feed, errors = read_feed(data)
        result = ParseResult(errors=errors)
        listing_date = entry_date(feed.feed)  # the old RDF format dates the listing, not its items
        for index, entry in enumerate(feed.entries):
            link = entry.get("link", "")
            arxiv_id = arxiv_id_from(link) or arxiv_id_from(entry.get("id", ""))
            title, note = _title_and_note(entry.get("title", ""))
            if not arxiv_id or not title:
                result.skipped += 1
                result.errors.append(f"entry {index}: no arXiv id or no title ({link or entry.get('id') or '?'})")
                continue
            announce = entry.get("arxiv_announce_type", "") or ("replace" if note == "UPDATED" else "new")
            if announce not in NEW_ANNOUNCE_TYPES and announce not in UPDATE_ANNOUNCE_TYPES:
                result.skipped += 1
                result.errors.append(f"entry {index}: unknown announce type {announce!r} ({arxiv_id})")
                continue
            result.records.append(
                PaperRecord(
                    title=title,
                    abstract=ABSTRACT_PREFIX.sub("", entry.get("summary", ""), count=1),
                    arxiv_id=arxiv_id,
                    doi=entry_doi(entry),
                    authors=split_authors(entry),
                    url=f"https://arxiv.org/abs/{arxiv_id}",
                    pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
                    categories=[t.get("term", "") for t in entry.get("tags", []) if t.get("term")],
                    published=entry_date(entry) or listing_date,
                    # The listing's date is the announcement: every item of a day's listing carries it.
                    listed=entry_date(entry) or listing_date,
                    announce_type=announce,
                    update_only=announce in UPDATE_ANNOUNCE_TYPES,
                )
            )
        return result


def _title_and_note(title: str) -> tuple[str, str]:
    match = OLD_TITLE_SUFFIX.search(title)
    if not match:
        return title.strip(), ""
    return title[: match.start()].strip(), match.group("note").strip()


def split_authors(entry: dict) -> list[str]:
    """arXiv puts every author into one comma-joined string (and the old format wraps each in a link)."""
    names = [a.get("name", "") for a in entry.get("authors", []) if a.get("name")]
    if not names and entry.get("author"):
        names = [entry["author"]]
    if len(names) == 1:
        joined = AUTHORS_NOT_SHOWN.sub("", clean_text(names[0]))
        names = re.split(r",|:\s", joined)
    return [" ".join(n.split()) for n in names if n.strip()]
