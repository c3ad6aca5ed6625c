"""The skeleton path: bundled samples in → one digest per active subscriber out, as .eml files."""

import os
import re
import signal
import subprocess
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
import redis
from django.core.management import call_command
from django.db.models import F

from newsletter import pipeline
from newsletter.config.celery import app as celery_app
from newsletter.digests.build import build_digest
from newsletter.management.commands.send_digest import EXIT_FAILED
from newsletter.models import Delivery, Digest
from papers.ingest import fetch_and_ingest
from papers.models import Paper
from papers.tasks import fetch_source
from subscribers.models import Subscriber
from tests import clock, smtp_sink
from tests.helpers import parts, read_outbox
from tests.workers_support import process_env

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2026, 11, 28)
pytestmark = pytest.mark.clock("2026-11-28T07:00:00+00:00")
WORKER_START_TIMEOUT_SECONDS = 60


def make_subscribers() -> dict[str, Subscriber]:
    people = {
        "ada@example.com": ("active", "reinforcement learning, speech"),
        "bob@example.com": ("active", ""),
        "cy@example.com": ("pending", "diffusion"),
        "dee@example.com": ("unsubscribed", "robots"),
        "eve@example.com": ("suppressed", ""),
    }
    return {
        email: Subscriber.objects.create(email=email, status=status, interests=interests)
        for email, (status, interests) in people.items()
    }


@pytest.mark.django_db(transaction=True)
def test_run_daily_offline_writes_one_digest_per_active_subscriber(outbox, capsys):
    make_subscribers()
    call_command("run_daily", "--offline", "--date", TODAY.isoformat())
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert "created=87" in summary and "sent=2 skipped=0 failed=0" in summary and "digest=sent" in summary

    messages = read_outbox(outbox)
    assert sorted(m["To"] for m in messages) == ["ada@example.com", "bob@example.com"]
    for message in messages:
        text, html = parts(message)
        assert "Trending today" in html and "TRENDING TODAY" in text
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Unsubscribe"].strip().startswith("<http://127.0.0.1:8000/unsubscribe/")
    ada = next(m for m in messages if m["To"] == "ada@example.com")
    assert "matches: reinforcement learning" in parts(ada)[0]
    # The HF sample's most upvoted paper leads the shared section, and names a trending-only reader's email.
    top = Paper.objects.order_by(F("upvotes").desc(nulls_last=True)).first()
    bob = next(m for m in messages if m["To"] == "bob@example.com")
    assert top.title in " ".join(bob["Subject"].split())
    assert parts(bob)[0].index(top.title) < parts(bob)[0].index("Preferences:")


@pytest.mark.django_db(transaction=True)
def test_running_the_day_twice_sends_nothing_twice(outbox):
    make_subscribers()
    call_command("run_daily", "--offline", "--date", TODAY.isoformat())
    call_command("run_daily", "--offline", "--date", TODAY.isoformat())
    assert len(read_outbox(outbox)) == 2
    assert Delivery.objects.filter(status="sent").count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_day_without_new_papers_is_skipped_not_sent_empty(outbox, capsys):
    make_subscribers()
    call_command("run_daily", "--offline", "--date", TODAY.isoformat())
    Paper.objects.update(listed=TODAY - timedelta(days=10))
    call_command("run_daily", "--offline", "--date", (TODAY + timedelta(days=1)).isoformat())
    assert "No new papers" in capsys.readouterr().out
    assert Digest.objects.get(date=TODAY + timedelta(days=1)).status == Digest.Status.SKIPPED
    assert len(read_outbox(outbox)) == 2


@pytest.mark.django_db(transaction=True)
def test_unreachable_network_falls_back_to_samples_with_a_clear_message(outbox, capsys, settings):
    settings.PAPER_SOURCES = ["hf"]
    settings.FETCH_TIMEOUT_SECONDS = 2
    # A URL nobody answers on this machine: the same code path as a live fetch with no network.
    from papers.sources import hf

    original = hf.HF_API_URL
    hf.HF_API_URL = "http://127.0.0.1:9/api/daily_papers"
    try:
        call_command("run_daily", "--date", TODAY.isoformat())
    finally:
        hf.HF_API_URL = original
    out = capsys.readouterr().out
    assert "Network unreachable" in out and "bundled sample papers" in out
    assert Paper.objects.count() == 84  # 5 HF sample papers + the 79-paper bundled corpus


