"""Never the same paper twice to one reader: two consecutive daily runs of the real pipeline, papers arriving
on both days, the delivery ledger as the memory of what each reader was sent."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from django.core.management import call_command

from newsletter.models import Delivery, Digest
from newsletter.sending.history import already_sent
from papers.ingest import fetch_and_ingest
from papers.models import Paper
from subscribers.models import Subscriber
from tests.conftest import fixture_path
from tests.helpers import parts, read_outbox

DAY1 = date(2026, 11, 26)
DAY2 = DAY1 + timedelta(days=1)
MORNING = time(7, 0, tzinfo=UTC)
SECOND_DAY_FEEDS = [
    "arxiv_rss2_cs.LG_3items.xml",
    "arxiv_rss2_cs.CL_3items.xml",
    "arxiv_rss2_cs.AI_3items.xml",
    "arxiv_rss_atom_cs.AI_7items.xml",
]


@pytest.fixture(autouse=True)
def _tfidf_only(settings):
    settings.RANKING_EMBEDDINGS = "off"


@pytest.mark.django_db(transaction=True)
def test_nothing_is_repeated_across_two_consecutive_digests(outbox):
    readers = {
        "ada@example.com": "learning, language models, reinforcement learning",
        "bob@example.com": "continual learning, speech, agents",
        "cy@example.com": "",
    }
    for email, interests in readers.items():
        Subscriber.objects.create(email=email, status="active", interests=interests, papers_per_digest=10)
    with time_machine.travel(datetime.combine(DAY1, MORNING), tick=False):
        call_command("run_daily", "--offline", "--date", DAY1.isoformat())
    first_day = {m["To"]: parts(m)[0] for m in read_outbox(outbox)}
    for path in outbox.glob("*.eml"):
        path.unlink()
    with time_machine.travel(datetime.combine(DAY2, MORNING), tick=False):
        for feed in SECOND_DAY_FEEDS:
            fetch_and_ingest("arxiv", path=fixture_path(feed))
        call_command("run_daily", "--offline", "--date", DAY2.isoformat())
    second_day = {m["To"]: parts(m)[0] for m in read_outbox(outbox)}
    assert set(first_day) == set(second_day) == set(readers)
    assert Digest.objects.filter(status=Digest.Status.SENT).count() == 2

    for subscriber in Subscriber.objects.all():
        sent = {
            d.digest.date: d.paper_ids
            for d in Delivery.objects.filter(subscriber=subscriber, status=Delivery.Status.SENT).select_related(
                "digest"
            )
        }
        assert sent[DAY1] and sent[DAY2], subscriber.email
        assert not set(sent[DAY1]) & set(sent[DAY2]), subscriber.email
        assert len(sent[DAY2]) == len(set(sent[DAY2]))  # nor twice in one digest
        # What the reader saw: no title from yesterday's email is in today's.
        for title in Paper.objects.filter(pk__in=sent[DAY1]).values_list("title", flat=True):
            assert title not in second_day[subscriber.email]
    # Readers with interests got For-you papers both days, day two's drawn partly from day one's candidates.
    ada = Subscriber.objects.get(email="ada@example.com")
    assert "FOR YOU" in first_day[ada.email] and "FOR YOU" in second_day[ada.email]
    assert already_sent([ada.pk], DAY1, other_than=DAY2)[ada.pk] == set(
        Delivery.objects.get(subscriber=ada, digest__date=DAY1).paper_ids
    )


@pytest.mark.django_db
def test_already_sent_reads_the_ledger_by_reader_and_date():
    a = Subscriber.objects.create(email="a@example.com", status="active")
    b = Subscriber.objects.create(email="b@example.com", status="active")
    old, yesterday, today, tomorrow = (Digest.objects.create(date=DAY2 - timedelta(days=n)) for n in (40, 1, 0, -1))
    Delivery.objects.create(digest=old, subscriber=a, paper_ids=[1])
    Delivery.objects.create(digest=yesterday, subscriber=a, paper_ids=[2, 3], status="sent")
    Delivery.objects.create(digest=yesterday, subscriber=b, paper_ids=[], status="failed")
    Delivery.objects.create(digest=today, subscriber=a, paper_ids=[4], status="sent")
    assert already_sent([a.pk, b.pk], DAY2 - timedelta(days=30), other_than=DAY2) == {a.pk: {2, 3}, b.pk: set()}
    assert already_sent([a.pk], DAY2 - timedelta(days=60)) == {a.pk: {1, 2, 3, 4}}
    # A catch-up send of a missed day: what the days after it sent counts too.
    Delivery.objects.create(digest=tomorrow, subscriber=a, paper_ids=[5], status="sent")
    assert already_sent([a.pk], DAY2 - timedelta(days=30), other_than=DAY2)[a.pk] == {2, 3, 5}


@pytest.mark.django_db(transaction=True)
def test_a_later_copy_of_a_paper_sent_days_ago_is_not_sent_again(outbox):
    """Ada was sent a paper a week ago; it has left the candidate window, and today the same work arrives
    under another id (a new version on another source). Ada does not get it again; Bob, who never had it,
    gets it at the top of the trending section."""
    title = "Scaling Test-Time Compute for Continual Learning Agents"
    ada = Subscriber.objects.create(email="ada@example.com", status="active", interests="continual learning, agents")
    bob = Subscriber.objects.create(email="bob@example.com", status="active", interests="continual learning, agents")
    week_ago = DAY2 - timedelta(days=7)
    with time_machine.travel(datetime.combine(week_ago, MORNING), tick=False):
        original = Paper.objects.create(
            canonical_id="arxiv:2611.00001", title=title, abstract="Agents that keep learning."
        )
        earlier = Digest.objects.create(date=week_ago, status=Digest.Status.SENT)
        Delivery.objects.create(digest=earlier, subscriber=ada, status=Delivery.Status.SENT, paper_ids=[original.pk])
    with time_machine.travel(datetime.combine(DAY2, MORNING), tick=False):
        copy = Paper.objects.create(
            canonical_id="hf:scaling-test-time-compute", title=f"{title} (v2)", abstract="Agents that keep learning.",
            upvotes=5000,
        )  # fmt: skip
        call_command("run_daily", "--offline", "--date", DAY2.isoformat())
    today = {d.subscriber_id: d.paper_ids for d in Delivery.objects.filter(digest__date=DAY2)}
    assert copy.pk in today[bob.pk]
    assert today[ada.pk] and copy.pk not in today[ada.pk]
    emails = {m["To"]: parts(m)[0] for m in read_outbox(outbox)}
    assert title in emails[bob.email] and title not in emails[ada.email]
