"""The delivery ledger in one process: who gets the digest, once; what happens on provider errors; pause,
resume, cancel; leases and the sweeper; the `send_digest` command. Mail goes to the real outbox or a real SMTP
server. Outages, refused addresses and lost workers in detail: test_delivery_faults.py."""

import smtplib
from datetime import timedelta

import pytest
import time_machine
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.core.management import call_command
from django.db import DataError, connection
from django.utils import timezone

from newsletter import pipeline
from newsletter.backoffice import actions as digest_actions
from newsletter.models import Delivery, Digest
from newsletter.sending import delivery, failures, ledger, sweeper
from papers.models import Paper
from subscribers.models import Subscriber, Suppression, email_hash
from tests.delivery_support import NOON, TODAY, digest_fixture, ingest_samples, readers, sink_fixture, statuses  # noqa: F401 - fixtures
from tests.helpers import parts, read_outbox


def test_each_active_reader_gets_one_message_and_nobody_else(digest, outbox):
    readers(3)
    readers(2, "gone", status=Subscriber.Status.UNSUBSCRIBED)
    readers(1, "new", status=Subscriber.Status.PENDING)
    counts = pipeline.send(digest)
    assert counts.summary() == "sent=3 skipped=0 failed=0 unsent=0"
    assert sorted(m["To"] for m in read_outbox(outbox)) == [f"reader{i}@example.com" for i in range(3)]
    rows = Delivery.objects.filter(digest=digest)
    assert all(r.status == "sent" and r.message_id.startswith("<") and r.sent_at and r.paper_ids for r in rows)
    assert Digest.objects.get(pk=digest.pk).status == Digest.Status.SENT


def test_a_chunk_run_twice_sends_nothing_twice(digest, outbox):
    people = readers(5)
    chunk = delivery.start_send(digest.pk)
    assert chunk == [p.pk for p in people]
    assert delivery.send_chunk(digest.pk, chunk).sent == 5
    assert delivery.send_chunk(digest.pk, chunk).sent == 0
    assert len(read_outbox(outbox)) == 5


def test_readers_who_leave_or_are_suppressed_after_the_list_is_fixed_are_skipped(digest, outbox):
    stay, leave, bounced = readers(3)
    chunk = delivery.start_send(digest.pk)
    Subscriber.objects.filter(pk=leave.pk).update(status=Subscriber.Status.UNSUBSCRIBED)
    Suppression.objects.create(email_hash=email_hash(bounced.email.upper()), reason=Suppression.Reason.HARD_BOUNCE)
    counts = delivery.send_chunk(digest.pk, chunk)
    assert (counts.sent, counts.skipped) == (1, 2)
    assert [m["To"] for m in read_outbox(outbox)] == [stay.email]
    errors = dict(Delivery.objects.filter(status="skipped").values_list("subscriber_id", "error"))
    assert errors == {leave.pk: "subscriber is unsubscribed", bounced.pk: "subscriber is suppressed"}


def test_a_big_send_is_cut_into_bigger_chunks_and_a_small_one_still_into_many():
    # Per-chunk costs amortized over up to SEND_CHUNK_SIZE readers; a small send still shared by every worker.
    assert delivery.chunk_size(100_000) == delivery.SEND_CHUNK_SIZE == 1500
    assert delivery.chunk_size(64_000) == 1000
    assert delivery.chunk_size(2000) == delivery.chunk_size(10) == delivery.SEND_CHUNK_MIN == 200
    assert delivery.chunk_size(10_000_000) == 1500


