"""The one interface every source implements: a URL to fetch for a day, and a parser from bytes to records."""

from dataclasses import dataclass, field
from datetime import date


class SourceError(Exception):
    """The input as a whole is unusable (not a feed, unreadable). One clear line for the operator."""


@dataclass
class PaperRecord:
    """A paper as one source saw it; ingest cleans, identifies and merges these into Paper rows."""

    title: str
    abstract: str = ""
    arxiv_id: str = ""
    doi: str = ""
    canonical_id: str = ""
    authors: list[str] = field(default_factory=list)
    url: str = ""
    pdf_url: str = ""
    code_url: str = ""
    project_url: str = ""
    thumbnail_url: str = ""
    categories: list[str] = field(default_factory=list)
    primary_category: str = ""
    comment: str = ""
    journal_ref: str = ""
    published: date | None = None
    # The listing day the source announced it for (arXiv's announcement date, HF's daily page); None when the
    # source does not say, and ingest takes the day of the fetch.
    listed: date | None = None
    upvotes: int | None = None
    num_comments: int | None = None
    github_stars: int | None = None
    ai_summary: str = ""
    ai_keywords: list[str] = field(default_factory=list)
    announce_type: str = ""
    # A new version of a paper announced earlier (arXiv "replace"): refresh a paper we have, add none.
    update_only: bool = False


@dataclass
class ParseResult:
    records: list[PaperRecord] = field(default_factory=list)
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


class Source:
    """Subclasses set `kind` and implement `url_for` (live fetch) and `parse` (bytes → records); `check_arg`
    refuses a spec that can never work, so that a typo fails when the source is configured, not at 4 a.m."""

    kind: str = ""

    def __init__(self, arg: str = "") -> None:
        self.arg = arg.strip()
        self.check_arg()

    def check_arg(self) -> None:
        """Refuse an unusable argument with SourceError; the default takes none."""
        if self.arg:
            raise SourceError(f"source {self.kind!r} takes no argument (got {self.arg!r})")

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.arg}" if self.arg else self.kind

    def url_for(self, day: date | None) -> str:
        raise NotImplementedError

    def parse(self, data: bytes) -> ParseResult:
        raise NotImplementedError
