"""Emails as template sets: templates/emails/<name>/{subject.txt, body.txt, body.html}, rendered with Jinja2.

The digest is rendered for every reader of a 100k send, so the work is split by how often it changes:
- once per process: templates are compiled with the CSS of templates/emails/email.css already inlined;
- once per paper: a PaperView (LaTeX → Unicode, abstract cut, links checked) and the size of its card;
- once per digest: the editor's note, the trending section (HTML and text), the size of the frame;
- per reader: two signed links, the "For you" cards, one render of each part and a message.

A reader's signed links go into that reader's own copy only: an editor's preview or test send gets links that
act for nobody (`preview_links`).
"""

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cache, lru_cache

import css_inline
import jinja2
from django.conf import settings
from markupsafe import Markup

from newsletter.emails import textfmt
from newsletter.emails.headers import digest_message_id, list_headers
from newsletter.emails.mime import TemplatedEmail
from newsletter.models import Digest
from papers.models import Paper
from papers.ranking import Pick
from papers.text import arxiv_id_from, drop_unsafe
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, make_token, make_tokens

log = logging.getLogger(__name__)

TEMPLATE_DIR = settings.BASE_DIR / "templates"
EMAIL_CSS = TEMPLATE_DIR / "emails" / "email.css"
# Gmail clips an HTML body past 102 KB and hides the rest, unsubscribe link included; 2 KB stay spare for
# what a provider adds (tracking pixels, rewritten links).
MAX_HTML_BYTES = 100 * 1024
# Categories beyond these are cross-lists that say little about the paper.
MAX_CATEGORIES_SHOWN = 4
# Mail lines may not exceed 998 bytes (RFC 5322); under this, Django sends the HTML as 8-bit text.
MAX_LINE_BYTES = 900
# A reason past this is a reader's long interest list: enough to say why, short enough for one line.
MAX_REASON_CHARS = 160
LINE_BREAK_BYTES = 2  # the template puts each "For you" card on its own line (CRLF on the wire)
# Paper views are kept per process across digests; a day brings a few hundred papers.
PAPER_VIEW_CACHE_SIZE = 5000
DIGEST_CACHE_SIZE = 4
# "For you" cards (paper × reason) kept per process; a 100k send has a few thousand distinct pairs.
FOR_YOU_ITEM_CACHE_SIZE = 20000
# Making the frame bigger than any real reader's: a token for a subscriber id this large is the longest.
LONGEST_SUBSCRIBER_ID = 10**12
# Where a preview's reader links put the token: a word no token can be (tokens are five dotted fields).
PREVIEW_TOKEN = "preview"  # noqa: S105 - a placeholder, not a secret


@dataclass
class RenderedEmail:
    subject: str
    text: str
    html: str


# --- Templates: CSS inlined once, when a template is loaded -------------------------------------------

JINJA_CONSTRUCT = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
PLACEHOLDER = re.compile(r"<!--jinja(\d+)-->|&lt;!--jinja(\d+)--&gt;|jinja(\d+)placeholder")
ROW_WRAPPER = re.compile(r"^\s*<table[^>]*>|</table>\s*$|</?tbody>")
ROW_FRAGMENT = re.compile(r"^\s*(?:<!--jinja\d+-->\s*)*<tr[\s>]", re.IGNORECASE)


def _protect(source: str) -> tuple[str, list[str]]:
    """Jinja constructs → HTML comments between tags (they stay in place, even inside tables) or plain
    words inside a tag's attributes, so an HTML parser leaves them where they are."""
    out: list[str] = []
    pieces: list[str] = []
    position = 0
    for match in JINJA_CONSTRUCT.finditer(source):
        out.append(source[position : match.start()])
        position = match.end()
        if match.group(0).startswith("{#"):
            continue  # a template comment renders as nothing
        pieces.append(match.group(0))
        so_far = "".join(out)
        inside_tag = so_far.rfind("<") > so_far.rfind(">")
        out.append(f"jinja{len(pieces) - 1}placeholder" if inside_tag else f"<!--jinja{len(pieces) - 1}-->")
    out.append(source[position:])
    return "".join(out), pieces


