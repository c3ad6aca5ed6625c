"""Text that never belongs in a mail or a page (NUL, other control characters, bidi overrides such as U+202E,
which make a title read backwards) is dropped when it is rendered, not only at ingest: rows stored before the
ingest cleaned them, editors' notes and readers' interests are safe too, in the Subject, both bodies, the
archive, the feed and the front page."""

from datetime import date

import pytest

from newsletter.emails import render
from newsletter.models import Digest, DigestPaper
from papers.models import Paper
from papers.ranking import Pick
from papers.text import UNSAFE_CHARS
from subscribers.models import Subscriber
from tests.helpers import parts, read_outbox

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-11-28T07:00:00+00:00")]
DAY = date(2026, 11, 28)
RLO, NUL = "\u202e", "\x00"
# Stored as is (PostgreSQL refuses NUL in text and JSON, so a row there cannot hold one: it is added in memory).
STORABLE = f"{RLO}\x07\u2066\x1b\x85"


def unsafe_left(text: str) -> list[str]:
    return sorted({f"U+{ord(c):04X}" for c in UNSAFE_CHARS.findall(text)})


@pytest.fixture
def paper(db) -> Paper:
    """A paper row written directly, as rows stored before ingest cleaned text are."""
    Paper.objects.create(
        canonical_id="2611.00001",
        arxiv_id="2611.00001",
        title=f"Attention Is All{STORABLE} You Need",
        abstract=f"We propose the {RLO}Transformer{STORABLE}, a model based on attention. It works well.",
        ai_summary=f"A{STORABLE} summary.",
        authors=[f"Ashish{RLO} Vaswani", f"Noam Shazeer{STORABLE}"],
        categories=[f"cs.CL{RLO}", "cs.LG"],
        url=f"https://arxiv.org/abs/2611.00001{RLO}",
        code_url=f"https://github.com/example/{RLO}repo",
        upvotes=12,
    )
    paper = Paper.objects.get()
    paper.title = f"{NUL}{paper.title}{NUL}"
    paper.abstract += NUL
    return paper


def test_no_unsafe_character_reaches_the_subject_or_either_body(paper, outbox):
    digest = Digest.objects.create(date=DAY, status=Digest.Status.SENDING)
    digest.editor_note = f"Read **this**{NUL} first &#x202E; {RLO}backwards"
    reader = Subscriber.objects.create(email="ada@example.com", status="active", interests="transformers")
    pick = Pick(paper.pk, 1.0, f"matches: {RLO}transformers{NUL}")
    render.digest_email(digest, reader, [paper], [(pick, paper)]).send()
    [message] = read_outbox(outbox)
    text, html = parts(message)
    for where, value in (("Subject", str(message["Subject"])), ("text", text), ("HTML", html)):
        assert unsafe_left(value) == [], where
    assert "Attention Is All You Need" in message["Subject"]
    assert "Attention Is All You Need" in text and "Ashish Vaswani" in text and "Read this first" in text
    assert "matches: transformers" in text
    wire = b"".join(path.read_bytes() for path in outbox.glob("*.eml"))
    assert NUL.encode() not in wire and RLO.encode() not in wire
    assert "https://github.com/example/" not in html, "a link with a bidi override in it is no link"


def test_no_unsafe_character_reaches_the_archive_the_feed_or_the_front_page(paper, client):
    digest = Digest.objects.create(date=DAY, status=Digest.Status.SENT, editor_note=f"Note {RLO}here")
    DigestPaper.objects.create(digest=digest, paper=paper, position=0)
    for url in ("/", "/digests/", f"/digests/{DAY:%Y-%m-%d}/", "/digests/feed.xml"):
        page = client.get(url).content.decode()
        assert "Attention Is All You Need" in page, url
        assert unsafe_left(page) == [], url
