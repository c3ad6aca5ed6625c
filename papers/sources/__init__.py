"""Source specs as operators write them: `hf`, `arxiv:cs.LG+cs.CL`, `arxiv-api:2406.12345`,
`feed:https://...`, `json`. One module per source, one interface (papers/sources/base.py)."""

from papers.sources.arxiv_api import ArxivApiSource
from papers.sources.arxiv_rss import ArxivListingSource
from papers.sources.base import PaperRecord, ParseResult, Source, SourceError
from papers.sources.feed import FeedSource
from papers.sources.hf import HuggingFaceDailySource
from papers.sources.json_file import JsonPapersSource

SOURCE_KINDS: dict[str, type[Source]] = {
    cls.kind: cls for cls in (HuggingFaceDailySource, ArxivListingSource, ArxivApiSource, FeedSource, JsonPapersSource)
}

__all__ = ["SOURCE_KINDS", "PaperRecord", "ParseResult", "Source", "SourceError", "get_source"]


def get_source(spec: str) -> Source:
    """The source a spec names; SourceError (one line, for the operator) for an unknown or unusable spec."""
    kind, _, arg = spec.strip().partition(":")
    try:
        cls = SOURCE_KINDS[kind]
    except KeyError:
        raise SourceError(f"unknown source {spec!r}; known: {', '.join(sorted(SOURCE_KINDS))}") from None
    return cls(arg)