def inline_css(source: str, css: str) -> str:
    """The template source with `css` inlined into style attributes; @media rules stay in a <style> block.
    Runs once per template per process, never per message."""
    protected, pieces = _protect(source)
    if "<html" in protected.lower():
        inlined = css_inline.CSSInliner(keep_at_rules=True, minify_css=True, extra_css=css).inline(protected)
    elif ROW_FRAGMENT.match(protected):
        # Table rows parse only inside a table: wrap them for the parser, unwrap them after.
        wrapped = css_inline.CSSInliner(minify_css=True).inline_fragment(f"<table>{protected}</table>", css)
        inlined = ROW_WRAPPER.sub("", wrapped)
    else:
        inlined = css_inline.CSSInliner(minify_css=True).inline_fragment(protected, css)
    found: set[int] = set()

    def restore(match: re.Match) -> str:
        index = int(next(g for g in match.groups() if g is not None))
        found.add(index)
        return pieces[index]

    restored = PLACEHOLDER.sub(restore, inlined)
    if len(found) != len(pieces):
        raise jinja2.TemplateError("CSS inlining lost part of the template: keep Jinja out of <style> and MSO comments")
    return restored


# A template asks for a stylesheet (a path under templates/) with a comment on its first line:
# {#- css: emails/email.css -#}
CSS_REQUEST = re.compile(r"\A\s*\{#-?\s*css:\s*(\S+?)\s*-?#\}")


class InliningLoader(jinja2.FileSystemLoader):
    """Loads templates from disk; a template whose first line asks for a stylesheet gets it inlined."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, object]:
        source, filename, uptodate = super().get_source(environment, template)
        request = CSS_REQUEST.match(source)
        if request:
            stylesheet = (TEMPLATE_DIR / request.group(1)).resolve()
            if not stylesheet.is_relative_to(TEMPLATE_DIR.resolve()):
                raise jinja2.TemplateError(f"{template}: stylesheet outside the templates: {request.group(1)}")
            source = inline_css(source[request.end() :], stylesheet.read_text())
        return source, filename, uptodate


def environment(**options: object) -> jinja2.Environment:
    """The emails' Jinja2 environment, one per process. Also the "emails" template engine's (TEMPLATES in
    settings), whose options are ours already: Django's defaults for them are not used."""
    return _environment()


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=InliningLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def one_line(subject: str) -> str:
    """A Subject: one line whatever the template did, and nothing `drop_unsafe` drops (a NUL or a bidi override
    from a paper title would otherwise reach the header)."""
    return " ".join(drop_unsafe(subject).split())


def render_email(name: str, context: dict) -> RenderedEmail:
    env = environment()
    subject = env.get_template(f"emails/{name}/subject.txt").render(context)
    return RenderedEmail(
        subject=one_line(subject),
        text=env.get_template(f"emails/{name}/body.txt").render(context),
        html=env.get_template(f"emails/{name}/body.html").render(context),
    )


def _render(name: str, context: dict) -> str:
    """`Template.render` without merging the environment's globals into every context (Jinja's
    `shared=True`): the per-reader templates use none, and the merge is a large part of a small render."""
    template = _template(name)
    return "".join(template.root_render_func(template.new_context(context, shared=True)))


@cache
def _template(name: str) -> jinja2.Template:
    return environment().get_template(name)  # compiled once per process (auto_reload is off)


