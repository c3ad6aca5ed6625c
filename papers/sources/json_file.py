"""A JSON list or JSON Lines file of papers: imports and the bundled samples."""

import json
from datetime import date

from papers.sources.base import PaperRecord, ParseResult, Source, SourceError
from papers.text import parse_date


class JsonPapersSource(Source):
    kind = "json"

    def url_for(self, day: date | None) -> str:
        raise SourceError("the json source reads a local file: pass --file PATH")

    def parse(self, data: bytes) -> ParseResult:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SourceError(f"not UTF-8 text: {exc}") from None
        items = _load(text)
        result = ParseResult()
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not str(item.get("title") or "").strip():
                result.skipped += 1
                result.errors.append(f"item {index}: no title")
                continue
            authors = item.get("authors") or []
            if isinstance(authors, str):
                authors = authors.split(",")
            upvotes = item.get("upvotes")
            result.records.append(
                PaperRecord(
                    title=str(item["title"]),
                    abstract=str(item.get("abstract") or ""),
                    canonical_id=str(item.get("id") or ""),
                    url=str(item.get("url") or ""),
                    authors=[str(a) for a in authors],
                    categories=[str(c) for c in item.get("categories") or []],
                    published=parse_date(item.get("published")),
                    upvotes=int(upvotes) if isinstance(upvotes, int | float) else None,
                )
            )
        return result


def _load(text: str) -> list:
    stripped = text.strip()
    if not stripped:
        return []
    if stripped[0] in "[{":
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, list):
            return data
        if isinstance(data, dict):
            return data.get("papers", [data]) if isinstance(data.get("papers"), list) else [data]
    items = []
    for number, line in enumerate(stripped.splitlines(), 1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                raise SourceError(f"line {number} is not JSON: {exc}") from None
    return items
