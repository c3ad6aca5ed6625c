"""The digest email in a real browser engine (Debian's Chromium): desktop and 390-px phone, light and dark.
Screenshots land in var/screenshots/ for a person to look at."""

from datetime import date

import pytest
from playwright.sync_api import sync_playwright

from newsletter.emails import cards, render
from newsletter.models import Digest
from papers import caches
from papers.ranking import Pick
from subscribers.models import Subscriber
from tests.conftest import CHROMIUM_ARGS, SCREENSHOTS
from tests.helpers import parts, read_outbox
from tests.render_data import ingest_fixture_papers

pytestmark = pytest.mark.clock("2026-11-28T07:00:00+00:00")

VIEWPORTS = {"desktop": 1024, "phone": 390}


def relative_luminance(css_rgb: str) -> float:
    r, g, b = (int(v) / 255 for v in css_rgb[css_rgb.index("(") + 1 : css_rgb.index(")")].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.mark.browser
@pytest.mark.django_db
def test_the_digest_reads_well_on_desktop_and_phone_in_light_and_dark(chromium_path, outbox):
    caches.clear_all()
    papers = ingest_fixture_papers()
    digest = Digest.objects.create(
        date=date(2026, 11, 28),
        editor_note="**Welcome!** Three papers on *reasoning* stood out today. [Tell us what you think](https://example.org/feedback).",
    )
    reader = Subscriber.objects.create(email="ada@example.com", status=Subscriber.Status.ACTIVE)
    latex = [p for p in papers[5:] if "\\" in p.abstract or "$" in p.title][:2]
    others = [p for p in papers[8:14] if p not in latex][:3]
    picks = [(Pick(p.pk, 1.0, "matches: agents, reinforcement learning"), p) for p in latex + others]
    render.digest_email(digest, reader, papers[:5], picks).send()
    (message,) = read_outbox(outbox)
    html = parts(message)[1]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            for name, width in VIEWPORTS.items():
                for scheme in ("light", "dark"):
                    page = browser.new_page(viewport={"width": width, "height": 1000}, color_scheme=scheme)
                    page.route("**/*", lambda route: route.abort())  # nothing leaves the machine
                    page.set_content(html)
                    page.screenshot(path=SCREENSHOTS / f"digest-{name}-{scheme}.png", full_page=True)
                    page.screenshot(path=SCREENSHOTS / f"digest-{name}-{scheme}-top.png")  # what opens first
                    # No sideways scrolling on a phone; the unsubscribe link is on the page and visible.
                    assert page.evaluate("document.documentElement.scrollWidth") <= width
                    unsubscribe = page.get_by_role("link", name="Unsubscribe")
                    assert unsubscribe.is_visible() and unsubscribe.bounding_box()["width"] > 0
                    card = page.locator("td.card").first
                    background = page.evaluate("getComputedStyle(document.querySelector('.container')).backgroundColor")
                    text = card.locator("h3 a").evaluate("a => getComputedStyle(a).color")
                    if scheme == "dark":
                        assert relative_luminance(background) < 0.2 < relative_luminance(text)
                    else:
                        assert relative_luminance(background) > 0.8 > relative_luminance(text)
                    page.close()
        finally:
            browser.close()
    assert len(list(SCREENSHOTS.glob("digest-*.png"))) >= 4


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_archive_page_reads_well_on_a_phone_and_a_desktop(chromium_path, live_server):
    caches.clear_all()
    papers = ingest_fixture_papers()
    digest = Digest.objects.create(date=date(2026, 11, 28), status=Digest.Status.SENT, editor_note="**Hello!**")
    digest.items.create(paper=papers[0], position=0)
    digest.items.create(paper=papers[1], position=1)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            for name, width in VIEWPORTS.items():
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(f"{live_server.url}/digests/2026-11-28/")
                assert page.get_by_role("link", name=cards.paper_view(papers[0], "").title).is_visible()
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                page.screenshot(path=SCREENSHOTS / f"archive-{name}.png", full_page=True)
                page.close()
        finally:
            browser.close()