def _worker(env: dict[str, str], queues: str) -> subprocess.Popen:
    return subprocess.Popen(
        clock.command("celery", "-A", "newsletter", "worker", "--queues", queues,
         "--concurrency", "2", "--without-gossip", "--without-mingle", "--hostname", f"test-{uuid.uuid4().hex[:8]}@%h",
         "--loglevel", "WARNING"),
        cwd=ROOT, env=clock.env(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("queues", ["default,send,fetch", "send"])
def test_pipeline_on_postgres_with_a_real_celery_worker_on_redis(postgres, redis_url, outbox, queues):
    """A worker on every queue, as one machine runs it; and a send-only worker, as a mail machine runs it,
    delivering while a fetch waits on its own queue (a slow feed never delays mail)."""
    broker = redis.Redis.from_url(redis_url)
    broker.flushdb()  # no stale tasks from an earlier run
    env = process_env(redis_url, {"OUTBOX_DIR": str(outbox)})
    make_subscribers()
    fetch_and_ingest("hf", offline=True)
    fetch_and_ingest("json", offline=True)
    digest = build_digest(TODAY)
    celery_app.conf.task_always_eager = False  # publish to Redis; the autouse fixture restores it
    if queues == "send":
        fetch_source.delay("hf")  # routed to the fetch queue, which this worker does not read

    worker = _worker(env, queues)
    try:
        counts = pipeline.send(digest, timeout=WORKER_START_TIMEOUT_SECONDS)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert counts.summary() == "sent=2 skipped=0 failed=0 unsent=0", worker.stderr.read()
    messages = read_outbox(outbox)
    assert sorted(m["To"] for m in messages) == ["ada@example.com", "bob@example.com"]
    assert all(d.message_id and d.sent_at for d in Delivery.objects.all())
    digest.refresh_from_db()
    assert digest.status == Digest.Status.SENT
    if queues == "send":
        assert broker.llen("fetch") == 1, "the fetch task still waits, untouched, on its own queue"


@pytest.mark.django_db(transaction=True)
def test_a_negative_interest_keeps_a_trending_paper_out_of_that_readers_email(outbox):
    fetch_and_ingest("hf", offline=True)
    fetch_and_ingest("json", offline=True)
    digest = build_digest(TODAY)
    top = digest.papers.order_by("digestpaper__position").first()
    word = max(re.findall(r"[A-Za-z]{5,}", top.title), key=len).lower()
    Subscriber.objects.create(email="no@example.com", status="active", interests=f"no {word}")
    Subscriber.objects.create(email="all@example.com", status="active")
    pipeline.send(digest)
    emails = {m["To"]: parts(m)[0] for m in read_outbox(outbox)}
    assert top.title in emails["all@example.com"]
    assert top.title not in emails["no@example.com"]
    assert not re.search(rf"\b{word}\b", emails["no@example.com"], re.IGNORECASE)


def test_the_newcomers_daily_job_runs_on_sqlite_in_process_into_the_outbox(tmp_path, settings):
    """`make run`'s job as a fresh clone runs it, with nothing configured: SQLite under VAR_DIR, tasks in-process,
    mail as .eml files. The suite's own database is PostgreSQL, so this is where the ledger's SQLite statements
    (the claim's UPDATE ... RETURNING, one UPDATE per row for the outcomes) run."""
    import sqlite3

    from newsletter.management.commands.setup_demo import DEMO_SUBSCRIBERS

    configured = ("DATABASE_URL", "REDIS_URL", "EMAIL_", "ANYMAIL_", "OUTBOX_DIR", "DELIVERY_", "CELERY_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(configured)} | {
        "VAR_DIR": str(tmp_path),
        "RANKING_EMBEDDINGS_MODEL": str(settings.RANKING_EMBEDDINGS_MODEL),  # built by `make`, under the repo's var/
    }

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            clock.command("manage.py", *args), cwd=ROOT, env=clock.env(env), capture_output=True, text=True, timeout=300
        )

    for step in (("migrate", "--noinput", "-v", "0"), ("setup_demo",)):
        done = manage(*step)
        assert done.returncode == 0, done.stderr
    done = manage("run_daily", "--offline", "--date", TODAY.isoformat())
    assert done.returncode == 0, done.stderr
    readers = len(DEMO_SUBSCRIBERS)
    summary = done.stdout.strip().splitlines()[-1]
    assert f"digest=sent sent={readers} skipped=0 failed=0 unsent=0 outbox={tmp_path / 'outbox'}" in summary, summary
    assert sorted(path.suffix for path in (tmp_path / "outbox").iterdir()) == [".eml"] * readers
    with sqlite3.connect(tmp_path / "db.sqlite3") as database:
        rows = database.execute("SELECT status, attempts, claim_token != '', message_id != '' FROM newsletter_delivery")
        assert sorted(rows) == [("sent", 1, 1, 1)] * readers

    again = manage("run_daily", "--offline", "--date", TODAY.isoformat())  # the day's digest went: nothing twice
    assert again.returncode == 0, again.stderr
    assert f"sent={readers} skipped=0 failed=0 unsent=0" in again.stdout.strip().splitlines()[-1], again.stdout
    assert len(list((tmp_path / "outbox").iterdir())) == readers


@pytest.mark.django_db(transaction=True)
def test_run_daily_says_in_its_exit_status_that_readers_failed(settings, capsys):
    """As send_digest does (EXIT_FAILED): a daily job whose send failed for some readers must not exit 0."""
    controller, _, port = smtp_sink.start()
    settings.EMAIL_BACKEND = "newsletter.mail.SMTPBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 10
    Subscriber.objects.create(email="ada@example.com", status="active")
    Subscriber.objects.create(email=f"{smtp_sink.REJECTED_PREFIX}-bob@example.com", status="active")  # 550
    try:
        with pytest.raises(SystemExit) as exited:
            call_command("run_daily", "--offline", "--date", TODAY.isoformat())
    finally:
        controller.stop()
    assert exited.value.code == EXIT_FAILED
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("1 readers failed: their errors are in the admin's delivery ledger"), lines
    assert "digest=sent sent=1 skipped=0 failed=1 unsent=0" in lines[-1], lines
