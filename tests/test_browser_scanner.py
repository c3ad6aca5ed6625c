"""A link scanner acts for nobody. Corporate mail filters (Safe Links, Proofpoint, Mimecast) open every link of
every message in a real browser, scripts on, before the reader sees it. Here Debian's Chromium does that with a
confirmation email and a digest (its List-Unsubscribe URL, and every paper's "More like this" and "Less like
this"): afterwards every row of every table is as it
was (statuses, preferences, deliveries, suppressions, everything else) and nothing was mailed."""

import html
import re
from datetime import date
from urllib.parse import urlsplit

import pytest
from django.test import Client

from newsletter.emails import render
from newsletter.models import Delivery, Digest, DigestPaper
from papers import caches
from papers.ingest import fetch_and_ingest
from papers.models import Paper
from papers.ranking import Pick
from subscribers.models import Subscriber
from tests.conftest import fixture_path
from tests.helpers import changed_tables, database_snapshot, parts, wait_for_outbox

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.clock("2026-11-28T07:00:00+00:00"),
]
URL = re.compile(r"https?://[^\s<>\"']+")
PAGE_TIMEOUT_MS = 10_000  # a loopback page loads in milliseconds
SCRIPTS_SETTLE_MS = 500  # what a scanner gives a page's scripts after it has loaded, at the least


def links_in(message) -> set[str]:
    """Every URL in both parts and in the List-Unsubscribe header, as a scanner collects them."""
    text, body = parts(message)
    found = set(URL.findall(text)) | set(URL.findall(html.unescape(body)))
    found |= set(URL.findall(message.get("List-Unsubscribe", "")))
    return {url.rstrip(".,;)") for url in found}


@pytest.fixture
def mailbox(live_server, settings, outbox):
    """A confirmation email for a new sign-up and an active reader's digest, both pointing at the live server."""
    settings.SITE_URL = live_server.url
    caches.clear_all()
    fetch_and_ingest("hf", path=fixture_path("hf_daily_papers_5items.json"))
    papers = list(Paper.objects.order_by("-upvotes"))
    digest = Digest.objects.create(date=date(2026, 11, 28), status=Digest.Status.SENDING, editor_note="Hello.")
    for position, paper in enumerate(papers[:3]):
        DigestPaper.objects.create(digest=digest, paper=paper, position=position)
    ada = Subscriber.objects.create(email="ada@example.com", status="active", interests="language models")
    Delivery.objects.create(digest=digest, subscriber=ada, status=Delivery.Status.SENT, message_id="<d1@x>")
    assert Client().post("/subscribe/", {"email": "pat@example.com", "frequency": "daily"}).status_code == 200
    picks = [(Pick(papers[3].pk, 1.0, "matches: language models"), papers[3])]
    render.digest_email(digest, ada, papers[:3], picks).send()
    yield wait_for_outbox(outbox, 2)
    caches.clear_all()


def test_a_scanner_opening_every_link_of_a_confirmation_and_a_digest_changes_nothing(
    browser, live_server, mailbox, outbox
):
    links = set().union(*(links_in(message) for message in mailbox))
    ours = {url for url in links if url.startswith(live_server.url)}
    kinds = {urlsplit(url).path.split("/")[1] for url in ours}
    assert {"confirm", "preferences", "unsubscribe", "digests", "rate"} <= kinds, kinds
    assert Subscriber.objects.get(email="pat@example.com").status == "pending"
    before = database_snapshot()

    context = browser.new_context(java_script_enabled=True)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    # Links to arXiv, GitHub and the like are opened too, but answered here: nothing leaves the machine.
    context.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(live_server.url) else route.abort(),
    )
    opened = 0
    for url in sorted(links):
        page = context.new_page()
        try:
            page.goto(url, wait_until="load")
            page.wait_for_timeout(SCRIPTS_SETTLE_MS)
            opened += url in ours
        except Exception as exc:  # noqa: BLE001 - an aborted outside link: the scanner moves on
            assert url not in ours, f"{url}: {exc}"
        finally:
            page.close()
    context.close()

    after = database_snapshot()
    assert changed_tables(before, after) == [] and after == before
    assert opened == len(ours)
    assert Subscriber.objects.get(email="pat@example.com").status == "pending"
    assert Subscriber.objects.get(email="ada@example.com").status == "active"
    assert not Subscriber.objects.get(email="ada@example.com").ratings.exists(), "no paper was rated"
    assert len(list(outbox.glob("*.eml"))) == 2, "nothing was mailed"
