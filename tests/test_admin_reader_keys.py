"""Editors never hold a reader's keys: every admin page an editor can reach, the digest preview as each reader
sees it, and the test email an editor sends themself carry no token that verifies for any purpose. Previews show
the reader's papers with links that act for nobody."""

import html
import re

import pytest
import time_machine
from django.urls import reverse

from newsletter.models import AuditEntry, Delivery
from subscribers.tokens import Purpose, make_token
from tests.admin_support import MORNING, crawl, editor_client, make_morning
from tests.helpers import parts, read_outbox, reader_tokens_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def morning(db):
    with time_machine.travel(MORNING, tick=False):
        morning = make_morning()
        Delivery.objects.create(digest=morning.digest, subscriber=morning.ada, status=Delivery.Status.SENT,
                                message_id="<m1@example.org>")  # fmt: skip
        yield morning


def test_no_admin_page_an_editor_reaches_carries_a_reader_token(morning):
    client, _ = editor_client()
    pages = crawl(client, "/admin/")
    preview = reverse("admin:newsletter_digest_preview", args=[morning.digest.pk])
    for reader in (morning.ada, morning.bob):
        pages[f"{preview}?subscriber={reader.email}"] = client.get(preview, {"subscriber": reader.email}).text
    assert any("/preview/" in url for url in pages), "the crawl reached the digest preview"
    assert any("/subscribers/subscriber/" in url for url in pages), "and the subscribers"
    assert morning.ada.email in pages[f"{preview}?subscriber={morning.ada.email}"], "the preview is Ada's"
    leaks = {url: found for url, body in pages.items() if (found := reader_tokens_in(body))}
    assert leaks == {}


def test_the_test_email_an_editor_sends_carries_no_reader_token(morning, outbox):
    client, _ = editor_client()
    act = reverse("admin:newsletter_digest_act", args=[morning.digest.pk, "send_test"])
    assert client.post(f"{act}?subscriber={morning.ada.email}").status_code == 302
    [message] = read_outbox(outbox)
    assert message["To"] == "eddie@example.com" and message["Subject"].startswith("[Test] ")
    text, body = parts(message)
    assert "reinforcement" in text.lower() or "For you" in text, "it is Ada's digest"
    assert reader_tokens_in(f"{message['List-Unsubscribe']}\n{text}\n{body}") == {}
    assert AuditEntry.objects.filter(action="send_test").exists()


def test_a_preview_s_reader_links_act_for_nobody(morning, client):
    editor, _ = editor_client()
    preview = reverse("admin:newsletter_digest_preview", args=[morning.digest.pk])
    page = editor.get(preview, {"subscriber": morning.ada.email}).text
    links = set(re.findall(r"http://[^/\s\"&]+(/(?:preferences|unsubscribe|rate/\d+)/[\w.:~-]+/)", html.unescape(page)))
    assert {link.split("/")[1] for link in links} == {"preferences", "unsubscribe", "rate"}
    assert sum(link.startswith("/rate/") for link in links) >= 5, "every paper's rating link, inert"
    for link in links:
        for body in ({"List-Unsubscribe": "One-Click"}, {"rating": "less"}):
            for response in (client.get(link), client.post(link, body)):
                assert response.status_code == 404 and "This link doesn't work" in response.text
    morning.ada.refresh_from_db()
    assert morning.ada.status == "active" and not morning.ada.ratings.exists()
    # What a reader's own copy carries instead, for contrast: that one works.
    assert client.get(f"/preferences/{make_token(morning.ada.pk, Purpose.PREFERENCES)}/").status_code == 200
