""" "More like this" / "Less like this": every paper of a reader's digest carries both links in both parts, each
signed for that reader and that paper only. Opening a link shows the paper and two buttons and records nothing;
one POST rates, and the page it answers with undoes. The preferences page lists the ratings, removes any and
forgets all; the data export holds them and deleting the account deletes them."""

import html
import json
import re
from datetime import date

import pytest

from newsletter.emails import render
from newsletter.models import Digest
from papers import caches
from papers.ingest import fetch_and_ingest
from papers.models import Paper
from papers.ranking import Pick
from subscribers import services
from subscribers.models import Rating, Subscriber
from subscribers.tokens import Purpose, make_token, rating_state, read_token
from tests.conftest import fixture_path
from tests.helpers import parts, read_outbox, reader_tokens_in

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-11-28T07:00:00+00:00")]
RATE_LINK = re.compile(r"https?://[^/\s\"]+(/rate/(\d+)/([^/\s\"]+)/)\?v=(more|less)")


@pytest.fixture
def digest_mail(outbox):
    """Ada's digest: three trending papers and one "For you" pick, through the outbox."""
    caches.clear_all()
    fetch_and_ingest("hf", path=fixture_path("hf_daily_papers_5items.json"))
    papers = list(Paper.objects.order_by("-upvotes"))
    digest = Digest.objects.create(date=date(2026, 11, 28), status=Digest.Status.SENDING)
    ada = Subscriber.objects.create(email="ada@example.com", status="active", interests="language models")
    picks = [(Pick(papers[3].pk, 1.0, "matches: language models"), papers[3])]
    render.digest_email(digest, ada, papers[:3], picks).send()
    [message] = read_outbox(outbox)
    yield ada, papers[:4], message
    caches.clear_all()


def rating_links(message) -> dict[str, set[tuple[int, str, str]]]:
    """{part: {(paper id, path, more/less)}} for every rating link in each part of the message."""
    text, body = parts(message)
    return {
        name: {(int(m[2]), m[1], m[4]) for m in RATE_LINK.finditer(content)}
        for name, content in (("text", text), ("html", html.unescape(body)))
    }


def test_every_paper_of_a_digest_has_both_links_in_both_parts_signed_for_the_reader_and_that_paper(digest_mail):
    ada, papers, message = digest_mail
    links = rating_links(message)
    assert links["text"] == links["html"]
    assert {(paper_id, kind) for paper_id, _, kind in links["text"]} == {
        (p.pk, kind) for p in papers for kind in ("more", "less")
    }
    for paper_id, path, _ in links["text"]:
        token = path.split("/")[3]
        assert read_token(token, Purpose.RATE, state=rating_state(paper_id)) == ada.pk
        other = next(p.pk for p in papers if p.pk != paper_id)
        assert read_token(token, Purpose.RATE, state=rating_state(other)) is None, "scoped to its paper"
        for purpose in (Purpose.PREFERENCES, Purpose.UNSUBSCRIBE, Purpose.PRIVACY, Purpose.CONFIRM):
            assert read_token(token, purpose) is None


def test_opening_a_link_records_nothing_one_press_rates_and_undo_restores(client, digest_mail):
    ada, _, message = digest_mail
    paper_id, path, _ = next(link for link in rating_links(message)["text"] if link[2] == "less")
    paper = Paper.objects.get(pk=paper_id)
    for response in (client.get(f"{path}?v=less"), client.head(f"{path}?v=less"), client.get(path)):
        assert response.status_code == 200
    page = client.get(f"{path}?v=less").text
    assert html.escape(paper.title) in page and page.count("<button") == 2
    assert not Rating.objects.exists(), "opening the page rates nothing"

    done = client.post(path, {"rating": "less"})
    assert done.status_code == 200 and "Noted: fewer papers like this one" in done.text and "Undo" in done.text
    assert list(Rating.objects.values_list("subscriber_id", "paper_id", "value")) == [(ada.pk, paper_id, -1)]
    assert reader_tokens_in(done.text) == {}, "the page holds no key of its own or another link"

    client.post(path, {"rating": "more"})
    assert Rating.objects.get().value == 1, "rating again changes the rating"
    client.post(path, {"rating": "undo", "previous": "less"})
    assert Rating.objects.get().value == -1, "undo puts back what was there before"
    client.post(path, {"rating": "undo", "previous": "none"})
    assert not Rating.objects.exists()
    assert client.post(path, {"rating": "delete everything"}).status_code == 400


