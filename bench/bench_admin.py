"""Admin: CSV import throughput against a bare bulk insert of the same rows, and the dashboard's data time."""

import time

from bench import Row

IMPORT_TARGET_RATIO = 0.25  # validation, suppression and existing-reader checks may cost up to 4x a bare insert
DASHBOARD_TARGET_SECONDS = 2.0  # an editor opening the page should not wait longer
PREFIX = "bench-admin-"


def run(size: int) -> list[Row]:
    from django.utils import timezone

    from newsletter.backoffice.dashboard import dashboard_context
    from subscribers.importing import import_subscribers
    from subscribers.models import Subscriber, Suppression, email_hash

    def clean() -> None:
        Subscriber.objects.filter(email__startswith=PREFIX).delete()
        Suppression.objects.filter(detail="bench").delete()

    clean()
    rows = [(i + 1, f"{PREFIX}{i}@example.com", f"topic {i % 50}") for i in range(size)]
    Suppression.objects.bulk_create(
        Suppression(email_hash=email_hash(email), reason="manual", detail="bench") for _, email, _ in rows[::100]
    )
    started = time.perf_counter()
    result = import_subscribers(iter(rows), confirmed=True)
    import_seconds = time.perf_counter() - started
    assert result.refused == len(rows[::100]), result.summary()

    started = time.perf_counter()
    dashboard_context()
    dashboard_seconds = time.perf_counter() - started

    Subscriber.objects.filter(email__startswith=PREFIX).delete()
    now = timezone.now()
    started = time.perf_counter()
    Subscriber.objects.bulk_create(
        (
            Subscriber(email=email, interests=interests, status="active", confirmed_at=now)
            for _, email, interests in rows
        ),
        batch_size=1000,
    )
    bare_seconds = time.perf_counter() - started
    clean()

    import_rate, bare_rate = size / import_seconds, size / bare_seconds
    return [
        Row(
            stage="admin",
            figure="import_subscribers rows/s",
            value=round(import_rate),
            baseline="bare bulk_create of the same rows",
            baseline_value=round(bare_rate),
            target=f">= {IMPORT_TARGET_RATIO:.0%} of bare",
            ok=import_rate >= IMPORT_TARGET_RATIO * bare_rate,
        ),
        Row(
            stage="admin",
            figure="dashboard data, seconds",
            value=round(dashboard_seconds, 3),
            baseline="target",
            baseline_value=DASHBOARD_TARGET_SECONDS,
            target=f"<= {DASHBOARD_TARGET_SECONDS} s",
            ok=dashboard_seconds <= DASHBOARD_TARGET_SECONDS,
        ),
    ]
