from django.conf import settings
from django.db import models
from django.utils import timezone


class Digest(models.Model):
    """The day's issue: the trending section shared by everyone; "For you" is chosen per recipient."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        APPROVED = "approved"
        SENDING = "sending"
        PAUSED = "paused"
        SENT = "sent"
        CANCELLED = "cancelled"
        SKIPPED = "skipped", "Skipped (nothing new)"

    date = models.DateField(unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    papers = models.ManyToManyField("papers.Paper", through="DigestPaper", related_name="digests")
    editor_note = models.TextField(blank=True, help_text="Markdown; opens the digest")
    created_at = models.DateTimeField(default=timezone.now)
    send_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Why the send paused itself (failures, complaints), for the editor who resumes it; cleared on resume.
    pause_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"Digest {self.date:%Y-%m-%d}"


class DigestPaper(models.Model):
    """A paper of the trending section, in order."""

    digest = models.ForeignKey(Digest, on_delete=models.CASCADE, related_name="items")
    paper = models.ForeignKey("papers.Paper", on_delete=models.CASCADE)
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["digest", "paper"], name="unique_digest_paper")]

    def __str__(self) -> str:
        return f"#{self.position + 1} of {self.digest}"


class Delivery(models.Model):
    """One row per (digest, subscriber): written before the send, updated after. The ledger."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped"
        AMBIGUOUS = "ambiguous", "Ambiguous (worker died mid-send)"
        BOUNCED = "bounced"
        COMPLAINED = "complained"

    # Every send updates each row twice, and an update writes a new entry into every index that lists the row:
    # the ledger keeps only the indexes its queries use. (digest, status) and (digest, subscriber) lead with the
    # digest, so the digest needs none of its own.
    digest = models.ForeignKey(Digest, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    subscriber = models.ForeignKey("subscribers.Subscriber", on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    paper_ids = models.JSONField(default=list, blank=True, help_text="Paper pks this recipient was sent")
    message_id = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    claim_token = models.CharField(max_length=32, blank=True, help_text="which worker run claimed the row")
    # A queued row waits for its next try until then (transient errors); nobody claims it earlier.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Transient errors are retried until then: DELIVERY_RETRY_WINDOW_HOURS after the first one.
    retry_until = models.DateTimeField(null=True, blank=True)
    interruptions = models.PositiveSmallIntegerField(default=0, help_text="times a worker died holding the row")
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["digest", "subscriber"], name="unique_delivery")]
        indexes = [
            models.Index(fields=["digest", "status"]),
            # Rows being sent, across digests (the sweeper's stuck rows, the dashboard): few at any time, and a
            # row leaves this index when its outcome is written.
            models.Index(fields=["claimed_at"], condition=models.Q(status="sending"), name="delivery_sending"),
            # Rows waiting for a retry: the sweeper hands them out when their time comes. None outside an outage.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="queued", next_attempt_at__isnull=False),
                name="delivery_waiting",
            ),
            # The dashboard's bounce and complaint rates: rows a webhook marked, few and never touched by a send.
            models.Index(
                fields=["sent_at"], condition=models.Q(status__in=["bounced", "complained"]), name="delivery_problems"
            ),
            # Webhooks find the row by the provider's message id, which a row has only once it was sent.
            models.Index(fields=["message_id"], condition=~models.Q(message_id=""), name="delivery_message_id"),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.digest} → {self.subscriber_id} ({self.status})"


class SendLease(models.Model):
    """A chunk of a send held by a live worker, which renews `expires_at` while it sends. When a worker dies, its
    lease runs out: the sweeper hands the chunk's readers (claimed or not yet) to the live workers, within
    DELIVERY_LEASE_SECONDS, not after the broker's hour-long visibility timeout. One row per running chunk."""

    token = models.CharField(max_length=32, unique=True, help_text="the claim token of the chunk's rows")
    digest = models.ForeignKey(Digest, on_delete=models.CASCADE, related_name="+")
    subscriber_ids = models.JSONField(default=list)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.digest} chunk {self.token} until {self.expires_at:%H:%M:%S}"


class AuditEntry(models.Model):
    """Who did what to which paper, digest or subscriber, and when. Written by every editorial action."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept apart from the user row so the record survives the account being deleted; "system" for the scheduler.
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=40, db_index=True)
    target_type = models.CharField(max_length=40)
    target_id = models.BigIntegerField(null=True, blank=True)
    target_repr = models.CharField(max_length=300)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target_repr}"


class WebhookEvent(models.Model):
    """A provider's tracking event, kept once per event id: providers retry webhooks, we act once."""

    event_id = models.CharField(max_length=200, unique=True, help_text="the provider's id, or a hash of the event")
    esp = models.CharField(max_length=30)
    event_type = models.CharField(max_length=20, db_index=True)
    recipient = models.EmailField(max_length=254, blank=True)
    message_id = models.CharField(max_length=300, blank=True)
    detail = models.TextField(blank=True, help_text="the provider's description and MTA response")
    soft = models.BooleanField(default=False, help_text="a temporary failure (mailbox full, greylisted)")
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.esp} {self.event_type} {self.event_id}"
