"""Source specs as operators write them: `hf`, `arxiv:cs.LG+cs.CL`, `json`. One module per source."""

from papers.sources.arxiv_rss import ArxivListingSource
from papers.sources.base import PaperRecord, ParseResult, Source, SourceError
from papers.sources.hf import HuggingFaceDailySource
from papers.sources.json_file import JsonPapersSource

SOURCE_KINDS: dict[str, type[Source]] = {
    cls.kind: cls for cls in (HuggingFaceDailySource, ArxivListingSource, JsonPapersSource)
}

__all__ = ["SOURCE_KINDS", "PaperRecord", "ParseResult", "Source", "SourceError", "get_source"]


def get_source(spec: str) -> Source:
    kind, _, arg = spec.partition(":")
    try:
        cls = SOURCE_KINDS[kind]
    except KeyError:
        raise SourceError(f"unknown source {spec!r}; known: {', '.join(sorted(SOURCE_KINDS))}") from None
    return cls(arg)
