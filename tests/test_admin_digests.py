"""Digest review and send control: preview as a reader, test send, approve, pause, resume, cancel, the ledger,
the editor's note, and the review-mode deadline."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from newsletter.backoffice import actions as digest_actions
from newsletter.models import AuditEntry, Delivery, Digest
from newsletter.sending import scheduling
from papers.models import Moderation, Paper
from subscribers.models import Subscriber
from tests.admin_support import MORNING, TODAY, make_morning, superuser_client, trending_titles
from tests.helpers import parts, read_outbox


@pytest.fixture
def morning(db):
    with time_machine.travel(MORNING, tick=False):
        yield make_morning()


def preview(client, digest, **params):
    return client.get(reverse("admin:newsletter_digest_preview", args=[digest.pk]), params)


def act(client, digest, name: str, **params):
    url = reverse("admin:newsletter_digest_act", args=[digest.pk, name])
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(url, follow=True)


def test_preview_is_the_email_a_chosen_reader_would_get(morning):
    client, _ = superuser_client()
    page = preview(client, morning.digest, subscriber="ADA@example.com")
    html = page.content.decode()
    context = page.context
    assert context["subscriber"] == morning.ada
    assert "matches: reinforcement learning" in context["message"].body
    assert "Trending today" in context["html"]
    # The HTML is shown in a sandboxed frame, escaped into srcdoc: it cannot run script or reach the admin.
    assert '<iframe class="preview-frame" sandbox=""' in html and 'srcdoc="&lt;' in html
    for title in trending_titles(morning.digest):
        assert title in context["message"].body
    bob_view = preview(client, morning.digest, subscriber="bob@example.com").context["message"].body
    assert "matches:" not in bob_view


def test_send_a_test_to_me_uses_the_real_backend_and_writes_no_ledger_row(morning, outbox):
    client, _ = superuser_client()
    page = act(client, morning.digest, "send_test", subscriber="ada@example.com")
    assert "test sent to boss@example.com (as ada@example.com sees it)" in page.content.decode()
    [message] = read_outbox(outbox)
    assert message["To"] == "boss@example.com" and message["Subject"].strip().startswith("[Test] ")
    assert "matches: reinforcement learning" in parts(message)[0]
    assert not Delivery.objects.exists()
    assert Digest.objects.get(pk=morning.digest.pk).status == Digest.Status.DRAFT


def test_send_test_without_an_email_address_says_so(morning, outbox):
    client, user = superuser_client()
    user.email = ""
    user.save()
    page = act(client, morning.digest, "send_test")
    assert "Your account has no email address" in page.content.decode()
    assert read_outbox(outbox) == []


def test_approve_sends_to_every_active_reader_and_shows_progress(morning, outbox, django_capture_on_commit_callbacks):
    client, user = superuser_client()
    with django_capture_on_commit_callbacks(execute=True):
        page = act(client, morning.digest, "approve")
    assert "approved; each reader gets it at their delivery hour" in page.content.decode()
    digest = Digest.objects.get(pk=morning.digest.pk)
    assert digest.status == Digest.Status.SENT
    assert sorted(m["To"] for m in read_outbox(outbox)) == ["ada@example.com", "bob@example.com"]
    progress = preview(client, digest)
    assert progress.context["done"] == 2 and progress.context["total"] == 2
    assert "2 of 2</strong> done (100%)" in progress.content.decode()
    assert AuditEntry.objects.filter(action="approve", user=user, target_id=digest.pk).exists()
    again = act(client, digest, "approve")
    assert "is sent: cannot make it approved" in again.content.decode()
    assert len(read_outbox(outbox)) == 2


def test_pause_resume_and_cancel_move_the_send(morning, outbox, django_capture_on_commit_callbacks):
    digest = morning.digest
    digest.status = Digest.Status.SENDING
    digest.save()
    for reader in (morning.ada, morning.bob):
        Delivery.objects.create(digest=digest, subscriber=reader)
    client, _ = superuser_client()
    assert "paused" in act(client, digest, "pause").content.decode()
    assert Digest.objects.get(pk=digest.pk).status == Digest.Status.PAUSED
    assert "Resume" in preview(client, digest).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        act(client, digest, "resume")
    assert Digest.objects.get(pk=digest.pk).status == Digest.Status.SENT
    assert len(read_outbox(outbox)) == 2
    refused = act(client, digest, "cancel")
    assert "cannot make it cancelled" in refused.content.decode()
    assert [e.action for e in AuditEntry.objects.order_by("pk")] == ["pause", "resume"]


def test_cancel_stops_for_good_and_says_why_in_the_ledger(morning, outbox):
    digest = morning.digest
    digest.status = Digest.Status.PAUSED
    digest.save()
    Delivery.objects.create(digest=digest, subscriber=morning.ada)
    Delivery.objects.create(digest=digest, subscriber=morning.bob, status=Delivery.Status.SENT)
    client, _ = superuser_client()
    act(client, digest, "cancel")
    assert Digest.objects.get(pk=digest.pk).status == Digest.Status.CANCELLED
    ada_row = Delivery.objects.get(subscriber=morning.ada)
    assert (ada_row.status, ada_row.error) == ("skipped", "send cancelled")
    assert "cannot make it sending" in act(client, digest, "resume").content.decode()
    assert read_outbox(outbox) == []


def test_actions_only_by_post(morning):
    client, _ = superuser_client()
    response = client.get(reverse("admin:newsletter_digest_act", args=[morning.digest.pk, "approve"]))
    assert response.status_code == 405
    assert Digest.objects.get(pk=morning.digest.pk).status == Digest.Status.DRAFT
    bogus = client.post(reverse("admin:newsletter_digest_act", args=[morning.digest.pk, "delete"]))
    assert bogus.status_code == 403


def test_ledger_summary_counts_and_errors_and_drill_down_to_one_reader(morning):
    digest = morning.digest
    Delivery.objects.create(digest=digest, subscriber=morning.ada, status="failed", error="SMTPDataError: 554 no")
    Delivery.objects.create(digest=digest, subscriber=morning.bob, status="bounced", error="hard bounce")
    older = Digest.objects.create(date=TODAY - timedelta(days=1), status=Digest.Status.SENT)
    Delivery.objects.create(digest=older, subscriber=morning.ada, status="sent")
    summary = digest_actions.ledger_summary(digest)
    assert summary["counts"]["failed"] == 1 and summary["counts"]["bounced"] == 1 and summary["total"] == 2
    assert {(e["status"], e["error"], e["n"]) for e in summary["errors"]} == {
        ("failed", "SMTPDataError: 554 no", 1),
        ("bounced", "hard bounce", 1),
    }
    client, _ = superuser_client()
    change = client.get(reverse("admin:newsletter_digest_change", args=[digest.pk])).content.decode()
    assert "SMTPDataError: 554 no" in change and f"?digest__id__exact={digest.pk}&amp;status__exact=failed" in change
    history = client.get(reverse("admin:newsletter_delivery_changelist"), {"subscriber__exact": morning.ada.pk})
    rows = list(history.context["cl"].result_list)
    assert {r.digest_id for r in rows} == {digest.pk, older.pk} and {r.subscriber_id for r in rows} == {morning.ada.pk}


def test_editor_note_is_markdown_rendered_and_sanitized(morning):
    client, user = superuser_client()
    url = reverse("admin:newsletter_digest_change", args=[morning.digest.pk])
    note = "Read **this** first.\n\n<script>alert(1)</script> [link](javascript:alert(1))"
    data = {
        "editor_note": note,
        "items-TOTAL_FORMS": "0",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000",
    }
    response = client.post(url, data)
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "Read <strong>this</strong> first." in page
    assert "<script>alert(1)" not in page and 'href="javascript' not in page
    assert AuditEntry.objects.filter(action="edit_note", user=user).exists()
    assert "<strong>this</strong>" in preview(client, morning.digest).content.decode()


def test_todays_digest_shortcut_previews_but_never_builds_early(db):
    with time_machine.travel(MORNING, tick=False):
        morning = make_morning()
        client, _ = superuser_client()
        response = client.get(reverse("admin:newsletter_digest_today"))
        assert response.url == reverse("admin:newsletter_digest_preview", args=[morning.digest.pk])
        Digest.objects.all().delete()
        page = client.get(reverse("admin:newsletter_digest_today"), follow=True).content.decode()
    assert "No digest for today yet" in page
    assert not Digest.objects.exists()


def test_review_mode_draft_grows_as_editors_approve(morning, settings):
    settings.MODERATION_MODE = "review"
    with time_machine.travel(MORNING, tick=False):
        assert digest_actions.refresh_draft(morning.digest) == []
        assert Digest.objects.get(pk=morning.digest.pk).status == Digest.Status.SKIPPED
        client, _ = superuser_client()
        chosen = list(Paper.objects.order_by("pk")[:2])
        client.post(
            reverse("admin:papers_paper_changelist"),
            {"action": "approve", "_selected_action": [p.pk for p in chosen]},
        )
    digest = Digest.objects.get(pk=morning.digest.pk)
    assert digest.status == Digest.Status.DRAFT
    assert sorted(trending_titles(digest)) == sorted(p.title for p in chosen)


@pytest.mark.parametrize(
    ("mode", "policy", "hour", "outcome", "status", "sent"),
    [
        ("auto", "skip", 9, "not-review-mode", "draft", 0),
        ("review", "skip", 6, "not-due", "draft", 0),
        ("review", "skip", 7, "skipped", "skipped", 0),
        ("review", "trending_only", 7, "trending-only", "sent", 2),
    ],
)
def test_review_deadline_policy(
    morning, settings, outbox, django_capture_on_commit_callbacks, mode, policy, hour, outcome, status, sent
):
    settings.MODERATION_MODE, settings.REVIEW_MISSED_POLICY, settings.REVIEW_DEADLINE_HOUR = mode, policy, 7
    Paper.objects.filter(pk=Paper.objects.order_by("pk")[0].pk).update(moderation=Moderation.REJECTED)
    rejected = Paper.objects.get(moderation=Moderation.REJECTED)
    Subscriber.objects.update(delivery_hour=hour)  # readers due at that hour get what the policy lets out
    with (
        time_machine.travel(MORNING.replace(hour=hour, minute=0), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert digest_actions.apply_review_deadline(TODAY) == outcome
    digest = Digest.objects.get(pk=morning.digest.pk)
    assert digest.status == status
    assert len(read_outbox(outbox)) == sent
    if status == "sent":
        assert rejected.title not in trending_titles(digest) and len(trending_titles(digest)) == 5
        assert AuditEntry.objects.get(action="deadline_trending_only").actor == "system"
    if status == "skipped":
        assert AuditEntry.objects.get(action="deadline_skip").actor == "system"


@pytest.mark.parametrize(
    ("mode", "status", "ready"),
    [
        ("auto", "draft", True),
        ("review", "draft", False),
        ("review", "approved", True),
        ("review", "paused", False),
        ("auto", "cancelled", False),
        ("review", "sent", True),  # readers whose hour comes later still get it
    ],
)
def test_ready_to_send_waits_for_an_editor_in_review_mode(db, settings, mode, status, ready):
    settings.MODERATION_MODE = mode
    assert scheduling.ready_to_send(Digest(date=TODAY, status=status)) is ready


def test_preview_without_any_active_reader_uses_a_stand_in(morning):
    from subscribers.models import Subscriber

    Subscriber.objects.all().delete()
    client, _ = superuser_client()
    page = preview(client, morning.digest)
    assert page.status_code == 200
    assert "no active subscriber: a stand-in without interests" in page.content.decode()
    assert page.context["message"].to == ["boss@example.com"]


def test_the_digest_page_links_to_its_preview(morning):
    client, _ = superuser_client()
    page = client.get(reverse("admin:newsletter_digest_change", args=[morning.digest.pk])).content.decode()
    assert reverse("admin:newsletter_digest_preview", args=[morning.digest.pk]) in page


def test_bulk_actions_on_the_digest_list(morning, django_capture_on_commit_callbacks, outbox):
    client, _ = superuser_client()
    sent = Digest.objects.create(date=TODAY - timedelta(days=1), status=Digest.Status.SENT)
    changelist = reverse("admin:newsletter_digest_changelist")

    def bulk(action: str, digests: list[Digest]) -> str:
        data = {"action": action, "_selected_action": [d.pk for d in digests]}
        return client.post(changelist, data, follow=True).content.decode()

    page = bulk("pause_selected", [morning.digest, sent])
    assert "is draft: cannot make it paused" in page and "is sent: cannot make it paused" in page
    with django_capture_on_commit_callbacks(execute=True):
        page = bulk("approve_selected", [morning.digest])
    assert "approved; each reader gets it at their delivery hour" in page
    assert Digest.objects.get(pk=morning.digest.pk).status == Digest.Status.SENT
    assert len(read_outbox(outbox)) == 2
    assert "cannot make it sending" in bulk("resume_selected", [sent])
    assert "cannot make it cancelled" in bulk("cancel_selected", [sent])
    list_page = client.get(changelist).content.decode()
    assert '<progress max="2" value="2"></progress> 2/2' in list_page


def test_retry_failed_deliveries_from_the_digest_page(morning, outbox, django_capture_on_commit_callbacks):
    digest = morning.digest
    Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.SENT, send_started_at=MORNING)
    Delivery.objects.create(digest=digest, subscriber=morning.ada, status="failed", error="451 gave up")
    Delivery.objects.create(digest=digest, subscriber=morning.bob, status="sent")
    client, user = superuser_client()
    assert "Retry failed deliveries" in preview(client, digest).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        page = act(client, digest, "retry_failed").content.decode()
    assert "failed deliveries queued again" in page
    assert [m["To"] for m in read_outbox(outbox)] == ["ada@example.com"]
    assert Digest.objects.get(pk=digest.pk).status == Digest.Status.SENT
    assert AuditEntry.objects.get(action="retry_failed", user=user).detail == "1 failed deliveries queued again"
    assert "no failed delivery to retry" in act(client, digest, "retry_failed").content.decode()
