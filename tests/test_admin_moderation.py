"""The paper queue: ranked by trending score, filtered, searched; approve, reject, pin, feature, add, merge."""

from datetime import date

import pytest
import time_machine
from django.urls import reverse

from newsletter.backoffice.actions import refresh_draft
from newsletter.models import AuditEntry, Delivery, Digest, DigestPaper
from papers import moderation
from papers.models import Moderation, Paper
from papers.ranking import trending_score
from tests.admin_support import MORNING, make_morning, superuser_client, trending_titles
from tests.conftest import fixture_path

QUEUE = reverse("admin:papers_paper_changelist")


@pytest.fixture
def morning(db):
    with time_machine.travel(MORNING, tick=False):
        yield make_morning()


def queue_ids(response) -> list[int]:
    return [paper.pk for paper in response.context["cl"].result_list]


def act(client, action: str, papers: list[Paper], **extra):
    data = {"action": action, "_selected_action": [p.pk for p in papers], **extra}
    return client.post(QUEUE, data, follow=True)


def test_queue_lists_todays_candidates_by_trending_score(morning):
    client, _ = superuser_client()
    response = client.get(QUEUE)
    ids = queue_ids(response)
    papers = Paper.objects.in_bulk(ids)
    scores = [trending_score(papers[pk]) for pk in ids]
    assert len(ids) == 50  # first page of today's candidates
    assert scores == sorted(scores, reverse=True)
    top = max(Paper.objects.all(), key=trending_score)
    assert ids[0] == top.pk
    assert top.title in response.content.decode()


def test_queue_shows_only_todays_window_until_asked_for_all(morning):
    old = Paper.objects.create(canonical_id="2001.00001", title="An old paper", listed=date(2025, 11, 28))
    client, _ = superuser_client()
    assert old.pk not in queue_ids(client.get(QUEUE + "?queue=today&moderation__exact=pending"))
    assert old.pk in queue_ids(client.get(QUEUE + "?queue=all&q=old+paper"))
    # A search reaches past today's window without the editor having to switch the queue.
    assert queue_ids(client.get(QUEUE + "?q=2001.00001")) == [old.pk]


def test_queue_search_and_filters(morning):
    client, _ = superuser_client()
    paper = Paper.objects.exclude(authors=[]).first()
    author = paper.authors[0]
    assert paper.pk in queue_ids(client.get(QUEUE, {"q": author}))
    assert queue_ids(client.get(QUEUE, {"q": paper.canonical_id})) == [paper.pk]
    hf_ids = queue_ids(client.get(QUEUE, {"source": "hf", "queue": "all"}))
    assert hf_ids and all("hf" in Paper.objects.get(pk=pk).sources for pk in hf_ids)
    assert set(hf_ids) == set(Paper.objects.filter(sources__icontains='"hf"').values_list("pk", flat=True))
    category = Paper.objects.exclude(categories=[]).first().categories[0]
    in_category = queue_ids(client.get(QUEUE, {"category": category, "queue": "all"}))
    assert in_category and all(category in Paper.objects.get(pk=pk).categories for pk in in_category)


def test_reject_asks_for_a_reason_then_keeps_the_paper_out_of_the_draft(morning):
    client, user = superuser_client()
    victim = Paper.objects.get(title=trending_titles(morning.digest)[0])
    form_page = act(client, "reject", [victim])
    assert b"Say why" in form_page.content or b"Reason" in form_page.content
    assert Paper.objects.get(pk=victim.pk).moderation == Moderation.PENDING

    empty = act(client, "reject", [victim], apply="1", reason="   ")
    assert "This field is required." in empty.content.decode()
    assert Paper.objects.get(pk=victim.pk).moderation == Moderation.PENDING

    done = act(client, "reject", [victim], apply="1", reason="Retracted <b>by authors</b>")
    assert "1 paper rejected." in done.content.decode()
    victim.refresh_from_db()
    assert victim.moderation == Moderation.REJECTED and victim.rejection_reason == "Retracted <b>by authors</b>"
    assert victim.title not in trending_titles(morning.digest)
    entry = AuditEntry.objects.get(action="reject")
    assert (entry.actor, entry.user, entry.target_id, entry.detail) == (
        "boss",
        user,
        victim.pk,
        "Retracted <b>by authors</b>",
    )
    trail = client.get(reverse("admin:newsletter_auditentry_changelist")).content.decode()
    assert f'<a href="{reverse("admin:papers_paper_change", args=[victim.pk])}">' in trail
    # The reason is shown to editors as text, never as markup.
    page = client.get(QUEUE, {"moderation__exact": "rejected"}).content.decode()
    assert "Retracted &lt;b&gt;by authors&lt;/b&gt;" in page


def test_pin_puts_a_paper_first_and_approve_feature_are_recorded(morning):
    client, _ = superuser_client()
    low = min(Paper.objects.all(), key=trending_score)
    assert low.title not in trending_titles(morning.digest)
    act(client, "pin", [low])
    assert trending_titles(morning.digest)[0] == low.title
    assert queue_ids(client.get(QUEUE))[0] == low.pk

    others = list(Paper.objects.exclude(pk=low.pk)[:3])
    assert "3 papers approved." in act(client, "approve", others).content.decode()
    assert "3 papers featured." in act(client, "feature", others).content.decode()
    assert Paper.objects.filter(moderation=Moderation.APPROVED, featured=True).count() == 3
    act(client, "unpin", [low])
    act(client, "unfeature", others[:1])
    assert not Paper.objects.get(pk=low.pk).pinned and not Paper.objects.get(pk=others[0].pk).featured
    assert list(AuditEntry.objects.values_list("action", flat=True).order_by("pk")) == [
        "pin",
        *["approve"] * 3,
        *["feature"] * 3,
        "unpin",
        "unfeature",
    ]