@pytest.mark.parametrize("readers", [0, 1, 199, 200, 201, 2000, 10_000, 100_000, 1_000_001])
def test_a_sends_chunks_cover_it_once_rising_at_the_start_uneven_between_and_falling_at_the_end(readers):
    size, sizes = delivery.chunk_size(readers), delivery.chunk_sizes(readers)
    assert sum(sizes) == readers and all(0 < each <= size for each in sizes)
    assert sizes == delivery.chunk_sizes(readers)  # a send is always cut the same way
    if readers < 10_000:
        return
    assert sizes[:3] == [size // 4, size // 2, size * 3 // 4] == sizes[-3:][::-1]
    between = sizes[3:-4]  # and the rest, before the falling end
    assert all(size // 2 <= each <= size for each in between)
    # Uneven: equal chunks kept two workers in step, each pausing between chunks when the other did.
    assert len(set(between)) > len(between) // 2


def test_queries_per_chunk_do_not_grow_with_the_readers(digest, django_assert_max_num_queries):
    readers(delivery.SEND_CHUNK_SIZE)
    chunk = delivery.start_send(digest.pk)
    batches = delivery.SEND_CHUNK_SIZE // ledger.CLAIM_BATCH_SIZE
    # digest, the lease and its release, rows, trending, candidates, what earlier digests sent these readers,
    # their ratings, suppressions, 2 to finish; per batch of CLAIM_BATCH_SIZE: the claim (UPDATE ... RETURNING) and the
    # outcomes (one UPDATE), each in its own transaction with SET LOCAL synchronous_commit (a savepoint and its
    # release here, inside the test's transaction). Renewing the lease costs nothing until a third of it passed.
    with django_assert_max_num_queries(11 + 2 * 4 * batches):
        assert delivery.send_chunk(digest.pk, chunk).sent == delivery.SEND_CHUNK_SIZE


def test_transient_refusals_are_retried_and_permanent_ones_fail_with_the_reason(digest, sink):
    ok = readers(6)
    readers(2, "reject")
    sink.refuse_mail = 2  # 421: closes the connection; the chunk is retried
    sink.defer_rcpt = 3  # 451 for one recipient: the rest of the chunk goes on
    counts = pipeline.send(digest)
    assert counts.summary() == "sent=6 skipped=0 failed=2 unsent=0"
    assert sink.received == {p.email: 1 for p in ok}
    assert sink.refused == {"421": 2, "451": 3, "550": 2}
    failed = Delivery.objects.filter(status="failed")
    assert {r.subscriber.email for r in failed} == {"reject0@example.com", "reject1@example.com"}
    assert all("550" in r.error and "No such user" in r.error for r in failed)
    assert Delivery.objects.filter(status="sent", attempts__gt=1).exists()


def test_retry_waits_grow_exponentially_with_jitter(settings):
    settings.DELIVERY_RETRY_BASE_SECONDS, settings.DELIVERY_RETRY_MAX_SECONDS = 10, 100
    waits = [[failures.backoff(n) for _ in range(50)] for n in range(6)]
    assert all(5 <= w <= 10 for w in waits[0]) and all(20 <= w <= 40 for w in waits[2])
    assert all(50 <= w <= 100 for w in waits[5])  # capped
    assert len(set(waits[2])) > 1  # jittered


def test_past_the_error_rate_the_send_pauses_itself_and_resumes(digest, sink, settings):
    settings.DELIVERY_PAUSE_MIN_OUTCOMES, settings.DELIVERY_PAUSE_ERROR_RATE = 10, 0.5
    readers(40, "reject")
    good = readers(40)
    counts = pipeline.send(digest)
    assert Digest.objects.get(pk=digest.pk).status == Digest.Status.PAUSED
    # Paused after the first batch that crossed the threshold: the later rows were never claimed.
    assert (counts.failed, counts.sent, counts.unsent) == (ledger.CLAIM_BATCH_SIZE, 0, 60)
    assert statuses(digest) == {"failed": 20, "queued": 60}

    Subscriber.objects.filter(email__startswith="reject").update(status=Subscriber.Status.UNSUBSCRIBED)
    assert digest_actions.resume(digest.pk).status == Digest.Status.SENT
    assert statuses(digest) == {"failed": 20, "skipped": 20, "sent": 40}
    assert sink.received == {p.email: 1 for p in good}
    assert Digest.objects.get(pk=digest.pk).status == Digest.Status.SENT


def test_pause_stops_claims_and_cancel_stops_for_good(digest, outbox):
    readers(5)
    chunk = delivery.start_send(digest.pk)
    digest_actions.pause(digest.pk)
    assert delivery.send_chunk(digest.pk, chunk).sent == 0
    digest_actions.cancel(digest.pk)
    with pytest.raises(digest_actions.ActionRefused, match="cannot make it sending"):
        digest_actions.resume(digest.pk)
    assert delivery.start_send(digest.pk, everyone=True) == []
    assert read_outbox(outbox) == []
    assert set(Delivery.objects.values_list("status", "error")) == {("skipped", "send cancelled")}


def hold(digest: Digest, chunk: list[int]) -> ledger.Lease:
    """A worker's lease on the chunk and its claim of every row, then nothing more: the worker is gone."""
    lease = ledger.Lease(digest.pk, chunk)
    rows = list(Delivery.objects.filter(subscriber_id__in=chunk).values_list("pk", flat=True))
    ledger.claim(digest.pk, rows, lease.token)
    return lease


@pytest.mark.parametrize(("policy", "expected"), [("resend", "queued"), ("ambiguous", "ambiguous")])
def test_the_sweeper_resolves_rows_a_dead_worker_left(digest, settings, policy, expected):
    settings.DELIVERY_STUCK_POLICY, settings.DELIVERY_LEASE_SECONDS = policy, 60
    readers(3)
    with time_machine.travel(NOON, tick=False):
        chunk = delivery.start_send(digest.pk)
        hold(digest, chunk)
    with time_machine.travel(NOON + timedelta(seconds=59), tick=False):
        assert sweeper.stuck_count() == 0
        found = sweeper.sweep()
        assert (found.resolved, dict(found.hand_out)) == (0, {})
    with time_machine.travel(NOON + timedelta(seconds=61), tick=False):
        assert sweeper.stuck_count() == 3
        found = sweeper.sweep()
        assert found.resolved == 3 and sweeper.stuck_count() == 0
        assert statuses(digest) == {expected: 3}
        assert dict(found.hand_out) == ({digest.pk: set(chunk)} if policy == "resend" else {})


def test_a_row_whose_workers_keep_dying_becomes_ambiguous(digest, settings):
    settings.DELIVERY_MAX_INTERRUPTIONS, settings.DELIVERY_LEASE_SECONDS = 2, 60
    readers(1)
    for minute in (0, 5):
        with time_machine.travel(NOON + timedelta(minutes=minute), tick=False):
            hold(digest, delivery.start_send(digest.pk))
        with time_machine.travel(NOON + timedelta(minutes=minute + 2), tick=False):
            sweeper.sweep()
    row = Delivery.objects.get()
    assert (row.status, row.interruptions) == ("ambiguous", 2)


def test_a_late_worker_cannot_overwrite_a_row_the_sweeper_gave_to_another(digest, outbox):
    readers(1)
    chunk = delivery.start_send(digest.pk)
    row = Delivery.objects.get()
    late = hold(digest, chunk)
    late.drop()  # its lease ran out and the sweeper took it
    sweeper.sweep()
    assert Delivery.objects.get().status == "queued"
    live = ledger.Lease(digest.pk, chunk)
    assert ledger.claim(digest.pk, [row.pk], live.token) == {row.pk: "active"}
    assert ledger.claim(digest.pk, [row.pk], late.token) == {}  # no lease, no claim
    row.status, row.error = Delivery.Status.FAILED, "late"
    ledger.record(late.token, [row])
    assert Delivery.objects.get().status == "sending"


def test_the_ledger_keeps_ninety_days(digest):
    readers(2)
    delivery.start_send(digest.pk)
    Delivery.objects.filter(subscriber__email="reader0@example.com").update(
        created_at=timezone.now() - timedelta(days=91)
    )
    assert ledger.purge_ledger() == 1
    assert list(Delivery.objects.values_list("subscriber__email", flat=True)) == ["reader1@example.com"]


def test_send_digest_builds_the_day_then_sends_and_summarizes(transactional_db, outbox, capsys):
    ingest_samples("hf")
    readers(4)
    call_command("send_digest", "--date", TODAY.isoformat(), "--dry-run")
    assert "4 active subscribers would receive" in capsys.readouterr().out
    assert read_outbox(outbox) == []
    call_command("send_digest", "--date", TODAY.isoformat())
    assert capsys.readouterr().out.strip().splitlines()[-1] == "sent=4 skipped=0 failed=0 unsent=0"
    readers(1, "late")  # joined after the send: the manual path serves whoever has not had it
    call_command("send_digest", "--date", TODAY.isoformat())
    assert capsys.readouterr().out.strip().splitlines()[-1] == "sent=5 skipped=0 failed=0 unsent=0"
    assert len(read_outbox(outbox)) == 5


def test_send_digest_on_a_day_without_papers_sends_nothing(db, outbox, capsys):
    readers(2)
    call_command("send_digest", "--date", TODAY.isoformat())
    out = capsys.readouterr().out
    assert "No new papers" in out and out.strip().endswith("sent=0 skipped=0 failed=0 unsent=0")
    assert read_outbox(outbox) == []


def test_with_an_anymail_backend_the_ledger_keeps_the_providers_message_id(digest, settings):
    from django.core import mail

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"  # anymail's own simulated provider
    readers(3)
    assert pipeline.send(digest).sent == 3
    ids = dict(Delivery.objects.values_list("subscriber__email", "message_id"))
    # The test provider's message id is the message's position in its outbox.
    assert ids == {message.to[0]: str(i) for i, message in enumerate(mail.outbox)}


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (smtplib.SMTPRecipientsRefused({"a@example.com": (451, b"greylisted")}), True),
        (smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"no such user")}), False),
        (smtplib.SMTPSenderRefused(421, b"closing", "digest@example.org"), True),
        (smtplib.SMTPDataError(554, b"rejected as spam"), False),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True),
        (TimeoutError("timed out"), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (AnymailAPIError("throttled", status_code=429), True),
        (AnymailAPIError("server error", status_code=503), True),
        (AnymailAPIError("bad request", status_code=400), False),
        (AnymailRecipientsRefused("all recipients rejected"), False),
        (KeyError("a bug in rendering"), False),
    ],
)
def test_errors_are_sorted_into_retry_later_and_give_up(error, transient):
    assert failures.is_transient(error) is transient


