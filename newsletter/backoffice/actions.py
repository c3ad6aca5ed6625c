"""What editors do to a digest: refresh the draft, preview it, test it, approve, pause, resume, cancel, retry
its failed deliveries.

Which action is allowed in which state, and where it leads, is newsletter.digests.states' table; each action
is one guarded status change there, so two editors clicking at once cannot both win, and each is written to
the audit trail.
"""

from datetime import UTC, date, datetime, time

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from newsletter import jobs
from newsletter.backoffice import audit
from newsletter.digests import states as digest_states
from newsletter.digests.build import candidate_papers, choose_trending, set_trending
from newsletter.digests.states import EDITOR, SYSTEM, ActionRefused
from newsletter.emails.headers import fresh_message_id
from newsletter.emails.render import digest_email, preview_links
from newsletter.models import Delivery, Digest, DigestPaper
from newsletter.sending import fanout, ledger
from newsletter.sending.ledger import ledger_counts
from papers.models import Paper
from papers.ranking import for_you_many
from subscribers.models import Subscriber

Status = Digest.Status
# A digest may still change until its first message leaves: the states an editor may refresh it in.
EDITABLE = tuple(digest_states.TABLE["refresh"].steps)
TEST_SUBJECT_PREFIX = "[Test] "
# Errors listed per digest in the admin: enough to see every distinct failure, not every row.
LEDGER_ERRORS_SHOWN = 20
PROBLEM_STATUSES = (
    Delivery.Status.FAILED,
    Delivery.Status.AMBIGUOUS,
    Delivery.Status.BOUNCED,
    Delivery.Status.COMPLAINED,
    Delivery.Status.SKIPPED,
)


def refresh_draft(digest: Digest) -> list[Paper]:
    """Re-rank a digest nobody has approved yet, so moderation (reject, pin, approve) shows in its preview."""
    with transaction.atomic():
        digest = Digest.objects.select_for_update().get(pk=digest.pk)
        if not digest_states.allowed(digest.status, "refresh") or digest.deliveries.exists():
            return []
        trending = choose_trending(digest.date)
        set_trending(digest, trending)
        digest_states.move(digest.pk, "refresh", EDITOR, Status.DRAFT if trending else Status.SKIPPED)
    return trending


def refresh(digest_id: int, user=None) -> Digest:
    """The editor's "Refresh": re-rank the draft now (it is also refreshed whenever the preview opens)."""
    digest = Digest.objects.get(pk=digest_id)
    digest_states.check(digest, "refresh")
    if digest.deliveries.exists():
        raise ActionRefused(f"{digest} has recipients already: it no longer changes.")
    refresh_draft(digest)
    audit.record(user, "refresh", digest)
    return Digest.objects.get(pk=digest_id)


def refresh_open_drafts(today: date | None = None) -> int:
    """Refresh every digest from today on that is still a draft (or skipped for want of papers)."""
    today = today or timezone.now().date()
    digests = list(Digest.objects.filter(date__gte=today, status__in=EDITABLE))
    for digest in digests:
        refresh_draft(digest)
    return len(digests)


def trending_papers(digest: Digest) -> list[Paper]:
    return list(Paper.objects.filter(digestpaper__digest=digest).order_by("digestpaper__position"))


def preview_email(digest: Digest, subscriber: Subscriber) -> EmailMultiAlternatives:
    """The message this subscriber would get from this digest, built the way a send builds it, except that its
    preferences and unsubscribe links act for nobody: editors see the reader's papers, never their keys."""
    trending = trending_papers(digest)
    candidates = candidate_papers(digest.date)
    by_id = {p.pk: p for p in candidates}
    picks = for_you_many([subscriber], candidates, {subscriber.pk: {p.pk for p in trending}}).get(subscriber.pk, [])
    picked = [(pick, by_id[pick.paper_id]) for pick in picks]
    return digest_email(digest, subscriber, trending, picked, links=preview_links())  # no reader's live links


def send_test(digest: Digest, subscriber: Subscriber, to_email: str, user=None) -> EmailMultiAlternatives:
    """Send `subscriber`'s version of the digest to `to_email` through the real backend; no ledger row, and a
    Message-ID of its own (the reader's own copy keeps theirs)."""
    digest_states.check(digest, "send_test")
    if not to_email:
        raise ActionRefused("Your account has no email address: add one to your user to receive tests.")
    message = preview_email(digest, subscriber)
    message.to = [to_email]
    message.subject = TEST_SUBJECT_PREFIX + message.subject
    message.extra_headers["Message-ID"] = fresh_message_id()
    message.send()
    audit.record(user, "send_test", digest, f"as {subscriber.email} to {to_email}")
    return message


