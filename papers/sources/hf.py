"""Hugging Face daily papers: GET /api/daily_papers?date=YYYY-MM-DD, a JSON list of items."""

import json
from datetime import date

from papers.sources.base import PaperRecord, ParseResult, Source, SourceError
from papers.text import decode_text, parse_date

HF_API_URL = "https://huggingface.co/api/daily_papers"


class HuggingFaceDailySource(Source):
    kind = "hf"

    def url_for(self, day: date | None) -> str:
        return f"{HF_API_URL}?date={day:%Y-%m-%d}" if day else HF_API_URL

    def parse(self, data: bytes) -> ParseResult:
        text, warning = decode_text(data)
        if not text.strip():
            raise SourceError("empty input: expected a JSON list of daily-paper items")
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise SourceError(f"not JSON: {exc}") from None
        if not isinstance(items, list):
            raise SourceError("expected a JSON list of daily-paper items")
        result = ParseResult(errors=[warning] if warning else [])
        for index, item in enumerate(items):
            paper = item.get("paper") if isinstance(item, dict) else None
            if not isinstance(paper, dict) or not paper.get("id") or not paper.get("title"):
                result.skipped += 1
                result.errors.append(f"item {index}: no paper id or title")
                continue
            arxiv_id = str(paper["id"])
            repo = paper.get("githubRepo") or ""
            result.records.append(
                PaperRecord(
                    title=str(paper.get("title") or item.get("title") or ""),
                    abstract=str(paper.get("summary") or item.get("summary") or ""),
                    arxiv_id=arxiv_id,
                    authors=[str(a.get("name") or "") for a in _list(paper.get("authors")) if isinstance(a, dict)],
                    url=f"https://huggingface.co/papers/{arxiv_id}",
                    pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
                    code_url=repo if isinstance(repo, str) else "",
                    project_url=str(paper.get("projectPage") or ""),
                    thumbnail_url=str(item.get("thumbnail") or ""),
                    published=parse_date(paper.get("publishedAt") or item.get("publishedAt")),
                    listed=parse_date(paper.get("submittedOnDailyAt")),
                    upvotes=_int(paper.get("upvotes")),
                    num_comments=_int(item.get("numComments")),
                    github_stars=_int(paper.get("githubStars")),
                    ai_summary=str(paper.get("ai_summary") or ""),
                    ai_keywords=[str(k) for k in _list(paper.get("ai_keywords"))],
                )
            )
        return result


def _int(value: object) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _list(value: object) -> list:
    return value if isinstance(value, list) else []