def test_weekly_readers_get_the_best_of_the_week_daily_readers_the_day(digest, outbox):
    old = Paper.objects.exclude(digestpaper__digest=digest).order_by("pk").first()
    Paper.objects.filter(pk=old.pk).update(listed=(NOON - timedelta(days=5)).date())
    interest = old.title  # matches this paper and, word for word, hardly any other
    readers(1, "daily", interests=interest)
    readers(1, "weekly", interests=interest, frequency=Subscriber.Frequency.WEEKLY)
    assert pipeline.send(digest).sent == 2
    mail = {m["To"]: parts(m)[0] for m in read_outbox(outbox)}
    assert old.title in " ".join(mail["weekly0@example.com"].split())
    # The daily reader may get papers that share some of those words (their reason then quotes the interest, the
    # old title): what was sent is read from the ledger, not from the text.
    assert old.pk not in Delivery.objects.get(subscriber__email="daily0@example.com").paper_ids
    weekly_row = Delivery.objects.get(subscriber__email="weekly0@example.com")
    assert old.pk in weekly_row.paper_ids


def test_send_digest_on_a_paused_send_says_so_and_sends_nothing(digest, outbox, capsys):
    readers(2)
    delivery.start_send(digest.pk)
    digest_actions.pause(digest.pk)
    with pytest.raises(SystemExit) as stopped:
        call_command("send_digest", "--date", TODAY.isoformat())
    lines = capsys.readouterr().out.strip().splitlines()
    assert stopped.value.code == 4
    assert lines[-2] == "The send is paused: 2 readers wait until it is resumed in the admin."
    assert lines[-1] == "sent=0 skipped=0 failed=0 unsent=2"
    assert read_outbox(outbox) == [] and statuses(digest) == {"queued": 2}


