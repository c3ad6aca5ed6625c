"""Papers as readers see them in an email: a PaperView per paper (LaTeX → Unicode, abstract cut, links checked)
and its card rendered once, in both parts; a "For you" card per (paper, reason). Both are kept per process, so a
100k send renders each paper once."""

from dataclasses import dataclass, replace
from functools import lru_cache

from markupsafe import Markup

from newsletter.emails import textfmt
from newsletter.emails.templates import environment, site_link
from papers.caches import Lru, register
from papers.models import Paper
from papers.text import arxiv_id_from
from subscribers.tokens import rating_tokens

# Categories beyond these are cross-lists that say little about the paper.
MAX_CATEGORIES_SHOWN = 4
# Mail lines may not exceed 998 bytes (RFC 5322); under this, Django sends the HTML as 8-bit text.
MAX_LINE_BYTES = 900
# A reason past this is a reader's long interest list: enough to say why, short enough for one line.
MAX_REASON_CHARS = 160
# Paper views are kept per process across digests; a day brings a few hundred papers.
PAPER_VIEW_CACHE_SIZE = 5000
# "For you" cards (paper × reason) kept per process; a 100k send has a few thousand distinct pairs.
FOR_YOU_ITEM_CACHE_SIZE = 20000

NO_HTML = Markup("")


@dataclass(frozen=True, slots=True)
class PaperView:
    """A paper's display fields, all plain safe text and http(s) links, computed once per paper."""

    anchor: str
    title: str
    link: str
    authors: str
    categories: str
    upvotes: int | None
    summary: str
    summary_is_ai: bool
    more: bool
    links: tuple[tuple[str, str], ...]
    meta_text: str
    summary_text: str
    # The paper's "More like this" / "Less like this" link, its token a RATE_SLOT that each reader's copy fills
    # in (newsletter.emails.render.fill_rating_links); "" for a paper that is no row of the database.
    rate_url: str = ""
    # The card, rendered once: top (title, authors), bottom with and without the summary, in both parts.
    html_top: Markup = NO_HTML
    html_bottom: Markup = NO_HTML
    html_bottom_compact: Markup = NO_HTML
    text_top: str = ""
    text_bottom: str = ""
    text_bottom_compact: str = ""
    html_bytes: int = 0  # the HTML card's size with the summary
    compact_html_bytes: int = 0  # and without


def paper_view(paper: Paper, fallback_url: str) -> PaperView:
    """The view of `paper`, cached per process by id and last change. `fallback_url` is where the title
    links when the paper has no URL and no arXiv id (the day's archive page)."""
    key = (paper.id, paper.updated_at, fallback_url)  # .id, not .pk: this runs ten times per reader
    view = _views.get(key)
    if view is None:
        view = _with_card(_make_view(paper, fallback_url))
        if paper.id:
            _views.put(key, view)
    return view


_views: Lru[tuple, PaperView] = Lru("paper views", PAPER_VIEW_CACHE_SIZE)


def _make_view(paper: Paper, fallback_url: str) -> PaperView:
    arxiv_id = arxiv_id_from(paper.arxiv_id)
    abs_url = f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else ""
    link = textfmt.safe_url(paper.url) or abs_url or fallback_url
    title = textfmt.display_text(paper.title) or "Untitled paper"
    ai_summary = textfmt.display_text(paper.ai_summary)
    summary, cut = textfmt.cut_abstract(ai_summary or textfmt.display_text(paper.abstract))
    categories = " · ".join(c for c in (textfmt.plain(c) for c in paper.categories[:MAX_CATEGORIES_SHOWN]) if c)
    upvotes = paper.upvotes if paper.upvotes and paper.upvotes > 0 else None
    pdf = textfmt.safe_url(paper.pdf_url) or (f"https://arxiv.org/pdf/{arxiv_id}" if arxiv_id else "")
    links = tuple(
        (label, url)
        for label, url in (
            ("PDF", pdf),
            ("Code", textfmt.safe_url(paper.code_url)),
            ("Project page", textfmt.safe_url(paper.project_url)),
        )
        if url and url != link
    )
    authors = textfmt.shorten_authors(paper.authors if isinstance(paper.authors, list) else [paper.authors or ""])
    meta = [categories] if categories else []
    if upvotes:
        meta.append(f"▲ {upvotes} upvotes")
    return PaperView(
        anchor=str(paper.pk or ""),
        title=title,
        link=link,
        authors=authors,
        categories=categories,
        upvotes=upvotes,
        summary=summary,
        summary_is_ai=bool(ai_summary),
        more=cut or bool(ai_summary),
        links=links,
        meta_text=" · ".join(meta) or "new today",
        summary_text=textfmt.wrap(("AI summary: " if ai_summary else "") + summary, "   "),
        rate_url=site_link(f"/rate/{paper.pk}/{rate_slot()}/") if paper.pk else "",
    )