def test_titles_are_escaped_in_the_queue(morning):
    Paper.objects.create(canonical_id="2611.99999", title="<script>alert(1)</script> Attack", first_seen=MORNING)
    client, _ = superuser_client()
    page = client.get(QUEUE, {"q": "Attack"}).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Attack" in page and "<script>alert(1)" not in page


def test_add_paper_by_arxiv_url_reads_the_arxiv_answer(db):
    paper, created = moderation.add_paper(
        "https://arxiv.org/abs/2606.13677v1", path=fixture_path("arxiv_api_atom_5entries.xml")
    )
    assert created and paper.title == "Mana: Dexterous Manipulation of Articulated Tools"
    assert paper.canonical_id == "2606.13677" and "Guanya Shi" in paper.authors
    assert Paper.objects.count() == 1  # only the asked-for entry, not the whole answer
    again, created = moderation.add_paper("arXiv:2606.13677", path=fixture_path("arxiv_api_atom_5entries.xml"))
    assert again.pk == paper.pk and not created
    with pytest.raises(moderation.ModerationError, match=r"arXiv has no paper 2699\.00001"):
        moderation.add_paper("2699.00001", path=fixture_path("arxiv_api_atom_5entries.xml"))
    with pytest.raises(moderation.ModerationError, match="failed"):
        moderation.add_paper("2699.00002", path=fixture_path("does-not-exist.xml"))
    with pytest.raises(moderation.ModerationError, match="failed"):
        moderation.add_paper("2699.00003", path=fixture_path("hf_daily_papers_3items.json"))


def test_add_from_arxiv_page_explains_bad_input_and_finds_existing_papers(db):
    client, _ = superuser_client()
    url = reverse("admin:papers_paper_add_arxiv")
    bad = client.post(url, {"reference": "<img src=x onerror=alert(1)>"})
    assert "is not an arXiv id or arxiv.org URL" in bad.content.decode()
    assert "<img src=x" not in bad.content.decode()
    paper = Paper.objects.create(canonical_id="2606.13677", arxiv_id="2606.13677", title="Mana")
    found = client.post(url, {"reference": "https://arxiv.org/pdf/2606.13677v2"})
    assert found.status_code == 302 and found.url == reverse("admin:papers_paper_change", args=[paper.pk])


def test_merge_keeps_one_paper_and_moves_every_reference(morning):
    client, _ = superuser_client()
    keep, dup = Paper.objects.filter(sources=["json"])[:2]
    dup.sources, dup.upvotes, dup.code_url = ["hf"], 42, "https://github.com/example/code"
    dup.save()
    digest = morning.digest
    DigestPaper.objects.filter(digest=digest).delete()
    DigestPaper.objects.create(digest=digest, paper=dup, position=0)
    old_day = Digest.objects.create(date=digest.date.replace(day=1), status=Digest.Status.SENT)
    DigestPaper.objects.create(digest=old_day, paper=keep, position=0)
    DigestPaper.objects.create(digest=old_day, paper=dup, position=1)
    delivery = Delivery.objects.create(digest=old_day, subscriber=morning.ada, paper_ids=[keep.pk, dup.pk, 99999])

    page = act(client, "merge", [keep, dup])
    assert "Keep:" in page.content.decode()
    act(client, "merge", [keep, dup], apply="1", keep=keep.pk)

    assert not Paper.objects.filter(pk=dup.pk).exists()
    keep.refresh_from_db()
    assert keep.sources == ["json", "hf"] and keep.upvotes == 42 and keep.code_url == "https://github.com/example/code"
    assert list(old_day.items.values_list("paper_id", flat=True)) == [keep.pk]
    delivery.refresh_from_db()
    assert delivery.paper_ids == [keep.pk, 99999]
    assert AuditEntry.objects.get(action="merge").detail == f"merged {dup.canonical_id}"
    assert "Select at least two" in act(client, "merge", [keep]).content.decode()


def test_editing_a_paper_by_hand_is_recorded(morning):
    client, _ = superuser_client()
    paper = Paper.objects.first()
    url = reverse("admin:papers_paper_change", args=[paper.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form.initial.get(name) for name in form.fields}
    data.update(authors='["A. Author"]', categories="[]", ai_keywords="[]", title="Corrected title")
    data = {k: ("" if v is None else v) for k, v in data.items() if not isinstance(v, bool) or v}
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert AuditEntry.objects.get(action="edit").detail.startswith("changed ")


def test_refresh_leaves_an_approved_digest_alone(morning):
    morning.digest.status = Digest.Status.APPROVED
    morning.digest.save()
    before = trending_titles(morning.digest)
    Paper.objects.filter(title=before[0]).update(moderation=Moderation.REJECTED)
    assert refresh_draft(morning.digest) == []
    assert trending_titles(morning.digest) == before


def test_the_papers_own_page_offers_the_queue_actions(morning):
    client, _ = superuser_client()
    paper = Paper.objects.first()
    page = client.get(reverse("admin:papers_paper_change", args=[paper.pk])).content.decode()
    assert 'name="action" value="pin"' in page and f'name="_selected_action" value="{paper.pk}"' in page
    client.post(QUEUE, {"action": "pin", "_selected_action": paper.pk, "index": "0"})
    assert Paper.objects.get(pk=paper.pk).pinned
    assert (
        'name="action" value="unpin"'
        in client.get(reverse("admin:papers_paper_change", args=[paper.pk])).content.decode()
    )
