"""The dashboard: subscribers over time, sends per day, bounce and complaint rates against the limits,
fetch runs per source with their errors, and deliveries stuck in "sending"."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from newsletter.backoffice import dashboard
from newsletter.models import Delivery, Digest, SendLease
from papers.models import FetchRun
from subscribers.models import Subscriber
from tests.admin_support import MORNING, TODAY, superuser_client

DASHBOARD = reverse("admin:newsletter_dashboard")


@pytest.fixture
def history(db):
    """A fortnight: 3 readers, 1000 sends yesterday of which 2 bounced and 4 complained, two stuck rows."""
    with time_machine.travel(MORNING, tick=False):
        people = [
            Subscriber.objects.create(email=f"r{i}@example.com", status=s, created_at=MORNING - timedelta(days=d))
            for i, (s, d) in enumerate([("active", 10), ("active", 3), ("unsubscribed", 3)])
        ]
        yesterday = Digest.objects.create(date=TODAY - timedelta(days=1), status=Digest.Status.SENT)
        sent_at = MORNING - timedelta(days=1)
        extra = [Subscriber(email=f"bulk{i}@example.com", status="active") for i in range(997)]
        people += Subscriber.objects.bulk_create(extra)
        statuses = ["bounced"] * 2 + ["complained"] * 4 + ["sent"] * 994
        Delivery.objects.bulk_create(
            Delivery(digest=yesterday, subscriber=p, status=s, sent_at=sent_at)
            for p, s in zip(people, statuses, strict=False)
        )
        today = Digest.objects.create(date=TODAY, status=Digest.Status.SENDING)
        # Two rows of a worker whose lease is gone, one of a live worker's chunk.
        SendLease.objects.create(token="live", digest=today, expires_at=MORNING + timedelta(seconds=30))
        for person, minutes, token in ((people[0], 30, "dead"), (people[1], 20, "dead"), (people[2], 1, "live")):
            Delivery.objects.create(
                digest=today,
                subscriber=person,
                status="sending",
                claimed_at=MORNING - timedelta(minutes=minutes),
                claim_token=token,
            )
        FetchRun.objects.create(source="hf", status="ok", fetched=10, started_at=MORNING - timedelta(hours=2))
        FetchRun.objects.create(
            source="arxiv:cs.LG",
            status="failed",
            errors=1,
            messages=["https://rss.arxiv.org/rss/cs.LG: HTTP 503"],
            started_at=MORNING - timedelta(hours=1),
        )
        yield


def test_dashboard_figures(history):
    with time_machine.travel(MORNING, tick=False):
        context = dashboard.dashboard_context()
    assert context["stuck"] == 2 and context["sending"] == 3
    assert context["rates"]["total"] == 1000
    assert context["rates"]["bounced"] == {"count": 2, "rate": 0.002, "percent": "0.20%", "level": "warn"}
    assert context["rates"]["complained"]["level"] == "over" and context["rates"]["complained"]["percent"] == "0.40%"
    assert [item["source"] for item in context["fetch_runs"]] == ["arxiv:cs.LG", "hf"]
    days = dashboard.day_range(TODAY)
    active = next(s for s in dashboard.subscribers_over_time(days) if s.name == "active")
    assert active.values[-12] == 0 and active.values[-11] == 1 and active.values[-1] == 999
    assert dashboard.sends_per_day(days).values[-2:] == [1000, 0]


def test_dashboard_page_draws_svg_charts_with_the_limits(history):
    client, _ = superuser_client()
    with time_machine.travel(MORNING, tick=False):
        page = client.get(DASHBOARD).content.decode()
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 680 220" role="img" class="chart"') == 3
    assert "0.3% limit" in page and "0.1%" in page
    assert "HTTP 503" in page and 'id="stuck-count">2<' in page
    assert "0.40%" in page and "level-over" in page


def test_chart_escapes_labels_and_handles_no_data():
    days = dashboard.day_range(TODAY, 3)
    svg = dashboard.chart(days, [dashboard.Series("<b>x</b>", "#000", [0, 0, 0])], title='"quoted"')
    assert "&lt;b&gt;x&lt;/b&gt;" in svg and "<b>" not in svg and "&quot;quoted&quot;" in svg
    assert "nan" not in svg.lower()


def test_empty_dashboard_renders(db):
    client, _ = superuser_client()
    page = client.get(DASHBOARD).content.decode()
    assert "No fetch has run yet." in page and "No subscribers yet." in page
