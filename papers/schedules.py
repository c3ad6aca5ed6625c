"""One django-celery-beat PeriodicTask per configured source, so operators see and edit fetch schedules in the
admin (Periodic tasks) and can add a source there without code."""

import json

from django.conf import settings
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from papers.sources import SourceError, get_source

FETCH_TASK = "papers.tasks.fetch_source"
TASK_NAME_PREFIX = "fetch "


def sync_fetch_schedules(specs: list[str] | None = None, cron: str | None = None) -> list[str]:
    """Create the missing PeriodicTask of each source that fetches over the network (PAPER_SOURCES by default);
    the specs added. Existing tasks, and any an operator edited or disabled, are left as they are."""
    specs = settings.PAPER_SOURCES if specs is None else specs
    minute, hour, day_of_month, month_of_year, day_of_week = (cron or settings.FETCH_SCHEDULE).split()
    added = []
    with transaction.atomic():
        schedule, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
            timezone="UTC",
        )
        for spec in specs:
            source = get_source(spec)  # a misspelt source fails here, not at fetch time
            try:
                source.url_for(None)
            except SourceError:
                continue  # a source with nothing to fetch (json reads local files) gets no schedule
            _, created = PeriodicTask.objects.get_or_create(
                name=f"{TASK_NAME_PREFIX}{spec}"[:200],
                defaults={"task": FETCH_TASK, "args": json.dumps([spec]), "crontab": schedule, "queue": "fetch"},
            )
            if created:
                added.append(spec)
    return added
