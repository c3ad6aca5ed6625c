"""The daily digest email, rendered for every reader of a send, so the work is split by how often it changes:
- once per process: templates compiled with their CSS inlined (newsletter.emails.templates);
- once per paper: its view and card (newsletter.emails.cards);
- once per digest: the editor's note, the trending section (HTML and text), the size of the frame;
- per reader: two signed links, the "For you" cards, one render of each part and a message.

A reader's signed links go into that reader's own copy only: an editor's preview or test send gets links that
act for nobody (`preview_links`).
"""

import logging
import re
from dataclasses import dataclass, field, replace

import css_inline
from django.conf import settings
from markupsafe import Markup

from newsletter.emails import textfmt
from newsletter.emails.cards import (
    NO_HTML,
    RATE_SLOT_CHAR,
    ForYouItem,
    PaperView,
    fold_long_lines,
    for_you_item,
    paper_view,
    rate_slot,
    wire_size,
)
from newsletter.emails.headers import digest_message_id, list_headers
from newsletter.emails.mime import TemplatedEmail
from newsletter.emails.templates import (
    EMAIL_CSS,
    RenderedEmail,
    archive_path,
    build_message,
    environment,
    one_line,
    render_email,
    render_template,
    site_link,
)
from newsletter.models import Digest
from papers.caches import Lru
from papers.models import Paper
from papers.ranking import Pick
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, make_token, make_tokens, rating_tokens

log = logging.getLogger(__name__)

# Gmail clips an HTML body past 102 KB and hides the rest, unsubscribe link included; 2 KB stay spare for
# what a provider adds (tracking pixels, rewritten links).
MAX_HTML_BYTES = 100 * 1024
LINE_BREAK_BYTES = 2  # the template puts each "For you" card on its own line (CRLF on the wire)
DIGEST_CACHE_SIZE = 4
# Making the frame bigger than any real reader's: a token for a subscriber id this large is the longest.
LONGEST_SUBSCRIBER_ID = 10**12
# Where a preview's reader links put the token: a word no token can be (tokens are five dotted fields).
PREVIEW_TOKEN = "preview"  # noqa: S105 - a placeholder, not a secret
# A card's rating link as the shared cards carry it: the paper's id, then the slot a reader's token goes in.
# A card's links that carry its rating token, in each part: more, less, and follow an author (the rating page
# mints the follow link for the reader, so the card needs no second token).
RATE_SLOTS_PER_CARD = 3
RATE_SLOT = re.compile(rf"/rate/(\d+)/{re.escape(RATE_SLOT_CHAR)}+/")


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
        _digests.put(key, parts)
    return parts


_digests: Lru[tuple, DigestParts] = Lru("digest parts", DIGEST_CACHE_SIZE)


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
    parts.frame_bytes = wire_size(render_email("digest", frame).html)
    parts.for_you_header = html_macros.section(
        "For you", "Picked from today's new papers for the interests you follow."
    )
    parts.for_you_header_bytes = wire_size(parts.for_you_header)
    parts.trending_bytes = wire_size(parts.trending_html)
    parts.trending_compact_bytes = wire_size(parts.trending_html_compact)
    return parts


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
        "postal_address": settings.DIGEST_POSTAL_ADDRESS,  # CAN-SPAM: the sender's postal address, when set
    }


def _intro(trending: int, for_you: int) -> str:
    trend = f"{trending} trending paper{'s' if trending != 1 else ''}"
    if not for_you:
        return f"Today: {trend}."
    return f"Today: {for_you} paper{'s' if for_you != 1 else ''} picked for you and {trend}."


@dataclass(frozen=True)
class ReaderLinks:
    """The links in a digest that act for its reader; `subscriber_id` signs each paper's rating link (None: links
    that act for nobody)."""

    preferences_url: str
    unsubscribe_url: str
    subscriber_id: int | None = None


def reader_links(subscriber_id: int | None) -> ReaderLinks:
    """The reader's own signed links: only the reader's own copy of a digest carries them."""
    preferences, unsubscribe = make_tokens(subscriber_id, (Purpose.PREFERENCES, Purpose.UNSUBSCRIBE))
    return ReaderLinks(
        site_link(f"/preferences/{preferences}/"), site_link(f"/unsubscribe/{unsubscribe}/"), subscriber_id
    )


def preview_links() -> ReaderLinks:
    """What an editor's preview and test send carry instead: links of the same shape that act for nobody (they
    open the "This link doesn't work" page). An editor never holds a reader's keys."""
    return ReaderLinks(site_link(f"/preferences/{PREVIEW_TOKEN}/"), site_link(f"/unsubscribe/{PREVIEW_TOKEN}/"))


def fill_rating_slots(rendered: RenderedEmail, views: list[PaperView], subscriber_id: int | None) -> RenderedEmail:
    """fill_rating_links for a digest whose cards are `views`, in order: each card holds RATE_SLOTS_PER_CARD
    slots in each part, so the parts are cut at the slots and the tokens put in between, without a search.
    Anything else (a card the template left out) goes the slower way."""
    ids = [int(view.anchor) for view in views if view.rate_url]
    slot = rate_slot()
    text, html = rendered.text.split(slot), rendered.html.split(slot)
    if not ids or len(text) != len(html) or len(text) != RATE_SLOTS_PER_CARD * len(ids) + 1:
        return fill_rating_links(rendered, subscriber_id)
    tokens = rating_tokens(subscriber_id, ids) if subscriber_id else [PREVIEW_TOKEN] * len(ids)
    twice = [token for token in tokens for _ in range(RATE_SLOTS_PER_CARD)]

    def fill(pieces: list[str]) -> str:
        out = [""] * (2 * len(twice) + 1)  # pieces and tokens alternating, joined once
        out[0::2], out[1::2] = pieces, twice
        return "".join(out)

    return RenderedEmail(rendered.subject, fill(text), fill(html))


def fill_rating_links(rendered: RenderedEmail, subscriber_id: int | None) -> RenderedEmail:
    """Each card's rating link with the reader's token for that paper (one per paper, scoped to it), or, with
    no reader, the preview placeholder that acts for nobody."""
    ids = list(dict.fromkeys(RATE_SLOT.findall(rendered.text)))
    if not ids:
        return rendered
    tokens = rating_tokens(subscriber_id, list(map(int, ids))) if subscriber_id else [PREVIEW_TOKEN] * len(ids)
    by_id = {paper_id: f"/rate/{paper_id}/{token}/" for paper_id, token in zip(ids, tokens, strict=True)}

    def fill(text: str) -> str:
        return RATE_SLOT.sub(lambda match: by_id.get(match[1], f"/rate/{match[1]}/{PREVIEW_TOKEN}/"), text)

    return RenderedEmail(rendered.subject, fill(rendered.text), fill(rendered.html))


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
        rendered = RenderedEmail(parts.subject, render_template("emails/digest/body.txt", context),
                                 render_template("emails/digest/body.html", context))  # fmt: skip
        rendered = fill_rating_slots(rendered, [item.view for item in shown] + parts.trending, links.subscriber_id)
        if estimate <= max_html_bytes:
            break  # an upper bound: no need to measure
        over = wire_size(rendered.html) - max_html_bytes
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