def test_a_token_rates_only_its_own_paper_and_reader(client, digest_mail):
    ada, papers, _ = digest_mail
    mine = make_token(ada.pk, Purpose.RATE, state=rating_state(papers[0].pk))
    attempts = [
        f"/rate/{papers[1].pk}/{mine}/",  # another paper
        f"/rate/{papers[0].pk}/{mine[:-1]}{'A' if mine[-1] != 'A' else 'B'}/",  # forged
        f"/rate/{papers[0].pk}/{make_token(ada.pk, Purpose.PREFERENCES)}/",  # another purpose
        f"/rate/{papers[0].pk}/{make_token(ada.pk, Purpose.RATE)}/",  # no paper at all
        f"/rate/999999/{make_token(ada.pk, Purpose.RATE, state=rating_state(999999))}/",  # no such paper
    ]
    for url in attempts:
        for response in (client.get(url), client.post(url, {"rating": "more"})):
            assert response.status_code == 404 and "This link doesn't work" in response.text, url
    assert client.get(f"/preferences/{mine}/").status_code == 404, "a rating link opens no preferences"
    assert not Rating.objects.exists()
    Subscriber.objects.filter(pk=ada.pk).delete()
    assert client.post(f"/rate/{papers[0].pk}/{mine}/", {"rating": "more"}).status_code == 404


def test_preferences_list_ratings_remove_one_and_forget_all(client, digest_mail):
    ada, papers, _ = digest_mail
    for paper, value in zip(papers, (1, -1, 1), strict=False):
        Rating.objects.create(subscriber=ada, paper=paper, value=value)
    bob = Subscriber.objects.create(email="bob@example.com", status="active")
    Rating.objects.create(subscriber=bob, paper=papers[0], value=1)
    page = f"/preferences/{make_token(ada.pk, Purpose.PREFERENCES)}/"
    shown = client.get(page).text
    assert all(html.escape(p.title) in shown for p in papers[:3]) and html.escape(papers[3].title) not in shown
    assert shown.count("more like this</span>") == 2 and shown.count("less like this</span>") == 1

    removed = client.post(f"{page}ratings/", {"remove": papers[1].pk})
    assert removed.status_code == 302
    assert set(ada.ratings.values_list("paper_id", flat=True)) == {papers[0].pk, papers[2].pk}
    client.post(f"{page}ratings/", {"reset": "all"})
    assert not ada.ratings.exists() and bob.ratings.count() == 1, "only Ada's ratings go"
    assert client.get(f"{page}ratings/").status_code == 405


def test_ratings_are_in_the_data_export_and_go_with_the_account(digest_mail):
    ada, papers, _ = digest_mail
    Rating.objects.create(subscriber=ada, paper=papers[0], value=1)
    Rating.objects.create(subscriber=ada, paper=papers[1], value=-1)
    exported = json.loads(json.dumps(services.export_data(ada)))
    assert {(r["paper"], r["rating"]) for r in exported["ratings"]} == {
        (papers[0].canonical_id, "more"),
        (papers[1].canonical_id, "less"),
    }
    assert exported["ratings_model"] is None, "no model is kept below the threshold or without the embeddings"
    services.delete_for_good(ada.pk)
    assert not Rating.objects.exists()
    assert Paper.objects.filter(pk=papers[0].pk).exists(), "the papers stay"
