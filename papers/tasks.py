from celery import shared_task

from papers.ingest import fetch_and_ingest


@shared_task
def fetch_source(spec: str, day_iso: str | None = None) -> int:
    from datetime import date

    return fetch_and_ingest(spec, date.fromisoformat(day_iso) if day_iso else None).pk