def build_message(rendered: RenderedEmail, to: str, headers: dict[str, str] | None = None) -> TemplatedEmail:
    message = TemplatedEmail(
        subject=rendered.subject, body=rendered.text, from_email=settings.DIGEST_FROM_EMAIL, to=[to], headers=headers
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


def site_link(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def archive_path(day: date) -> str:
    return f"/digests/{day:%Y-%m-%d}/"


# --- Papers as readers see them -----------------------------------------------------------------------


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
    # The card, rendered once: top (title, authors), bottom with and without the summary, in both parts.
    html_top: Markup = NO_HTML
    html_bottom: Markup = NO_HTML
    html_bottom_compact: Markup = NO_HTML
    text_top: str = ""
    text_bottom: str = ""
    text_bottom_compact: str = ""
    html_bytes: int = 0  # the HTML card's size with the summary
    compact_html_bytes: int = 0  # and without


def _remember(cache: dict, limit: int, key: tuple, value: object) -> None:
    """Keep `value` in a per-process cache that starts over once it holds `limit` entries (a day's papers,
    readers and digests fit many times over; a long-lived worker must not grow without end)."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


def paper_view(paper: Paper, fallback_url: str) -> PaperView:
    """The view of `paper`, cached per process by id and last change. `fallback_url` is where the title
    links when the paper has no URL and no arXiv id (the day's archive page)."""
    key = (paper.id, paper.updated_at, fallback_url)  # .id, not .pk: this runs ten times per reader
    view = _views.get(key)
    if view is None:
        view = _with_card(_make_view(paper, fallback_url))
        if paper.id:
            _remember(_views, PAPER_VIEW_CACHE_SIZE, key, view)
    return view


_views: dict[tuple, PaperView] = {}


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
    )


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
        html_bytes=_size(top) + _size(bottom),
        compact_html_bytes=_size(top) + _size(compact),
    )


def _size(html: str) -> int:
    """Bytes on the wire: UTF-8, and every line break sent as CRLF."""
    return len(html.encode()) + html.count("\n")


def fold_long_lines(html: str) -> Markup:
    """The HTML with no line longer than MAX_LINE_BYTES, broken at spaces (whitespace either way in our
    markup), so the message can go out as plain 8-bit text instead of slow quoted-printable."""
    if _size(html) <= MAX_LINE_BYTES or all(_size(line) <= MAX_LINE_BYTES for line in html.split("\n")):
        return Markup(html)  # noqa: S704 - our own rendered, escaped HTML
    lines = []
    for line in html.split("\n"):
        while _size(line) > MAX_LINE_BYTES and " " in line[1:]:
            cut = line.rfind(" ", 1, MAX_LINE_BYTES // 4) if " " in line[1 : MAX_LINE_BYTES // 4] else line.find(" ", 1)
            lines.append(line[:cut])
            line = line[cut + 1 :]
        lines.append(line)
    return Markup("\n".join(lines))  # noqa: S704 - the same HTML, only spaces turned into newlines


# --- The digest: shared parts once, then one reader at a time -----------------------------------------


@dataclass
class DigestParts:
    """Everything in a digest that is the same for every reader."""

    date_label: str
    short_date: str
    subject: str
    archive_url: str
    top_title: str
    preheader: str
    note_html: Markup
    note_text: str
    trending: list[PaperView]
    trending_html: Markup
    trending_html_compact: Markup
    trending_text: str
    trending_text_compact: str
    for_you_header: Markup = NO_HTML
    frame_bytes: int = 0  # the HTML with no paper in it, links of the longest kind
    for_you_header_bytes: int = 0
    trending_bytes: int = 0
    trending_compact_bytes: int = 0
    cache_key: tuple = field(default=(), repr=False)


def digest_parts(digest: Digest, trending: list[Paper]) -> DigestParts:
    """The shared parts of `digest`, built once per digest and process (cached by content)."""
    key = (
        digest.pk,
        digest.date,
        digest.editor_note,
        settings.SITE_URL,
        tuple((p.id, p.updated_at) for p in trending),
    )
    parts = _digests.get(key)
    if parts is None:
        parts = _build_parts(digest, trending, key)
        _remember(_digests, DIGEST_CACHE_SIZE, key, parts)
    return parts


_digests: dict[tuple, DigestParts] = {}


def clear_caches() -> None:
    """Forget every cached paper view and digest part (tests; a deploy restarts the workers anyway)."""
    _views.clear()
    _digests.clear()
    _items.clear()


def _build_parts(digest: Digest, trending: list[Paper], key: tuple) -> DigestParts:
    env = environment()
    archive_url = site_link(archive_path(digest.date))
    views = [paper_view(p, archive_url) for p in trending]
    html_macros = env.get_template("emails/digest/_paper.html").module
    text_macros = env.get_template("emails/digest/_paper.txt").module
    note = textfmt.note_html(digest.editor_note)
    top_title = views[0].title if views else ""
    short_date = f"{digest.date:%b} {digest.date.day}"
    subject = env.get_template("emails/digest/subject.txt").render(short_date=short_date, top_title=top_title)
    parts = DigestParts(
        date_label=f"{digest.date:%A, %B} {digest.date.day}, {digest.date:%Y}",
        short_date=short_date,
        subject=one_line(subject),
        archive_url=archive_url,
        top_title=top_title,
        preheader=f"Top paper today: {top_title}" if top_title else "Today's new research papers",
        # nh3 allowed only the note's safe tags and http(s) links, and inlining adds only style attributes.
        note_html=fold_long_lines(css_inline.CSSInliner(minify_css=True).inline_fragment(note, EMAIL_CSS.read_text()))
        if note
        else Markup(""),
        note_text=textfmt.note_text(digest.editor_note),
        trending=views,
        trending_html=fold_long_lines(html_macros.trending(views)) if views else Markup(""),
        trending_html_compact=fold_long_lines(html_macros.trending(views, compact=True)) if views else Markup(""),
        trending_text=text_macros.trending(views) if views else "",
        trending_text_compact=text_macros.trending(views, compact=True) if views else "",
        cache_key=key,
    )
    longest = site_link(f"/unsubscribe/{make_token(LONGEST_SUBSCRIBER_ID, Purpose.UNSUBSCRIBE)}/")
    frame = _context(parts, [], longest, longest, trending_compact=True, intro="x" * 80)
    frame["trending_html"] = NO_HTML
    parts.frame_bytes = _size(render_email("digest", frame).html)
    parts.for_you_header = html_macros.section(
        "For you", "Picked from today's new papers for the interests you follow."
    )
    parts.for_you_header_bytes = _size(parts.for_you_header)
    parts.trending_bytes = _size(parts.trending_html)
    parts.trending_compact_bytes = _size(parts.trending_html_compact)
    return parts


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
            _remember(_items, FOR_YOU_ITEM_CACHE_SIZE, key, item)
    return item


_items: dict[tuple, ForYouItem] = {}


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
    return html, env.get_template("emails/digest/_paper.txt").module.reason(text), _size(html)


def fit_to_size(parts: DigestParts, items: list[ForYouItem], budget: int) -> tuple[list[ForYouItem], bool, int]:
    """Which "For you" cards keep their summary, which are dropped, and whether the trending section goes
    compact, so the HTML stays under `budget` bytes: summaries go first (trending, then "For you" from the
    last card up), papers only after that (from the last card up). Also returns the estimated size, an
    upper bound: the frame was measured with the longest links and intro."""
    total = parts.frame_bytes + parts.trending_bytes
    if items:
        total += parts.for_you_header_bytes
    extra = [item.reason_bytes + LINE_BREAK_BYTES for item in items]
    total += sum(item.view.html_bytes for item in items) + sum(extra)
    if total <= budget:
        return items, False, total
    total -= parts.trending_bytes - parts.trending_compact_bytes
    items = list(items)  # the cards are shared between readers: compact ones are copies
    for i in reversed(range(len(items))):
        if total <= budget:
            break
        items[i] = replace(items[i], compact=True)
        total -= items[i].view.html_bytes - items[i].view.compact_html_bytes
    keep = len(items)
    while total > budget and keep:
        keep -= 1
        total -= items[keep].view.compact_html_bytes + extra[keep]
    return items[:keep], True, total


def _context(
    parts: DigestParts,
    for_you: list[ForYouItem],
    preferences_url: str,
    unsubscribe_url: str,
    trending_compact: bool,
    intro: str,
) -> dict:
    return {
        "date_label": parts.date_label,
        "short_date": parts.short_date,
        "top_title": parts.top_title,
        "preheader": parts.preheader,
        "intro": intro,
        "note_html": parts.note_html,
        "note_text": parts.note_text,
        "for_you": for_you,
        "for_you_header": parts.for_you_header,
        "trending_html": parts.trending_html_compact if trending_compact else parts.trending_html,
        "trending_text": parts.trending_text_compact if trending_compact else parts.trending_text,
        "archive_url": parts.archive_url,
        "preferences_url": preferences_url,
        "unsubscribe_url": unsubscribe_url,
    }


def _intro(trending: int, for_you: int) -> str:
    trend = f"{trending} trending paper{'s' if trending != 1 else ''}"
    if not for_you:
        return f"Today: {trend}."
    return f"Today: {for_you} paper{'s' if for_you != 1 else ''} picked for you and {trend}."


@dataclass(frozen=True)
class ReaderLinks:
    """The links in a digest that act for its reader."""

    preferences_url: str
    unsubscribe_url: str


def reader_links(subscriber_id: int | None) -> ReaderLinks:
    """The reader's own signed links: only the reader's own copy of a digest carries them."""
    preferences, unsubscribe = make_tokens(subscriber_id, (Purpose.PREFERENCES, Purpose.UNSUBSCRIBE))
    return ReaderLinks(site_link(f"/preferences/{preferences}/"), site_link(f"/unsubscribe/{unsubscribe}/"))


def preview_links() -> ReaderLinks:
    """What an editor's preview and test send carry instead: links of the same shape that act for nobody (they
    open the "This link doesn't work" page). An editor never holds a reader's keys."""
    return ReaderLinks(site_link(f"/preferences/{PREVIEW_TOKEN}/"), site_link(f"/unsubscribe/{PREVIEW_TOKEN}/"))


def render_digest(
    digest: Digest,
    subscriber: Subscriber,
    trending: list[Paper],
    picks: list[tuple[Pick, Paper]],
    max_html_bytes: int = MAX_HTML_BYTES,
    links: ReaderLinks | None = None,
) -> tuple[RenderedEmail, dict]:
    """One reader's digest as subject, text and HTML, and the context it was rendered from. `links` default to
    the reader's own (`reader_links`); previews pass `preview_links()`."""
    parts = digest_parts(digest, trending)
    links = links or reader_links(subscriber.pk)
    preferences_url, unsubscribe_url = links.preferences_url, links.unsubscribe_url
    items = [for_you_item(paper, pick.reason or "", parts.archive_url) for pick, paper in picks]
    budget = max_html_bytes
    while True:
        shown, trending_compact, estimate = fit_to_size(parts, items, budget)
        intro = _intro(len(parts.trending), len(shown))
        context = _context(parts, shown, preferences_url, unsubscribe_url, trending_compact, intro)
        rendered = RenderedEmail(parts.subject, _render("emails/digest/body.txt", context),
                                 _render("emails/digest/body.html", context))  # fmt: skip
        if estimate <= max_html_bytes:
            break  # an upper bound: no need to measure
        over = _size(rendered.html) - max_html_bytes
        if over <= 0 or not shown:
            if over > 0:
                log.warning("digest %s for reader %s is %d bytes over the size limit", digest.pk, subscriber.pk, over)
            break
        budget -= over  # the estimate was short: ask for that much less and try again
    return rendered, context


def digest_email(
    digest: Digest,
    subscriber: Subscriber,
    trending: list[Paper],
    picks: list[tuple[Pick, Paper]],
    max_html_bytes: int = MAX_HTML_BYTES,
    links: ReaderLinks | None = None,
) -> TemplatedEmail:
    """One reader's digest, ready to send; its Message-ID is in `extra_headers`. `links` as for render_digest."""
    rendered, context = render_digest(digest, subscriber, trending, picks, max_html_bytes, links)
    headers = list_headers(context["unsubscribe_url"], digest_message_id(digest, subscriber))
    return build_message(rendered, subscriber.email, headers)
