"""Following an author from a paper's page: the link is the reader's, for that paper only; opening it lists the
authors and records nothing; one POST follows, the page it answers with undoes. A followed author is an
"author:" line of the reader's interests, so their new papers lead "For you"; the preferences page lists
followed authors and removes them."""

import pytest

from papers.ingest import fetch_and_ingest
from papers.models import Paper
from papers.ranking import for_you
from subscribers import follows
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, make_token, rating_state
from tests.conftest import fixture_path

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-11-28T07:00:00+00:00")]


@pytest.fixture
def paper():
    fetch_and_ingest("arxiv-api:cat:cs.CL", path=fixture_path("arxiv_api_atom_5entries.xml"))
    return Paper.objects.get(arxiv_id="2606.13677")


@pytest.fixture
def ada():
    return Subscriber.objects.create(email="ada@example.com", status="active", interests="speech synthesis")


def follow_url(subscriber: Subscriber, paper: Paper, purpose: str = Purpose.FOLLOW) -> str:
    return f"/follow/{paper.pk}/{make_token(subscriber.pk, purpose, rating_state(paper.pk))}/"


def test_the_rating_page_links_to_following_the_papers_authors(client, ada, paper):
    rate = f"/rate/{paper.pk}/{make_token(ada.pk, Purpose.RATE, rating_state(paper.pk))}/"
    page = client.get(rate).content.decode()
    assert f'href="/follow/{paper.pk}/' in page
    follow_page = page.split(f'href="/follow/{paper.pk}/', 1)[1].split('"', 1)[0]
    listed = client.get(f"/follow/{paper.pk}/{follow_page}").content.decode()
    assert all(name in listed for name in paper.authors)


def test_a_digest_cards_follow_link_opens_the_follow_page_for_that_paper(client, ada, paper):
    rate = f"/rate/{paper.pk}/{make_token(ada.pk, Purpose.RATE, rating_state(paper.pk))}/"
    page = client.get(rate + "?v=follow", follow=True)
    assert page.redirect_chain[0][0].startswith(f"/follow/{paper.pk}/")
    assert paper.authors[0] in page.content.decode()
    ada.refresh_from_db()
    assert ada.interests == "speech synthesis"


def test_opening_the_link_follows_nobody(client, ada, paper):
    url = follow_url(ada, paper)
    assert client.get(url).status_code == 200
    assert client.head(url).status_code == 200
    ada.refresh_from_db()
    assert ada.interests == "speech synthesis"


def test_one_post_follows_and_the_answer_undoes_it(client, ada, paper):
    author = paper.authors[0]
    page = client.post(follow_url(ada, paper), {"action": "follow", "author": author})
    assert f"You follow {author}" in page.content.decode()
    ada.refresh_from_db()
    assert ada.interests == f"speech synthesis\nauthor: {author}"
    assert follows.followed(ada.interests) == [author]
    client.post(follow_url(ada, paper), {"action": "follow", "author": author})  # twice: one line
    ada.refresh_from_db()
    assert ada.interests.count("author:") == 1
    client.post(follow_url(ada, paper), {"action": "unfollow", "author": author})
    ada.refresh_from_db()
    assert ada.interests == "speech synthesis"


def test_only_the_papers_own_authors_with_a_follow_link_for_that_paper(client, ada, paper):
    other = Paper.objects.exclude(pk=paper.pk).first()
    assert client.post(follow_url(ada, paper), {"action": "follow", "author": "Somebody Else"}).status_code == 400
    wrong_paper = f"/follow/{other.pk}/{make_token(ada.pk, Purpose.FOLLOW, rating_state(paper.pk))}/"
    assert client.post(wrong_paper, {"action": "follow", "author": other.authors[0]}).status_code == 404
    rate_token = follow_url(ada, paper, Purpose.RATE)
    assert client.post(rate_token, {"action": "follow", "author": paper.authors[0]}).status_code == 404
    mine = follow_url(ada, paper)
    forged = f"{mine[:-2]}{'A' if mine[-2] != 'A' else 'B'}/"
    assert client.post(forged, {"action": "follow", "author": paper.authors[0]}).status_code == 404
    no_paper = f"/follow/{paper.pk}/{make_token(ada.pk, Purpose.FOLLOW)}/"
    assert client.post(no_paper, {"action": "follow", "author": paper.authors[0]}).status_code == 404
    ada.refresh_from_db()
    assert ada.interests == "speech synthesis"


def test_a_followed_authors_new_paper_leads_for_you(client, ada, paper):
    papers = list(Paper.objects.all())
    assert paper.pk not in [pick.paper_id for pick in for_you(ada.interests, papers, 3)]
    client.post(follow_url(ada, paper), {"action": "follow", "author": paper.authors[0]})
    ada.refresh_from_db()
    after = for_you(ada.interests, papers, 3)
    assert after[0].paper_id == paper.pk
    assert paper.authors[0] in after[0].reason


def test_preferences_list_followed_authors_and_remove_one(client, ada):
    ada.interests = "speech synthesis, author: Léa Dupont\nauthor: Yoshua Bengio; cs.CL"
    ada.save()
    token = make_token(ada.pk, Purpose.PREFERENCES)
    page = client.get(f"/preferences/{token}/").content.decode()
    assert "Léa Dupont" in page and "Yoshua Bengio" in page
    client.post(f"/preferences/{token}/authors/", {"remove": "lea dupont"})
    ada.refresh_from_db()
    assert follows.followed(ada.interests) == ["Yoshua Bengio"]
    assert "speech synthesis" in ada.interests and "cs.CL" in ada.interests


def test_names_with_a_comma_are_turned_round_so_the_line_holds_one_author():
    assert follows.clean_name("Dupont, Léa") == "Léa Dupont"
    assert follows.clean_name("  A;\nB  ") == "A B"
