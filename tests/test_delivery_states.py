"""A digest's states and the actions allowed in each live in one table (newsletter/digests/states.py): every
(state, action) pair is taken here through the code editors and workers use, and must end where the table says,
or be refused and change nothing. The admin offers exactly the table's buttons; README prints the table."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from newsletter.backoffice import actions as digest_actions
from newsletter.digests import states as digest_states
from newsletter.digests.build import build_digest
from newsletter.digests.states import NEW, SYSTEM, TABLE, ActionRefused
from newsletter.models import Delivery, Digest, DigestPaper
from newsletter.sending import delivery, scheduling
from papers.models import Paper
from subscribers.models import Subscriber
from tests.admin_support import TODAY, make_morning, superuser_client

pytestmark = pytest.mark.clock("2026-11-28T06:30:00+00:00")
Status = Digest.Status
ROOT = Path(__file__).resolve().parent.parent
# Actions an editor takes from the admin: refused, they say why.
SAYS_WHY = {"refresh", "approve", "pause", "resume", "cancel", "retry_failed", "send_test"}
# Where the table gives several outcomes, the one the data below leads to.
CHOSEN = {
    (NEW, "build"): Status.DRAFT,  # the day has papers
    (Status.DRAFT, "refresh"): Status.DRAFT,
    (Status.SKIPPED, "refresh"): Status.SKIPPED,  # still no papers for it
    (Status.PAUSED, "resume"): Status.SENDING,  # paused mid-send (an approved one paused: the test below)
}


def in_state(state: str) -> Digest | None:
    """Today's digest in this state, as it gets there: two readers; one delivered, one queued when under way."""
    if state == NEW:
        return None
    digest = build_digest(TODAY)
    ada, bob = Subscriber.objects.filter(status="active").order_by("email")
    rows = {
        Status.SENDING: ("sent", "queued"),
        Status.PAUSED: ("sent", "queued"),
        Status.SENT: ("sent", "sent"),
        Status.CANCELLED: ("sent", "skipped"),
    }.get(state, ())
    for reader, status in zip((ada, bob), rows, strict=False):
        Delivery.objects.create(digest=digest, subscriber=reader, status=status)
    if state == Status.SKIPPED:
        DigestPaper.objects.filter(digest=digest).delete()
        Paper.objects.update(listed=timezone.now().date() - timedelta(days=30))
    started = timezone.now() if rows else None
    Digest.objects.filter(pk=digest.pk).update(status=state, send_started_at=started)
    return Digest.objects.get(pk=digest.pk)


def prepare(action: str, digest: Digest, settings) -> None:
    """What makes the table's outcome the one to expect: someone to send to, nothing left open to finish, a
    failure to retry, a failure rate past the threshold, review mode with its deadline passed."""
    if action == "start":
        Subscriber.objects.create(email="late@example.com", status="active")
    if action == "finish":
        Delivery.objects.filter(digest=digest, status="queued").update(status="sent")
    if action == "retry_failed":
        Delivery.objects.filter(digest=digest, status="sent").update(status="failed", error="550 no such user")
    settings.DELIVERY_PAUSE_MIN_OUTCOMES, settings.DELIVERY_PAUSE_ERROR_RATE = 1, -1.0
    settings.MODERATION_MODE = "review" if action == "skip" else "auto"
    settings.REVIEW_MISSED_POLICY = "skip"


def perform(action: str, digest: Digest | None) -> None:
    """The action through the code that takes it in the product."""
    pk = digest.pk if digest else None
    editor = {
        "refresh": digest_actions.refresh,
        "approve": digest_actions.approve,
        "pause": digest_actions.pause,
        "resume": digest_actions.resume,
        "cancel": digest_actions.cancel,
        "retry_failed": digest_actions.retry_failed,
    }
    if action in editor:
        editor[action](pk)
    elif action == "build":
        build_digest(TODAY)
    elif action == "rebuild":  # taken by build_digest when a skipped day's papers arrive
        digest_states.move(pk, "rebuild", SYSTEM)
    elif action == "skip":
        deadline = datetime(TODAY.year, TODAY.month, TODAY.day, 23, tzinfo=UTC)
        digest_actions.apply_review_deadline(TODAY, now=deadline)
    elif action == "start":
        delivery.start_send(pk, everyone=True)
    elif action == "self_pause":
        delivery.pause_if_failing(pk)
    elif action == "finish":
        delivery.finish_if_done(pk)
    elif action == "send_test":
        digest_actions.send_test(digest, Subscriber.objects.first(), "editor@example.com")
    else:
        raise AssertionError(f"no way to take {action}: give it one here")


def test_every_state_and_action_ends_where_the_table_says(db, settings, outbox):
    make_morning()
    walked = []
    for state in [NEW, *Status.values]:
        for action in TABLE:
            with transaction.atomic():
                digest = in_state(state)
                if digest is None and action != "build":
                    transaction.set_rollback(True)
                    continue  # only "build" starts from nothing
                if digest is not None:
                    prepare(action, digest, settings)
                refused = None
                try:
                    perform(action, digest)
                except ActionRefused as exc:
                    refused = exc
                now = Digest.objects.filter(date=TODAY).values_list("status", flat=True).first() or NEW
                steps = TABLE[action].steps
                expected = (CHOSEN.get((state, action)) or steps[state][0]) if state in steps else state
                assert now == expected, f"{state} --{action}--> {now}, the table says {expected}"
                if state not in steps and action in SAYS_WHY:
                    assert refused is not None and "cannot make it" in str(refused), (state, action)
                if state in steps:
                    assert refused is None, (state, action, refused)
                walked.append((state, action))
                transaction.set_rollback(True)
    assert len(walked) == 1 + len(Status.values) * len(TABLE)


def test_pausing_and_resuming_an_approved_digest_before_anyone_is_due_does_not_mark_it_sent(
    db, outbox, django_capture_on_commit_callbacks
):
    morning = make_morning()
    Subscriber.objects.update(delivery_hour=8)  # due at 08:00 UTC, not now
    with django_capture_on_commit_callbacks(execute=True):
        digest_actions.approve(morning.digest.pk)
        digest_actions.pause(morning.digest.pk)
        digest = digest_actions.resume(morning.digest.pk)
    assert digest.status == Status.APPROVED and not Delivery.objects.exists()  # it used to end "sent", to nobody
    with django_capture_on_commit_callbacks(execute=True):
        scheduling.deliver_due(datetime(TODAY.year, TODAY.month, TODAY.day, 8, 5, tzinfo=UTC))
    assert Digest.objects.get(pk=digest.pk).status == Status.SENT
    assert Delivery.objects.filter(status="sent").count() == 2


def test_the_admin_offers_the_buttons_the_table_allows(db):
    make_morning()
    client, _ = superuser_client()
    for state in Status.values:
        with transaction.atomic():
            digest = in_state(state)
            page = client.get(reverse("admin:newsletter_digest_preview", args=[digest.pk])).content.decode()
            offered = {
                name
                for name in TABLE
                if reverse("admin:newsletter_digest_act", args=[digest.pk, name]) + '"' in page
                or reverse("admin:newsletter_digest_act", args=[digest.pk, name]) + "?" in page
            }
            assert offered == set(digest_states.editor_actions(state)), state
            transaction.set_rollback(True)


def test_readme_prints_the_table():
    assert digest_states.markdown() in (ROOT / "README.md").read_text()
