"""Clean text and identifiers: every string from outside passes through here before it is stored."""

import hashlib
import html
import re
from datetime import date, datetime

import nh3

WHITESPACE = re.compile(r"\s+")
# Characters that never belong in stored or mailed text: C0 controls (NUL, which PostgreSQL refuses in text, and
# the rest; tab and line breaks are whitespace and fold to a space), DEL and C1 controls, lone surrogates (not
# encodable as UTF-8), and the bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), which
# can make a title read backwards in a subject line ("Trojan Source").
UNSAFE_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
ARXIV_NEW_ID = re.compile(r"(?<![\w.])(\d{4}\.\d{4,5})(?:v\d+)?(?![\w.])")
ARXIV_OLD_ID = re.compile(r"(?<![\w.])([a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?(?![\w.])")
TITLE_ID_PREFIX = "title:"


def drop_unsafe(text: str) -> str:
    """`text` without the characters of UNSAFE_CHARS; everything else, whitespace included, as it was."""
    return UNSAFE_CHARS.sub("", text)


def clean_text(value: object) -> str:
    """Plain text: tags removed (script and style with their content), entities decoded, unsafe characters
    dropped (before and after decoding: `&#x202E;` is one too), spaces folded."""
    if value is None:
        return ""
    text = drop_unsafe(str(value))
    if "<" in text or "&" in text:
        text = drop_unsafe(html.unescape(nh3.clean(text, tags=set(), clean_content_tags={"script", "style"})))
    return WHITESPACE.sub(" ", text).strip()


def decode_text(data: bytes) -> tuple[str, str]:
    """Bytes that should be UTF-8 → (text, warning). Text that is not UTF-8 is nearly always Windows-1252 (a
    superset of Latin-1): read it as that rather than refuse the whole file for one accented name."""
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError as exc:
        warning = f"not UTF-8 ({exc.reason} at byte {exc.start}): read as Windows-1252"
        return data.decode("cp1252", errors="replace"), warning


def arxiv_id_from(value: str) -> str:
    """The arXiv id without version found in an id, URL or 'arXiv:...' string; '' if none."""
    value = value or ""
    match = ARXIV_NEW_ID.search(value) or ARXIV_OLD_ID.search(value)
    return match.group(1) if match else ""


def title_id(title: str) -> str:
    """A stable id for a paper that has neither arXiv id nor DOI: a hash of its normalized title."""
    normalized = re.sub(r"[^a-z0-9]+", " ", clean_text(title).lower()).strip()
    return TITLE_ID_PREFIX + hashlib.sha256(normalized.encode()).hexdigest()[:16]


def parse_date(value: object) -> date | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    for parse in (
        lambda t: datetime.fromisoformat(t.replace("Z", "+00:00")).date(),
        lambda t: date.fromisoformat(t[:10]),
    ):
        try:
            return parse(text)
        except ValueError:
            continue
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(text).date()
    except (TypeError, ValueError):
        return None
