"""A real browser through an editor's morning: sign in, reject a paper, pin another, preview the digest (the
pinned paper first, the rejected one gone), approve it, and watch the send finish. Screenshots land in
var/screenshots/ for people to look at."""

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from newsletter.models import Delivery, Digest
from papers.models import FetchRun, Moderation, Paper
from tests.admin_support import PASSWORD, make_morning, trending_titles
from tests.conftest import SCREENSHOTS


@pytest.fixture
def page(browser):
    return browser.new_page(viewport={"width": 1400, "height": 1000})


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_editor_rejects_pins_previews_and_approves(live_server, page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    morning = make_morning(timezone.now().date())
    User.objects.create_superuser("editor", "editor@example.com", PASSWORD)
    top = Paper.objects.get(title=trending_titles(morning.digest)[0])
    outsider = Paper.objects.exclude(pk__in=morning.digest.items.values("paper_id")).order_by("pk").first()

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "editor")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.get_by_text("Run the newsletter")).to_be_visible()

    page.get_by_role("link", name="Paper queue").click()
    expect(page.locator("#result_list tbody tr").first).to_contain_text(top.title)
    page.screenshot(path=str(SCREENSHOTS / "admin-queue.png"), full_page=False)

    page.check(f"input[name=_selected_action][value='{top.pk}']")
    page.select_option("select[name=action]", "reject")
    page.click("button[name=index]")
    page.fill("#id_reason", "Duplicate of last week's paper")
    page.click("input[name=apply]")
    expect(page.locator(".messagelist")).to_contain_text("1 paper rejected.")

    page.fill("#searchbar", outsider.canonical_id)
    page.press("#searchbar", "Enter")
    page.check(f"input[name=_selected_action][value='{outsider.pk}']")
    page.select_option("select[name=action]", "pin")
    page.click("button[name=index]")
    expect(page.locator(".messagelist")).to_contain_text("1 paper pinned.")
    assert Paper.objects.get(pk=top.pk).moderation == Moderation.REJECTED

    page.get_by_role("link", name="Preview today's digest").click()
    text = page.locator("#preview-text").inner_text()
    assert outsider.title in text and top.title not in text
    frame = page.frame_locator("iframe.preview-frame")
    expect(frame.locator("body")).to_contain_text(outsider.title)
    html_text = frame.locator("body").inner_text()
    assert top.title not in html_text
    assert html_text.index(outsider.title) < min(
        html_text.index(title) for title in trending_titles(morning.digest) if title != outsider.title
    )
    page.screenshot(path=str(SCREENSHOTS / "admin-preview.png"), full_page=False)

    page.click("#approve-button")
    expect(page.locator("#send-progress")).to_contain_text("2 of 2")
    expect(page.locator("#digest-status")).to_have_text("Sent")
    assert Digest.objects.get(pk=morning.digest.pk).status == Digest.Status.SENT
    assert Delivery.objects.filter(status="sent").count() == 2
    page.screenshot(path=str(SCREENSHOTS / "admin-sent.png"), full_page=False)

    FetchRun.objects.create(
        source="arxiv:cs.CV", status="failed", errors=1, messages=["https://rss.arxiv.org/rss/cs.CV: HTTP 503"]
    )
    page.goto(f"{live_server.url}/admin/newsletter/digest/dashboard/")
    expect(page.locator("svg.chart")).to_have_count(3)
    expect(page.get_by_text("HTTP 503")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "admin-dashboard.png"), full_page=True)
