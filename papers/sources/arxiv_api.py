"""The arXiv API (export.arxiv.org/api/query, Atom): look-ups by id and searches.

Spec: `arxiv-api:2406.12345,hep-ex/0101001` looks those papers up; anything else is an arXiv search query,
e.g. `arxiv-api:cat:cs.LG AND abs:diffusion`. arXiv asks that daily lists come from the RSS listings and the
API be used for look-ups; the shared 3-second clock in papers/fetch.py applies to both."""

import re
from datetime import date
from urllib.parse import urlencode

from django.conf import settings

from papers.sources.base import PaperRecord, ParseResult, Source, SourceError
from papers.sources.feed import entry_date, entry_doi, read_feed
from papers.text import arxiv_id_from

ARXIV_API_URL = "https://export.arxiv.org/api/query"
API_ERROR_ID = "arxiv.org/api/errors"
ID_LIST = re.compile(r"^\s*[\w./-]+\s*(,\s*[\w./-]+\s*)*$")


class ArxivApiSource(Source):
    kind = "arxiv-api"

    def check_arg(self) -> None:
        if not self.arg:
            raise SourceError("arxiv-api needs ids or a query: arxiv-api:2406.12345 or arxiv-api:cat:cs.LG")

    def ids(self) -> list[str]:
        """The arXiv ids of a look-up spec; [] for a search."""
        if not ID_LIST.match(self.arg):
            return []
        ids = [arxiv_id_from(part) for part in self.arg.split(",")]
        return ids if all(ids) else []

    def url_for(self, day: date | None) -> str:
        ids = self.ids()
        if ids:
            query = {"id_list": ",".join(ids), "max_results": len(ids)}
        else:
            query = {
                "search_query": self.arg,
                "sortBy": "submittedDate",
                "sortOrder": "descending",
                "max_results": settings.ARXIV_API_MAX_RESULTS,
            }
        return f"{ARXIV_API_URL}?{urlencode(query)}"

    def parse(self, data: bytes) -> ParseResult:
        feed, errors = read_feed(data)
        result = ParseResult(errors=errors)
        for index, entry in enumerate(feed.entries):
            if API_ERROR_ID in entry.get("id", ""):  # a bad query: the answer is one entry describing the error
                raise SourceError(f"arXiv API error: {' '.join(entry.get('summary', 'unknown').split())}")
            arxiv_id = arxiv_id_from(entry.get("id", "")) or arxiv_id_from(entry.get("link", ""))
            if not arxiv_id or not entry.get("title", "").strip():
                result.skipped += 1
                result.errors.append(f"entry {index}: {entry.get('summary') or 'no arXiv id or title'}"[:300])
                continue
            primary = (entry.get("arxiv_primary_category") or {}).get("term", "")
            result.records.append(
                PaperRecord(
                    title=entry.title,
                    abstract=entry.get("summary", ""),
                    arxiv_id=arxiv_id,
                    doi=entry_doi(entry),
                    authors=[a.get("name", "") for a in entry.get("authors", []) if a.get("name")],
                    url=f"https://arxiv.org/abs/{arxiv_id}",
                    pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",  # unversioned: always the latest version
                    categories=[t.get("term", "") for t in entry.get("tags", []) if t.get("term")],
                    primary_category=primary,
                    comment=entry.get("arxiv_comment", ""),
                    journal_ref=entry.get("arxiv_journal_ref", ""),
                    published=entry_date(entry),
                )
            )
        return result
