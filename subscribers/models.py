import hashlib

from django.db import models
from django.db.models.functions import Upper
from django.utils import timezone

DEFAULT_DELIVERY_HOUR = 8
DEFAULT_PAPERS_PER_DIGEST = 10


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        UNSUBSCRIBED = "unsubscribed"
        SUPPRESSED = "suppressed"

    class Frequency(models.TextChoices):
        DAILY = "daily"
        WEEKLY = "weekly"

    email = models.EmailField(max_length=254, unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    # Free text, one interest per line or comma: topics, arXiv categories (cs.LG), "author: Name", "no quantum".
    interests = models.TextField(blank=True)
    categories = models.JSONField(default=list, blank=True)
    frequency = models.CharField(max_length=6, choices=Frequency.choices, default=Frequency.DAILY)
    delivery_hour = models.PositiveSmallIntegerField(default=DEFAULT_DELIVERY_HOUR)
    time_zone = models.CharField(max_length=64, default="UTC")
    papers_per_digest = models.PositiveSmallIntegerField(default=DEFAULT_PAPERS_PER_DIGEST)
    soft_bounces = models.PositiveIntegerField(default=0)
    # Permanent refusals of the address by the receiving server (SMTP 5xx at RCPT, a provider's rejection): past
    # DELIVERY_REJECTION_LIMIT the address is suppressed, as a hard bounce reported by a webhook is.
    rejections = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The latest sign-up request while not active: unconfirmed sign-ups are purged some days after it.
    requested_at = models.DateTimeField(null=True, blank=True)
    # The requested_at of the sign-up request whose confirmation email went out: claimed before sending, so a
    # task that runs again for the same request (a worker lost before its ack) sends nothing.
    confirmation_sent_for = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # Sign-up looks addresses up case-insensitively (the local part keeps its case, the match ignores it).
        indexes = [models.Index(Upper("email"), name="subscriber_email_upper")]

    def __str__(self) -> str:
        return self.email


def email_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


class Suppression(models.Model):
    """Addresses we must never mail again. Only a hash is kept, so a deleted reader leaves no address."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "bounce", "Hard bounce"
        COMPLAINT = "complaint", "Spam complaint"
        DELETED = "deleted", "Reader deleted their data"
        MANUAL = "manual", "Added by an operator"

    email_hash = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=10, choices=Reason.choices)
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.email_hash[:12]}… ({self.reason})"

    @classmethod
    def is_suppressed(cls, email: str) -> bool:
        return cls.objects.filter(email_hash=email_hash(email)).exists()


class Rating(models.Model):
    """A reader's "more like this" (+1) or "less like this" (-1) on one paper, from a digest's link. One per
    (reader, paper): rating again changes it. Data we hold about the reader: exported with them, deleted with
    them (the foreign key cascades)."""

    MORE = 1
    LESS = -1
    VALUES = ((MORE, "More like this"), (LESS, "Less like this"))

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="ratings")
    paper = models.ForeignKey("papers.Paper", on_delete=models.CASCADE, related_name="+")
    value = models.SmallIntegerField(choices=VALUES)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscriber", "paper"], name="one_rating_per_reader_paper")]
        indexes = [models.Index(fields=["subscriber", "-created_at"], name="rating_reader_newest")]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {'+' if self.value > 0 else '-'} {self.paper_id}"


class Taste(models.Model):
    """A reader's model kept as weights over the sentence-embedding space (papers.ranking.learned.fit), refitted
    in a task each time they rate, so a send ranks every rated reader with one matrix product. Only with the
    embedding model and past MIN_RATINGS_FOR_MODEL ratings; TF-IDF's space is each day's own, so without the model
    the reader's model is fitted while ranking."""

    subscriber = models.OneToOneField(Subscriber, on_delete=models.CASCADE, primary_key=True, related_name="taste")
    weights = models.BinaryField()  # float32
    ratings = models.PositiveIntegerField()  # how many ratings it was fitted on
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.subscriber_id}: {self.ratings} ratings"
