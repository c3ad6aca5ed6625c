"""Paper text as readers see it: markup-free, LaTeX turned into Unicode, abstracts cut at a sentence,
author lists shortened, links limited to http(s), editor's notes from Markdown to a safe HTML subset.

Every function here takes text from outside (papers, editors, subscribers) and returns text that is safe to
put in an email once escaped: no tag, no event handler, no script URL survives, not even as visible text, and
none of the characters `papers.text.drop_unsafe` drops (NUL and other controls, bidi overrides such as U+202E):
ingest drops them from papers stored now, this drops them from rows stored before, from editors' notes and from
readers' interests.
"""

import html
import re
import textwrap
from html.parser import HTMLParser
from urllib.parse import urlsplit

import markdown
import nh3

from papers.latex import latex_to_unicode
from papers.text import drop_unsafe

WHITESPACE = re.compile(r"\s+")
# Script-like URLs and event-handler attributes, also when they only survive as words in plain text.
SCRIPT_SCHEME = re.compile(r"(?i)\b(?:java|vb|live)\s*script\s*:")
EVENT_HANDLER = re.compile(r"(?i)\bon[a-z]{3,}\s*=")
# Tags that must never appear even as visible text, whatever depth of escaping they came wrapped in.
DANGEROUS_TAG = re.compile(
    r"(?i)<\s*/?\s*(?:script|style|iframe|object|embed|svg|math|link|meta|base|form|img)\b[^>]*>?"
)
# Escaped markup is unwrapped and cleaned again; real feeds double-escape at most twice.
MAX_UNESCAPE_ROUNDS = 3

# An abstract preview: about three lines on a phone, long enough to say what the paper does.
ABSTRACT_PREVIEW_CHARS = 320
# A first sentence may run past the preview length by this much before it is cut at a word instead.
SENTENCE_SLACK_CHARS = 120
# Author lists: up to this many names in full; past it, the first few and "… and N others".
AUTHORS_IN_FULL = 5
AUTHORS_SHOWN_WHEN_SHORT = 3
TEXT_WIDTH = 76  # the plain-text part wraps here: readable in every terminal and mail client

SAFE_SCHEMES = frozenset({"http", "https"})
URL_FORBIDDEN = re.compile(r"[\s\"'<>`\\\x00-\x1f\x7f]")

# Markdown an editor may use in a note: text formatting, lists, quotes and http(s) links.
NOTE_TAGS = frozenset({"p", "br", "strong", "em", "b", "i", "a", "ul", "ol", "li", "blockquote", "code", "h3", "h4"})
NOTE_ATTRIBUTES = {"a": {"href", "title"}}


def plain(value: object) -> str:
    """Plain text from anything: tags dropped (script and style with their content), entities decoded,
    script URLs and event handlers removed, whitespace folded."""
    if value is None:
        return ""
    text = drop_unsafe(str(value))  # before the parser, which would turn a NUL into U+FFFD
    for _ in range(MAX_UNESCAPE_ROUNDS):
        if "<" not in text and "&" not in text:
            break
        cleaned = html.unescape(nh3.clean(text, tags=set(), clean_content_tags={"script", "style"}))
        if cleaned == text:
            break
        text = cleaned
    if "<" in text:
        text = DANGEROUS_TAG.sub("", text)
    if ":" in text:
        text = SCRIPT_SCHEME.sub("", text)
    if "=" in text:
        text = EVENT_HANDLER.sub("", text)
    return WHITESPACE.sub(" ", drop_unsafe(text)).strip()  # again: an entity may have decoded to one


def display_text(value: object) -> str:
    """What a reader should see for a title, abstract or summary: plain, LaTeX-free, safe."""
    return plain(latex_to_unicode(plain(value)))


# --- Cutting and shortening ---------------------------------------------------------------------------

SENTENCE_END = re.compile(r"([.!?][\"')\]]?)\s+(?=[A-Z0-9\"'(\[“])")
# Words that end in a full stop without ending the sentence.
NOT_SENTENCE_ENDS = ("e.g.", "i.e.", "et al.", "etc.", "vs.", "Fig.", "Eq.", "Sec.", "cf.", "approx.", "resp.")