def test_ledger_writes_alone_skip_the_disk_flush(digest, postgres, settings):
    """Claims and outcomes commit without waiting for the WAL flush unless DELIVERY_LEDGER_SYNC_COMMIT; the
    setting is scoped to their own transaction, so every other write stays synchronous."""

    def inside() -> str:
        with ledger.ledger_write() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    def outside() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    assert (inside(), outside()) == ("off", "on")
    settings.DELIVERY_LEDGER_SYNC_COMMIT = True
    assert (inside(), outside()) == ("on", "on")


@pytest.mark.django_db
def test_the_ledger_keeps_only_the_indexes_its_queries_use(postgres):
    """Every send updates each row twice, writing into every index that covers the row: no index on the
    digest alone, the status alone or an unsent row's empty message id; rows waiting for a retry are few.
    On PostgreSQL, where the cost is paid (SQLite's introspection leaves out the primary key's index)."""
    from django.db import connection

    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, Delivery._meta.db_table)
    indexed = sorted(tuple(c["columns"]) for c in found.values() if c["index"] or c["unique"])
    assert indexed == sorted(
        [("id",), ("digest_id", "status"), ("digest_id", "subscriber_id"), ("subscriber_id",), ("claimed_at",),
         ("message_id",), ("sent_at",), ("next_attempt_at",)]
    )  # fmt: skip


def test_outcomes_too_long_for_their_column_are_refused_not_cut_short(postgres, digest, outbox):
    # PostgreSQL's one statement for a batch (SQLite, with its per-row statements, keeps any length).
    readers(1)
    delivery.start_send(digest.pk)
    row = Delivery.objects.get(digest=digest)
    token = ledger.Lease(digest.pk, [row.subscriber_id]).token
    assert ledger.claim(digest.pk, [row.pk], token)
    row.status, row.message_id = Delivery.Status.SENT, "x" * 301  # one past the column's 300
    with pytest.raises(DataError):
        ledger.record(token, [row])
    row.message_id = "x" * 300
    ledger.record(token, [row])
    assert Delivery.objects.get(pk=row.pk).message_id == "x" * 300
