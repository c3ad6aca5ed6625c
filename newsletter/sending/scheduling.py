"""Who is due now: each reader gets the digest at their chosen hour in their own time zone, daily or weekly.

The beat task `deliver_due_task` runs every quarter hour; the ledger's unique (digest, subscriber) row makes
the four runs inside one hour send each reader one message.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from newsletter.models import Digest
from newsletter.sending import fanout
from subscribers.models import Subscriber

# Weekly readers get the digest at their hour on this weekday (Monday), in their own time zone.
WEEKLY_WEEKDAY = 0
# Readers east of UTC reach their hour before the day's digest is built (06:00 UTC): they get the newest one,
# as long as it is at most this old.
DIGEST_MAX_AGE = timedelta(days=1)


def zone(name: str) -> ZoneInfo:
    """The reader's zone; a name the system does not know counts as UTC rather than stopping the send."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def due_filter(now: datetime, zones: list[str]) -> Q:
    """Readers whose local hour is their delivery hour; weekly readers only on WEEKLY_WEEKDAY."""
    due = Q(pk__in=[])
    for name in zones:
        local = now.astimezone(zone(name))
        here = Q(time_zone=name, delivery_hour=local.hour)
        if local.weekday() != WEEKLY_WEEKDAY:
            here &= Q(frequency=Subscriber.Frequency.DAILY)
        due |= here
    return due


def due_subscriber_ids(now: datetime) -> list[int]:
    active = Subscriber.objects.filter(status=Subscriber.Status.ACTIVE)
    zones = list(active.values_list("time_zone", flat=True).distinct())
    return list(active.filter(due_filter(now, zones)).values_list("pk", flat=True))


def ready_to_send(digest: Digest) -> bool:
    """In review mode only a digest an editor approved (or one already under way) may go; in auto mode any
    draft may. "Sent" means sent to everyone due so far: readers whose hour comes later still get it."""
    under_way = (Digest.Status.APPROVED, Digest.Status.SENDING, Digest.Status.SENT)
    if settings.MODERATION_MODE == "review":
        return digest.status in under_way
    return digest.status in (Digest.Status.DRAFT, *under_way)


def current_digest(now: datetime) -> Digest | None:
    """The newest digest, if it is recent and may go out. A skipped day (no new papers) sends nothing,
    rather than falling back to yesterday's."""
    today = now.astimezone(UTC).date()
    digest = Digest.objects.filter(date__lte=today).order_by("-date").first()
    if digest is None or digest.date < today - DIGEST_MAX_AGE or not ready_to_send(digest):
        return None
    return digest


def deliver_due(now: datetime) -> int:
    """Queue the current digest for everyone due now who has not had it. Returns the chunks queued."""
    digest = current_digest(now)
    if digest is None:
        return 0
    due = due_subscriber_ids(now)
    if not due:
        return 0
    with transaction.atomic():
        return fanout.fan_out(digest.pk, due)