def cut_abstract(text: str, limit: int = ABSTRACT_PREVIEW_CHARS) -> tuple[str, bool]:
    """The opening of `text` ending at a sentence boundary, at most about `limit` characters, and whether
    anything was cut. A first sentence longer than the limit is cut at a word, with an ellipsis."""
    if len(text) <= limit:
        return text, False
    end = 0
    for match in SENTENCE_END.finditer(text, 0, limit + SENTENCE_SLACK_CHARS):
        stop = match.end(1)
        if text[:stop].endswith(NOT_SENTENCE_ENDS):
            continue
        if stop <= limit:
            end = stop
            continue
        end = end or stop  # a long first sentence may run into the slack
        break
    if end:
        return text[:end], True
    head = text[:limit].rsplit(" ", 1)[0].rstrip(",;:–— ")
    return head + "…", True


def shorten_authors(authors: list[str]) -> str:
    """ "A, B and C" for short lists; "A, B, C, … and 12 others" past AUTHORS_IN_FULL names."""
    names = [name for name in (plain(a) for a in authors) if name]
    if len(names) <= 1:
        return names[0] if names else ""
    if len(names) <= AUTHORS_IN_FULL:
        return ", ".join(names[:-1]) + " and " + names[-1]
    others = len(names) - AUTHORS_SHOWN_WHEN_SHORT
    return ", ".join(names[:AUTHORS_SHOWN_WHEN_SHORT]) + f", … and {others} others"


def wrap(text: str, indent: str = "") -> str:
    """Plain-text paragraph wrapped for the text part; URLs are never broken."""
    return textwrap.fill(
        text, width=TEXT_WIDTH, initial_indent=indent, subsequent_indent=indent, break_long_words=False
    )


# --- Links --------------------------------------------------------------------------------------------


def safe_url(value: object) -> str:
    """The URL when it is an absolute http(s) link with a host and nothing unsafe in it, else "": nothing else
    becomes a link (a bidi override can make a link read as another)."""
    url = str(value or "").strip()
    if not url or URL_FORBIDDEN.search(url) or drop_unsafe(url) != url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in SAFE_SCHEMES or not parts.hostname:
        return ""
    return url


# --- Editor's notes -----------------------------------------------------------------------------------


def note_html(source: str) -> str:
    """An editor's Markdown as HTML limited to text formatting, lists and http(s) links."""
    source = drop_unsafe(source)
    if not source.strip():
        return ""
    rendered = markdown.markdown(source, extensions=["sane_lists"])
    cleaned = nh3.clean(
        rendered,
        tags=NOTE_TAGS,
        attributes=NOTE_ATTRIBUTES,
        clean_content_tags={"script", "style"},
        url_schemes=SAFE_SCHEMES,
        link_rel="noopener noreferrer",
    )
    return drop_unsafe(cleaned).strip()  # nh3 writes out what an entity such as &#x202E; stood for


class _NoteText(HTMLParser):
    """Safe note HTML → plain text: paragraphs, "- " list items, links as "text (url)"."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.href: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "li":
            self.out.append("\n- ")
        elif tag == "br":
            self.out.append("\n")
        elif tag == "a":
            self.href.append(safe_url(dict(attrs).get("href")))

    def handle_endtag(self, tag: str) -> None:
        if tag in {"p", "ul", "ol", "blockquote", "h3", "h4"}:
            self.out.append("\n\n")
        elif tag == "a" and self.href:
            href = self.href.pop()
            if href:
                self.out.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        self.out.append(WHITESPACE.sub(" ", data))


def note_text(source: str) -> str:
    """The same note for the plain-text part."""
    parser = _NoteText()
    parser.feed(note_html(source))
    parser.close()
    lines = [WHITESPACE.sub(" ", line).strip() for line in "".join(parser.out).split("\n")]
    text = "\n".join(wrap(line, "") if line else "" for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