def approve(digest_id: int, user=None) -> Digest:
    """Approve the draft: each reader gets it at their own delivery hour. Readers whose hour is now are
    queued at once (once this request commits); the quarter-hourly delivery task serves the rest."""
    digest = Digest.objects.get(pk=digest_id)
    digest_states.check(digest, "approve")
    if not DigestPaper.objects.filter(digest_id=digest_id).exists():
        raise ActionRefused(f"{digest} has no papers to send.")
    digest = digest_states.move(digest_id, "approve", EDITOR)
    audit.record(user, "approve", digest)
    jobs.queue(jobs.DELIVER_DUE)
    return digest


def pause(digest_id: int, user=None) -> Digest:
    """Workers stop claiming rows; what is in flight finishes."""
    digest = digest_states.move(digest_id, "pause", EDITOR)
    audit.record(user, "pause", digest)
    return digest


def resume(digest_id: int, user=None) -> Digest:
    """Sending again, the queued rows handed to the workers; a digest paused before any message went out is
    approved again, to go at each reader's hour (resuming it must not mark it sent with nobody served)."""
    with transaction.atomic():
        started = Digest.objects.filter(pk=digest_id, send_started_at__isnull=False).exists() or (
            Delivery.objects.filter(digest_id=digest_id).exists()
        )
        digest = digest_states.move(
            digest_id, "resume", EDITOR, Status.SENDING if started else Status.APPROVED, pause_reason=""
        )
        if digest.status == Status.SENDING:
            fanout.fan_out(digest_id)
        audit.record(user, "resume", digest)
    return Digest.objects.get(pk=digest_id)


def cancel(digest_id: int, user=None) -> Digest:
    """Stop for good: rows not yet claimed are marked skipped so the ledger says why they never went."""
    with transaction.atomic():
        digest = digest_states.move(digest_id, "cancel", EDITOR)
        skipped = ledger.skip_queued(digest_id, "send cancelled")
        audit.record(user, "cancel", digest, f"{skipped} queued deliveries skipped" if skipped else "")
    return digest


def retry_failed(digest_id: int, user=None) -> Digest:
    """Failed deliveries queued again for a new window of retries (not those of readers who since left or were
    suppressed), and handed to the workers unless the send is paused."""
    with transaction.atomic():
        digest = Digest.objects.select_for_update().get(pk=digest_id)
        digest_states.check(digest, "retry_failed")
        requeued = ledger.requeue_failed(digest_id)
        if not requeued:
            raise ActionRefused(f"{digest} has no failed delivery to retry (readers since suppressed stay failed).")
        digest = digest_states.move(digest_id, "retry_failed", EDITOR)
        if digest.status == Status.SENDING:
            fanout.fan_out(digest_id)
        audit.record(user, "retry_failed", digest, f"{requeued} failed deliveries queued again")
    return Digest.objects.get(pk=digest_id)


def review_deadline(day: date) -> datetime:
    return datetime.combine(day, time(hour=settings.REVIEW_DEADLINE_HOUR), tzinfo=UTC)


def apply_review_deadline(day: date, now: datetime | None = None) -> str:
    """For the scheduler: in review mode, what to do with a digest nobody approved by the deadline.

    Returns what happened: "not-review-mode", "not-due", "nothing-to-do", "skipped" or "trending-only"."""
    now = now or timezone.now()
    if settings.MODERATION_MODE != "review":
        return "not-review-mode"
    if now < review_deadline(day):
        return "not-due"
    digest = Digest.objects.filter(date=day, status=Status.DRAFT).first()
    if digest is None:
        return "nothing-to-do"
    if settings.REVIEW_MISSED_POLICY == "skip":
        digest_states.move(digest.pk, "skip", SYSTEM)
        audit.record(None, "deadline_skip", digest, f"not approved by {review_deadline(day):%H:%M} UTC")
        return "skipped"
    # Trending only: the section chosen as in auto mode (what was not rejected); "For you" still draws on approved
    # papers only.
    trending = choose_trending(day, mode="auto")
    with transaction.atomic():
        digest = digest_states.move(digest.pk, "approve", SYSTEM)
        set_trending(digest, trending)
        audit.record(None, "deadline_trending_only", digest, f"not approved by {review_deadline(day):%H:%M} UTC")
        jobs.queue(jobs.DELIVER_DUE)
    return "trending-only"


def ledger_summary(digest: Digest) -> dict:
    """The delivery ledger of one digest: counts by status, progress, and its distinct errors."""
    counts = ledger_counts(digest.pk)
    total = sum(counts.values())
    done = total - counts[Delivery.Status.QUEUED] - counts[Delivery.Status.SENDING]
    errors = list(
        Delivery.objects.filter(digest=digest, status__in=PROBLEM_STATUSES)
        .exclude(error="")
        .values("status", "error")
        .annotate(n=Count("pk"))
        .order_by("-n")[:LEDGER_ERRORS_SHOWN]
    )
    return {
        "counts": counts,
        "total": total,
        "done": done,
        "percent": round(100 * done / total) if total else 0,
        "errors": errors,
    }
