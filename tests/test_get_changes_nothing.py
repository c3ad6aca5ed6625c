"""Scanners and GETs change nothing: every page of the site and every admin page a superuser reaches is opened
with GET and HEAD (reader pages with a token of every purpose, a confirmation link still current among them),
and afterwards every row of every table is as it was. Every state change is a POST with a CSRF token, but for
the one-click unsubscribe (RFC 8058), whose signed token is the proof."""

from datetime import date

import pytest
import time_machine
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse

from newsletter.models import Delivery, Digest, DigestPaper
from subscribers import services
from subscribers.models import Subscriber, Suppression, email_hash
from subscribers.tokens import Purpose, make_token, rating_state
from tests.admin_support import MORNING, crawl, make_morning, superuser_client
from tests.helpers import changed_tables, database_snapshot

pytestmark = pytest.mark.django_db
PURPOSES = (Purpose.CONFIRM, Purpose.PREFERENCES, Purpose.UNSUBSCRIBE, Purpose.PRIVACY)


def site_routes() -> set[str]:
    """Every URL pattern outside the admin, as Django lists them."""

    def walk(resolver: URLResolver, prefix: str = "") -> set[str]:
        routes = set()
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                routes |= walk(pattern, prefix + str(pattern.pattern))
            else:
                routes.add(prefix + str(pattern.pattern))
        return routes

    return {route for route in walk(get_resolver()) if not route.startswith("admin/")}


@pytest.fixture
def world(db, settings):
    """Today's draft with papers, yesterday's sent digest with its ledger, readers in every state (one with a
    confirmation link still current), a suppression, the configured provider's webhook."""
    settings.EMAIL_BACKEND, settings.ANYMAIL = "anymail.backends.postmark.EmailBackend", {"WEBHOOK_SECRET": "u:p"}
    with time_machine.travel(MORNING, tick=False):
        morning = make_morning()
        sent = Digest.objects.create(date=date(2026, 11, 27), status=Digest.Status.SENT)
        for position, item in enumerate(DigestPaper.objects.filter(digest=morning.digest)):
            DigestPaper.objects.create(digest=sent, paper=item.paper, position=position)
        Delivery.objects.create(digest=sent, subscriber=morning.ada, status=Delivery.Status.SENT, message_id="<m@x>")
        services.request_subscription(services.SignUp(email="pat@example.com"))
        Suppression.objects.create(email_hash=email_hash("gone@example.com"), reason="deleted")
        yield morning, sent


def site_urls(morning, sent: Digest) -> dict[str, list[str]]:
    """{route: the URLs that open it}: reader routes with a token of every purpose, for an active reader and for
    a pending one whose confirmation link is current."""
    pat = Subscriber.objects.get(email="pat@example.com")
    tokens = [make_token(reader.pk, purpose) for reader in (morning.ada, pat) for purpose in PURPOSES]
    tokens.append(make_token(pat.pk, Purpose.CONFIRM, state=services.consent_state(pat)))
    paper = DigestPaper.objects.filter(digest=sent).first().paper_id
    # A rating link: the reader's token for this very paper (it rates on a POST only).
    tokens.append(make_token(morning.ada.pk, Purpose.RATE, state=rating_state(paper)))
    tokens.append(make_token(morning.ada.pk, Purpose.FOLLOW, state=rating_state(paper)))  # follows on a POST only
    fill = {"<str:token>": tokens, "<str:esp>": ["postmark", "sendgrid"], "<int:paper_id>": [str(paper)],
            r"^(?P<day>\d{4}-\d{2}-\d{2})/$": [f"{sent.date:%Y-%m-%d}/"]}  # fmt: skip
    urls = {}
    for route in site_routes():
        concrete = [route]
        for placeholder, values in fill.items():
            concrete = (
                [url.replace(placeholder, value) for url in concrete for value in values]
                if placeholder in route
                else concrete
            )
        urls[route] = [f"/{url}" for url in concrete]
    return urls


def test_no_get_or_head_anywhere_changes_a_row(world, outbox):
    morning, sent = world
    admin, _ = superuser_client()
    with time_machine.travel(MORNING, tick=False):
        before = database_snapshot()
        reader = Client()
        opened = []
        for route, urls in site_urls(morning, sent).items():
            assert "<" not in "".join(urls), f"a placeholder of {route} is not filled in"
            for url in urls:
                for method in (reader.get, reader.head, admin.get):
                    assert method(url).status_code < 500, url
                opened.append(url)
        pages = crawl(admin, "/admin/")
        for url in pages:
            admin.head(url)
        after = database_snapshot()
    assert changed_tables(before, after) == []
    assert after == before
    assert not list(outbox.glob("*.eml")), "nothing was mailed"
    assert reverse("admin:newsletter_digest_today") in pages and len(pages) > 60, "the crawl reached the admin"
    assert len(opened) > 40
