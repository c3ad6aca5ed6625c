"""What the delivery tests share: the day's digest on the bundled samples, readers, and a real SMTP server on
loopback that can misbehave on purpose (tests/smtp_sink.py)."""

from datetime import UTC, date, datetime

import pytest

from newsletter.digests.build import build_digest
from newsletter.models import Digest
from newsletter.sending import ledger
from papers.ingest import fetch_and_ingest
from papers.models import Paper
from subscribers.models import Subscriber
from tests import smtp_sink

TODAY = date(2026, 11, 28)
NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def ingest_samples(*specs: str) -> None:
    """The bundled samples, first seen on TODAY whatever the machine's date."""
    for spec in specs:
        fetch_and_ingest(spec, offline=True)
    Paper.objects.update(listed=TODAY)


@pytest.fixture(name="digest")
def digest_fixture(transactional_db) -> Digest:  # sends are queued on commit, so tests commit
    ingest_samples("hf", "json")
    return build_digest(TODAY)


def readers(n: int, prefix: str = "reader", **fields) -> list[Subscriber]:
    fields.setdefault("status", Subscriber.Status.ACTIVE)
    fields.setdefault("interests", "language models, reinforcement learning")
    return Subscriber.objects.bulk_create(Subscriber(email=f"{prefix}{i}@example.com", **fields) for i in range(n))


@pytest.fixture(name="sink", params=[False, True], ids=["one-command-at-a-time", "pipelining"])
def sink_fixture(settings, request):
    controller, handler, port = smtp_sink.start(pipelining=request.param)
    settings.EMAIL_BACKEND = "newsletter.mail.SMTPBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 10
    settings.DELIVERY_RETRY_BASE_SECONDS = 0  # in-process retries run at once; the schedule is tested apart
    yield handler
    controller.stop()


def statuses(digest: Digest) -> dict[str, int]:
    return {k: v for k, v in ledger.ledger_counts(digest.pk).items() if v}
