"""A reader's whole journey in real headless Chromium: the front page, sign-up, the confirmation email, the
confirm page, preferences, the mailed data link and download, unsubscribe and subscribing again. Screenshots
of every page, desktop and phone, light and dark, go to var/screenshots/."""

import json
import os
import re
from datetime import date
from pathlib import Path

import pytest

from newsletter.models import Digest, DigestPaper
from papers.ingest import fetch_and_ingest
from papers.models import Paper
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, make_token
from tests.conftest import SCREENSHOTS, fixture_path
from tests.helpers import parts, wait_for_outbox

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.clock("2026-11-28T07:00:00+00:00"),
]
ROOT = Path(__file__).resolve().parent.parent
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
UI_TIMEOUT_MS = 10_000  # a loopback page renders in milliseconds; fail fast when an element never appears
UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea')]
    .filter(el => el.type !== 'hidden' && !el.closest('[aria-hidden=true]') && el.labels.length === 0)
    .map(el => el.name)"""


def shoot(page, name: str) -> None:
    """The page as it is now, at desktop and phone width, in light mode; the size is put back after."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways at {label} width"
    page.set_viewport_size(size)


def shoot_dark(page, name: str) -> None:
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-dark.png"), full_page=True)
    page.emulate_media(color_scheme="light")


def sent_digest() -> Digest:
    """Yesterday's digest, from the real HF capture, for the front page's sample."""
    fetch_and_ingest("hf", path=fixture_path("hf_daily_papers_5items.json"))
    digest = Digest.objects.create(date=date(2026, 11, 27), status=Digest.Status.SENT)
    for position, paper in enumerate(Paper.objects.order_by("-upvotes")):
        DigestPaper.objects.create(digest=digest, paper=paper, position=position)
    return digest


def test_reader_subscribes_confirms_sets_preferences_and_unsubscribes(browser, live_server, settings, outbox):
    settings.SITE_URL = live_server.url  # links in the confirmation email point at this server
    digest = sent_digest()
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True, color_scheme="light")
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    page.goto(f"{live_server.url}/")
    assert page.title().startswith("Daily Papers")
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    top = digest.papers.order_by("digestpaper__position").first()
    assert page.get_by_role("link", name=top.title).is_visible(), "the sample shows the latest digest"
    shoot(page, "01-landing")
    shoot_dark(page, "01-landing")

    page.get_by_label("Email address").fill("  Reader@Example.COM ")
    page.get_by_label("Topics you follow").fill("diffusion models, speech synthesis")
    page.locator("summary", has_text="arXiv categories").click()
    page.get_by_label("cs.LG Machine learning").check()
    page.get_by_label("cs.CV Computer vision").check()
    page.get_by_label("Weekly").check()
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    shoot(page, "02-check-inbox")

    reader = Subscriber.objects.get()
    assert (reader.email, reader.status, reader.frequency, sorted(reader.categories)) == (
        "Reader@example.com",
        "pending",
        "weekly",
        ["cs.CV", "cs.LG"],
    )
    [message] = wait_for_outbox(outbox, 1)
    text, html = parts(message)
    confirm_url = re.search(rf"{re.escape(live_server.url)}/confirm/\S+/", text).group(0)
    mail_view = context.new_page()  # the email as a mail client shows it
    mail_view.set_content(html)
    assert mail_view.get_by_role("link", name="Confirm my subscription").get_attribute("href") == confirm_url
    shoot(mail_view, "02-confirmation-email")
    mail_view.close()

    no_script = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    fallback = no_script.new_page()
    fallback.goto(confirm_url)
    fallback.get_by_role("button", name="Confirm my subscription").wait_for()
    shoot(fallback, "03-confirm-without-javascript")
    no_script.close()
    reader.refresh_from_db()
    assert reader.status == "pending", "opening the link alone confirms nothing"

    page.goto(confirm_url)  # scripts on, as a link-scanning mail filter opens it: still nothing happens
    page.get_by_role("heading", name="Confirm your subscription").wait_for()
    reader.refresh_from_db()
    assert reader.status == "pending", "the page does nothing by itself"
    page.get_by_role("button", name="Confirm my subscription").click()
    page.get_by_role("heading", name="You're subscribed").wait_for()
    shoot(page, "04-confirmed")
    reader.refresh_from_db()
    assert reader.status == "active"

    page.goto(f"{live_server.url}/preferences/{make_token(reader.pk, Purpose.PREFERENCES)}/")  # a digest's link
    page.get_by_role("heading", name="Your preferences").wait_for()
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    shoot(page, "05-preferences")
    shoot_dark(page, "05-preferences")
    page.get_by_label("Topics you follow").fill("speech synthesis\nrobot learning")
    page.get_by_label("cs.RO Robotics").check()
    page.get_by_label("Daily", exact=True).check()
    page.get_by_label("Delivery time").select_option(label="06:00")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_label("Papers per digest").fill("5")
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_text("Saved.").wait_for()
    shoot(page, "06-preferences-saved")
    reader.refresh_from_db()
    assert (reader.frequency, reader.delivery_hour, reader.time_zone, reader.papers_per_digest) == (
        "daily",
        6,
        "Europe/Berlin",
        5,
    )
    assert "cs.RO" in reader.categories and reader.interests == "speech synthesis\nrobot learning"

    page.get_by_role("button", name="Email me a link to download or delete my data").click()
    page.get_by_text("We've emailed Reader@example.com a link").wait_for()
    [privacy_email] = [m for m in wait_for_outbox(outbox, 2) if m["Subject"] != message["Subject"]]
    privacy_text, _ = parts(privacy_email)
    page.goto(re.search(rf"{re.escape(live_server.url)}/privacy/\S+/", privacy_text).group(0))
    page.get_by_role("heading", name="Your data").wait_for()
    shoot(page, "07-your-data")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download my data (JSON)").click()
    data = json.loads(Path(download.value.path()).read_text())
    assert data["email"] == "Reader@example.com" and data["time_zone"] == "Europe/Berlin"

    page.goto(f"{live_server.url}/unsubscribe/{make_token(reader.pk, Purpose.UNSUBSCRIBE)}/")  # List-Unsubscribe
    page.get_by_role("heading", name="Unsubscribe from Daily Papers?").wait_for()
    shoot(page, "08-unsubscribe")
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You're unsubscribed").wait_for()
    shoot(page, "09-unsubscribed")
    reader.refresh_from_db()
    assert reader.status == "unsubscribed"
    page.get_by_role("link", name="Subscribe again").click()
    page.get_by_role("button", name="Subscribe again").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    confirmations = [m for m in wait_for_outbox(outbox, 3) if m["Subject"] == message["Subject"]]
    assert len(confirmations) == 2, "subscribing again mails a new confirmation link"
    reader.refresh_from_db()
    assert reader.status == "pending" and reader.interests == "speech synthesis\nrobot learning"

    assert problems == [], f"console errors (a CSP violation shows here): {problems}"

    page.goto(f"{live_server.url}/")
    page.get_by_label("Email address").fill("not an address")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_text("Please enter just one email address").wait_for()
    shoot(page, "10-signup-error")
    context.close()
    assert os.listdir(SCREENSHOTS)
