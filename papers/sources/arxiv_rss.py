"""arXiv listings (rss.arxiv.org RSS 2.0 / Atom, and the old RDF format) read with feedparser."""

import re
from datetime import date

import feedparser

from papers.sources.base import PaperRecord, ParseResult, Source, SourceError
from papers.text import parse_date

ARXIV_RSS_URL = "https://rss.arxiv.org/rss/"
KEPT_ANNOUNCE_TYPES = {"new", "cross", ""}  # "" for the old RDF format, which has no announce type
ABSTRACT_PREFIX = re.compile(r"^\s*arXiv:\S+\s+Announce Type:\s*\S+\s*Abstract:\s*", re.IGNORECASE | re.DOTALL)
ARXIV_ID_IN_URL = re.compile(r"arxiv\.org/abs/([^\s?#]+?)(?:v\d+)?$")


class ArxivListingSource(Source):
    kind = "arxiv"

    def url_for(self, day: date | None) -> str:
        return ARXIV_RSS_URL + (self.arg or "cs.LG")

    def parse(self, data: bytes) -> ParseResult:
        feed = feedparser.parse(data)
        if feed.bozo and not feed.entries and not feed.get("feed", {}).get("title"):
            raise SourceError(f"not a feed: {feed.get('bozo_exception')}")
        result = ParseResult()
        for entry in feed.entries:
            announce = entry.get("arxiv_announce_type", "")
            link = entry.get("link", "")
            match = ARXIV_ID_IN_URL.search(link)
            if not match or not entry.get("title"):
                result.skipped += 1
                result.errors.append(f"entry without arXiv link or title: {link or entry.get('id', '?')}")
                continue
            if announce not in KEPT_ANNOUNCE_TYPES:
                result.skipped += 1
                continue
            result.records.append(
                PaperRecord(
                    title=entry.title,
                    abstract=ABSTRACT_PREFIX.sub("", entry.get("summary", "")),
                    arxiv_id=match.group(1),
                    authors=split_authors(entry),
                    url=f"https://arxiv.org/abs/{match.group(1)}",
                    pdf_url=f"https://arxiv.org/pdf/{match.group(1)}",
                    categories=[t.term for t in entry.get("tags", []) if t.get("term")],
                    doi=entry.get("arxiv_doi", ""),
                    published=parse_date(entry.get("published") or entry.get("updated")),
                    announce_type=announce,
                )
            )
        return result


def split_authors(entry: dict) -> list[str]:
    names = [a.get("name", "") for a in entry.get("authors", []) if a.get("name")]
    if len(names) == 1 and "," in names[0]:
        names = names[0].split(",")
    elif not names and entry.get("author"):
        names = entry["author"].split(",")
    return [" ".join(n.split()) for n in names if n.strip()]
