from datetime import UTC, date, datetime, time, timedelta

from django.db import models
from django.utils import timezone

# A paper is news for two listing days: arXiv announces once a day, and HF's votes trail the announcement by a
# day. The digest for day D draws on the papers listed for D and D-1 (and the never-repeat rules).
CANDIDATE_WINDOW = timedelta(days=2)


def today() -> date:
    """The listing day of a paper that no source and no operator dated: the day (UTC) it reached us."""
    return timezone.now().astimezone(UTC).date()


def day_end(day: date) -> datetime:
    """The moment a listing day is over (midnight UTC after it): what a digest of that day measures ages
    against, so that the same day's digest ranks the same whenever it is built."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


class PaperQuerySet(models.QuerySet):
    def news_on(self, day: date) -> "PaperQuerySet":
        """Papers listed in the candidate window that ends with `day`."""
        return self.filter(listed__gt=day - CANDIDATE_WINDOW, listed__lte=day)


class Moderation(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class Paper(models.Model):
    """One work, whatever the number of sources it was seen in. Text fields hold clean text, no markup."""

    canonical_id = models.CharField(
        max_length=200, unique=True, help_text="arXiv id without version, else DOI, else a title hash"
    )
    arxiv_id = models.CharField(max_length=40, blank=True, db_index=True)
    doi = models.CharField(max_length=200, blank=True)
    title = models.TextField()
    abstract = models.TextField(blank=True)
    authors = models.JSONField(default=list, blank=True)
    url = models.URLField(max_length=500, blank=True)
    pdf_url = models.URLField(max_length=500, blank=True)
    code_url = models.URLField(max_length=500, blank=True)
    project_url = models.URLField(max_length=500, blank=True)
    thumbnail_url = models.URLField(max_length=500, blank=True)
    categories = models.JSONField(default=list, blank=True)
    primary_category = models.CharField(max_length=40, blank=True)
    comment = models.TextField(blank=True)
    journal_ref = models.TextField(blank=True)
    published = models.DateField(null=True, blank=True, db_index=True)
    # Trending signals (HF daily papers, GitHub); null where no source gave one.
    upvotes = models.IntegerField(null=True, blank=True)
    num_comments = models.IntegerField(null=True, blank=True)
    github_stars = models.IntegerField(null=True, blank=True)
    ai_summary = models.TextField(blank=True)
    ai_keywords = models.JSONField(default=list, blank=True)
    sources = models.JSONField(default=list, blank=True)
    # Moderation.
    moderation = models.CharField(max_length=10, choices=Moderation.choices, default=Moderation.PENDING)
    rejection_reason = models.CharField(max_length=300, blank=True)
    pinned = models.BooleanField(default=False)
    featured = models.BooleanField(default=False)
    # Sentence embedding (float32 bytes), computed once at ingest when the model is installed.
    embedding = models.BinaryField(null=True, blank=True, editable=False)
    # The listing day the paper was announced for (arXiv's announcement, HF's daily page, the --date of a
    # fetch): the digest of day D takes the papers listed for D and the day before, whenever they reached us.
    listed = models.DateField(default=today, db_index=True, help_text="the listing day it was announced for")
    first_seen = models.DateTimeField(default=timezone.now, db_index=True, help_text="when this server first saw it")
    updated_at = models.DateTimeField(auto_now=True)

    objects = PaperQuerySet.as_manager()

    class Meta:
        ordering = ["-listed", "-first_seen", "-upvotes"]

    def __str__(self) -> str:
        return f"{self.canonical_id}: {self.title[:80]}"


class FetchRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        EMPTY = "empty", "OK, no items"
        UNCHANGED = "unchanged", "OK, input unchanged since the last run"
        PARTIAL = "partial", "OK with errors"
        FAILED = "failed"

    source = models.CharField(max_length=300, db_index=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    fetched = models.IntegerField(default=0)
    created = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    skipped = models.IntegerField(default=0)
    errors = models.IntegerField(default=0)
    messages = models.JSONField(default=list, blank=True, help_text="what went wrong, one line each")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.source} @ {self.started_at:%Y-%m-%d %H:%M}"


class FetchState(models.Model):
    """What the last successful fetch of one location (a URL, or a source's local file) returned: the HTTP
    validators for a conditional GET, and a digest of the bytes so that unchanged input is not parsed again."""

    location = models.CharField(max_length=500, unique=True)
    etag = models.CharField(max_length=300, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)
    body_sha256 = models.CharField(max_length=64, blank=True)
    entries = models.IntegerField(default=0, help_text="entries the input held when it was last ingested")
    # The papers that input stands for: skipping it is only right while they all still exist.
    paper_ids = models.JSONField(default=list, blank=True, help_text="canonical ids of the papers it gave")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.location


class HostClock(models.Model):
    """When the next request to a rate-limited host may start. One row per host, locked while a process takes
    its turn, so every worker on every machine shares the same clock."""

    host = models.CharField(max_length=200, unique=True)
    next_request_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.host
