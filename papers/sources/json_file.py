"""A JSON list or JSON Lines file of papers: imports, the bundled samples, and `export_papers` output read back.

Each paper: `title` and `abstract`, optionally `id` (an arXiv id, `doi:...`, or any stable id), `doi`, `url`,
`authors` (list, or one comma-joined string), `published` (ISO date), `listed` (the listing day it was
announced for, ISO date), `upvotes`, `categories`."""

import json
from datetime import date

from papers.sources.base import PaperRecord, ParseResult, Source, SourceError
from papers.text import decode_text, parse_date


class JsonPapersSource(Source):
    kind = "json"

    def url_for(self, day: date | None) -> str:
        raise SourceError("the json source reads a local file: pass --file PATH")

    def parse(self, data: bytes) -> ParseResult:
        text, warning = decode_text(data)
        items, errors = _load(text)
        result = ParseResult(errors=([warning] if warning else []) + errors)
        result.skipped = len(errors)
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not str(item.get("title") or "").strip():
                result.skipped += 1
                result.errors.append(f"item {index}: no title")
                continue
            authors = item.get("authors") or []
            if isinstance(authors, str):
                authors = authors.split(",")
            categories = item.get("categories") or []
            upvotes = item.get("upvotes")
            if isinstance(upvotes, bool) or not isinstance(upvotes, int | float):
                upvotes = None
            result.records.append(
                PaperRecord(
                    title=str(item["title"]),
                    abstract=str(item.get("abstract") or item.get("summary") or ""),
                    canonical_id=str(item.get("id") or ""),
                    doi=str(item.get("doi") or ""),
                    url=str(item.get("url") or ""),
                    authors=[str(a) for a in authors] if isinstance(authors, list) else [],
                    categories=[str(c) for c in categories] if isinstance(categories, list) else [],
                    published=parse_date(item.get("published")),
                    listed=parse_date(item.get("listed")),
                    upvotes=None if upvotes is None else int(upvotes),
                )
            )
        return result


def _load(text: str) -> tuple[list, list[str]]:
    """The items of a JSON document (a list, or {"papers": [...]}, or one paper) or of JSON Lines; for JSON
    Lines, each line that is not JSON is an error line and the others are kept."""
    stripped = text.strip()
    if not stripped:
        raise SourceError("empty input: expected JSON or JSON Lines papers")
    try:
        data = json.loads(stripped)
    except ValueError:
        data = None
    else:
        if isinstance(data, list):
            return data, []
        if isinstance(data, dict) and isinstance(data.get("papers"), list):
            return data["papers"], []
        if isinstance(data, dict) and "title" in data:
            return [data], []
        raise SourceError('expected a JSON list of papers, {"papers": [...]}, or JSON Lines')
    items, errors = [], []
    for number, line in enumerate(stripped.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except ValueError as exc:
            errors.append(f"line {number} is not JSON: {exc}")
    if not items:
        raise SourceError(f"not JSON or JSON Lines ({errors[0]})")
    return items, errors
