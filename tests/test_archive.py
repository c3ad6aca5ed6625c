"""The web archive: /digests/, /digests/YYYY-MM-DD/ (the emails' "view in browser") and /digests/feed.xml."""

from datetime import date, timedelta

import feedparser
import pytest

from newsletter.emails import render, textfmt
from newsletter.models import Digest, DigestPaper
from papers.models import Paper
from papers.ranking import Pick
from subscribers.models import Subscriber
from tests.render_data import fresh_render_caches_fixture, papers_fixture  # noqa: F401 - fixtures

DAY = date(2026, 11, 28)


pytestmark = [pytest.mark.usefixtures("fresh_render_caches"), pytest.mark.clock("2026-11-28T07:00:00+00:00")]


def make_digest(day: date, status: str, papers: list[Paper], note: str = "") -> Digest:
    digest = Digest.objects.create(date=day, status=status, editor_note=note)
    DigestPaper.objects.bulk_create(DigestPaper(digest=digest, paper=p, position=i) for i, p in enumerate(papers))
    return digest


def test_the_view_in_browser_link_of_an_email_opens_that_days_digest(client, papers, outbox):
    digest = make_digest(DAY, Digest.Status.SENDING, papers[:5], note="Hello **readers**")
    reader = Subscriber.objects.create(email="ada@example.com", status=Subscriber.Status.ACTIVE)
    html = render.digest_email(digest, reader, papers[:5], [(Pick(papers[6].pk, 1, "x"), papers[6])]).alternatives[0]
    assert "http://127.0.0.1:8000/digests/2026-11-28/" in html[0]

    page = client.get("/digests/2026-11-28/")
    assert page.status_code == 200
    body = page.content.decode()
    positions = [body.index(textfmt.display_text(p.title)) for p in papers[:5]]
    assert positions == sorted(positions)  # in the digest's order
    assert "Saturday, November 28, 2026" in body and "<strong>readers</strong>" in body
    assert f'href="{papers[0].url}"' in body and f"▲ {papers[0].upvotes}" in body
    assert textfmt.display_text(papers[6].title) not in body  # one reader's "For you" is not published


def test_the_archive_lists_sent_digests_newest_first_and_nothing_unsent(client, papers):
    make_digest(DAY, Digest.Status.SENT, papers[:2])
    make_digest(DAY - timedelta(days=1), Digest.Status.SENT, papers[2:4])
    make_digest(DAY - timedelta(days=2), Digest.Status.DRAFT, papers[4:6])
    make_digest(DAY - timedelta(days=3), Digest.Status.CANCELLED, papers[4:6])
    make_digest(DAY - timedelta(days=4), Digest.Status.SKIPPED, [])

    body = client.get("/digests/").content.decode()
    assert body.index("/digests/2026-11-28/") < body.index("/digests/2026-11-27/")
    assert "2026-11-26" not in body and "2026-11-25" not in body and "2026-11-24" not in body
    assert textfmt.display_text(papers[0].title) in body and textfmt.display_text(papers[2].title) in body
    for unsent in ("2026-11-26", "2026-11-25", "2026-11-24", "2026-11-23", "2026-13-45"):
        assert client.get(f"/digests/{unsent}/").status_code == 404
    older = client.get("/digests/2026-11-27/").content.decode()
    assert 'href="/digests/2026-11-28/"' in older  # day pages link to their neighbours


def test_an_empty_archive_says_so(client, db):
    assert "No digest has been sent yet" in client.get("/digests/").content.decode()


def test_the_atom_feed_has_one_entry_per_sent_digest_with_its_papers(client, papers):
    make_digest(DAY, Digest.Status.SENT, papers[:3])
    make_digest(DAY - timedelta(days=1), Digest.Status.SENT, papers[3:5])
    make_digest(DAY - timedelta(days=2), Digest.Status.DRAFT, papers[5:6])

    response = client.get("/digests/feed.xml")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert feed.version == "atom10" and not feed.bozo
    assert [e.link for e in feed.entries] == [
        "http://testserver/digests/2026-11-28/",
        "http://testserver/digests/2026-11-27/",
    ]
    first = feed.entries[0]
    assert first.title.startswith("Saturday, November 28, 2026: ")
    content = first.summary
    for paper in papers[:3]:
        assert textfmt.display_text(paper.title) in content and paper.url in content


def test_archive_pages_and_feed_are_safe_from_hostile_papers_and_notes(client, db):
    hostile = Paper.objects.create(
        canonical_id="hostile",
        title='<script>alert(1)</script>Safe <img src=x onerror="alert(2)">title',
        abstract="Text <style>body{display:none}</style> javascript:alert(3) $\\alpha$ \\emph{fine}.",
        url="javascript:alert(4)",
        code_url="data:text/html,boom",
    )
    make_digest(DAY, Digest.Status.SENT, [hostile], note="<script>alert(5)</script>[x](javascript:alert(6))")
    for url in ("/digests/", "/digests/2026-11-28/", "/digests/feed.xml"):
        body = client.get(url).content.decode().lower()
        for needle in ("<script", "&lt;script", "javascript:", "onerror", "data:text", "alert(1)", "alert(5)"):
            assert needle not in body, f"{needle!r} on {url}"
        assert "safe title" in body
    assert "α fine." in client.get("/digests/2026-11-28/").content.decode()
