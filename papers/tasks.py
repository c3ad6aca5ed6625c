"""Celery tasks for ingestion: thin, idempotent (re-ingesting the same input changes nothing)."""

from datetime import date

from celery import shared_task

from papers.ingest import fetch_and_ingest


@shared_task
def fetch_source(spec: str, day_iso: str | None = None) -> int:
    """Fetch one configured source (a spec such as `arxiv:cs.LG`); the FetchRun id."""
    return fetch_and_ingest(spec, date.fromisoformat(day_iso) if day_iso else None).pk
