"""The scheduled path: each reader at their own hour in their own time zone, daily or weekly; once each."""

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from newsletter.digests.build import build_digest
from newsletter.models import Delivery, Digest
from newsletter.sending import scheduling
from papers.ingest import fetch_and_ingest
from papers.models import Paper
from papers.schedules import sync_fetch_schedules
from subscribers.models import Subscriber
from tests.helpers import read_outbox

MONDAY = date(2026, 11, 30)
pytestmark = pytest.mark.clock("2026-11-30T07:00:00+00:00")


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture
def people(transactional_db) -> dict[str, Subscriber]:
    spec = {
        "utc8": ("UTC", 8, "daily"),
        "utc8weekly": ("UTC", 8, "weekly"),
        "london7": ("Europe/London", 7, "daily"),
        "kolkata13": ("Asia/Kolkata", 13, "daily"),  # +05:30: 13:00 there is 07:30 UTC
        "la8": ("America/Los_Angeles", 8, "daily"),  # -08:00 in November: 16:00 UTC
        "tokyo8": ("Asia/Tokyo", 8, "daily"),  # +09:00: 23:00 UTC the day before
        "nowhere8": ("Mars/Olympus_Mons", 8, "daily"),  # unknown zone: treated as UTC
    }
    return {
        name: Subscriber.objects.create(
            email=f"{name}@example.com", status="active", time_zone=tz, delivery_hour=hour, frequency=freq
        )
        for name, (tz, hour, freq) in spec.items()
    }


def due(now: datetime) -> set[str]:
    ids = scheduling.due_subscriber_ids(now)
    return {s.email.split("@")[0] for s in Subscriber.objects.filter(pk__in=ids)}


def test_who_is_due_follows_each_readers_clock(people):
    assert due(at(MONDAY, 8, 30)) == {"utc8", "utc8weekly", "nowhere8"}
    assert due(at(MONDAY, 8, 45)) == {"utc8", "utc8weekly", "nowhere8"}  # the runs of one hour agree
    assert due(at(MONDAY + timedelta(days=1), 8, 30)) == {"utc8", "nowhere8"}  # weekly readers: Mondays only
    assert due(at(MONDAY, 7)) == {"london7"}
    # Kolkata's 13:00-13:59 is 07:30-08:29 UTC.
    assert due(at(MONDAY, 7, 30)) == {"london7", "kolkata13"}
    assert due(at(MONDAY, 8)) == {"utc8", "utc8weekly", "nowhere8", "kolkata13"}
    assert due(at(MONDAY, 16)) == {"la8"}
    assert due(at(MONDAY, 23)) == {"tokyo8"}
    assert due(at(MONDAY, 12)) == set()


def test_summer_time_moves_the_utc_hour_not_the_readers_hour(people):
    july = date(2026, 7, 6)
    assert "london7" in due(at(july, 6)) and "la8" in due(at(july, 15))


def test_each_due_reader_gets_the_newest_digest_once(people, outbox):
    fetch_and_ingest("hf", offline=True)
    Paper.objects.update(listed=MONDAY)
    digest = build_digest(MONDAY)
    for minute in (0, 15, 30, 45):
        scheduling.deliver_due(at(MONDAY, 8, minute))
    assert sorted(m["To"] for m in read_outbox(outbox)) == [
        "kolkata13@example.com",
        "nowhere8@example.com",
        "utc8@example.com",
        "utc8weekly@example.com",
    ]
    # Tokyo's 08:00 on Tuesday is Monday 23:00 UTC: Monday's digest is still the newest.
    scheduling.deliver_due(at(MONDAY, 23))
    assert Delivery.objects.filter(digest=digest, subscriber=people["tokyo8"], status="sent").exists()
    assert len(read_outbox(outbox)) == 5


def test_a_skipped_day_sends_nothing_rather_than_yesterdays_again(people, outbox):
    fetch_and_ingest("hf", offline=True)
    Paper.objects.update(listed=MONDAY)
    build_digest(MONDAY)
    tuesday = MONDAY + timedelta(days=1)
    assert build_digest(tuesday + timedelta(days=1)).status == Digest.Status.SKIPPED
    assert scheduling.deliver_due(at(tuesday + timedelta(days=1), 8)) == 0
    assert read_outbox(outbox) == []


def test_a_stale_digest_is_not_sent(people, outbox):
    Digest.objects.create(date=MONDAY - timedelta(days=3))
    assert scheduling.current_digest(at(MONDAY, 8)) is None
    assert scheduling.deliver_due(at(MONDAY, 8)) == 0


def test_the_beat_schedule_covers_the_day(settings, db):
    schedule = settings.CELERY_BEAT_SCHEDULE
    tasks = {entry["task"] for entry in schedule.values()}
    assert {
        "newsletter.tasks.build_digest_task",
        "newsletter.tasks.deliver_due_task",
        "newsletter.tasks.sweep_task",
        "newsletter.tasks.purge_ledger_task",
        "newsletter.tasks.review_deadline_task",
    } <= tasks
    # Fetches are database schedules, one per network source, editable in the admin.
    sync_fetch_schedules()
    fetches = PeriodicTask.objects.filter(task="papers.tasks.fetch_source")
    assert {tuple(json.loads(t.args)) for t in fetches} == {(spec,) for spec in settings.PAPER_SOURCES}
    # A dead worker's chunk goes out again within its lease and one sweep.
    assert schedule["sweep-stuck-deliveries"]["schedule"].total_seconds() <= settings.DELIVERY_LEASE_SECONDS
    deliver = schedule["deliver-due"]["schedule"]
    assert deliver.minute == {0, 15, 30, 45} and len(deliver.hour) == 24
    assert timezone.is_aware(at(MONDAY, 8))