# Stands for a reader's rating token in the cards every reader shares. As long as the longest token, so that a
# card's measured size stays an upper bound; "~" is in no token.
RATE_SLOT_CHAR = "~"
# The longest subscriber id a slot is sized for (ids are 64-bit; this is a trillion readers).
LONGEST_SUBSCRIBER_ID = 10**12


@lru_cache(maxsize=1)
def rate_slot() -> str:
    return RATE_SLOT_CHAR * len(rating_tokens(LONGEST_SUBSCRIBER_ID, [LONGEST_SUBSCRIBER_ID])[0])


def _with_card(view: PaperView) -> PaperView:
    env = environment()
    html = env.get_template("emails/digest/_paper.html").module
    text = env.get_template("emails/digest/_paper.txt").module
    top, bottom, compact = (fold_long_lines(html.top(view)), fold_long_lines(html.bottom(view)),
                            fold_long_lines(html.bottom(view, compact=True)))  # fmt: skip
    return replace(
        view,
        html_top=top,
        html_bottom=bottom,
        html_bottom_compact=compact,
        text_top=text.top(view),
        text_bottom=text.bottom(view),
        text_bottom_compact=text.bottom(view, compact=True),
        html_bytes=wire_size(top) + wire_size(bottom),
        compact_html_bytes=wire_size(top) + wire_size(compact),
    )


def wire_size(html: str) -> int:
    """Bytes on the wire: UTF-8, and every line break sent as CRLF."""
    return len(html.encode()) + html.count("\n")


def fold_long_lines(html: str) -> Markup:
    """The HTML with no line longer than MAX_LINE_BYTES, broken at spaces (whitespace either way in our
    markup), so the message can go out as plain 8-bit text instead of slow quoted-printable."""
    if wire_size(html) <= MAX_LINE_BYTES or all(wire_size(line) <= MAX_LINE_BYTES for line in html.split("\n")):
        return Markup(html)  # noqa: S704 - our own rendered, escaped HTML
    lines = []
    for line in html.split("\n"):
        while wire_size(line) > MAX_LINE_BYTES and " " in line[1:]:
            cut = line.rfind(" ", 1, MAX_LINE_BYTES // 4) if " " in line[1 : MAX_LINE_BYTES // 4] else line.find(" ", 1)
            lines.append(line[:cut])
            line = line[cut + 1 :]
        lines.append(line)
    return Markup("\n".join(lines))  # noqa: S704 - the same HTML, only spaces turned into newlines


@dataclass(frozen=True, slots=True)
class ForYouItem:
    view: PaperView
    reason_html: Markup
    reason_text: str
    reason_bytes: int
    compact: bool = False


def for_you_item(paper: Paper, reason: str, fallback_url: str) -> ForYouItem:
    """A "For you" card: readers of one digest share papers and reasons, so each pair is made once per process."""
    key = (paper.id, paper.updated_at, fallback_url, reason)
    item = _items.get(key)
    if item is None:
        item = ForYouItem(paper_view(paper, fallback_url), *_reason(reason))
        if paper.id:
            _items.put(key, item)
    return item


_items: Lru[tuple, ForYouItem] = Lru("for-you cards", FOR_YOU_ITEM_CACHE_SIZE)


@lru_cache(maxsize=4096)
def _reason(reason: str) -> tuple[Markup, str, int]:
    """A "For you" reason in both parts; readers of one digest share most reasons, so they are cached."""
    text = textfmt.plain(reason)
    if not text:
        return NO_HTML, "", 0
    if len(text) > MAX_REASON_CHARS:
        text = text[:MAX_REASON_CHARS].rsplit(" ", 1)[0] + "…"
    env = environment()
    html = env.get_template("emails/digest/_paper.html").module.reason(text)
    return html, env.get_template("emails/digest/_paper.txt").module.reason(text), wire_size(html)


register("for-you reasons", _reason.cache_clear)
