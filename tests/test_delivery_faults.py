"""A provider outage or a dead worker delays mail; it never loses it. In one process, on the ledger, with a real
SMTP server that refuses on purpose and the clock moved by hand: retries over hours at each row's own time,
refused addresses counted toward suppression, one Message-ID per reader's copy, leases that hand a dead
worker's chunk to the live ones, `send_digest`'s waiting lines and exit statuses. The same with worker
processes: test_delivery_workers.py."""

import smtplib
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from anymail.exceptions import AnymailRecipientsRefused
from django.core.management import call_command

from newsletter import pipeline
from newsletter.backoffice import actions as digest_actions
from newsletter.config.celery import app as celery_app
from newsletter.emails.headers import digest_message_id
from newsletter.models import Delivery, Digest
from newsletter.sending import delivery, failures, ledger, sweeper
from newsletter.tasks import sweep_task
from subscribers.models import Subscriber, Suppression, email_hash
from tests.delivery_support import NOON, TODAY, digest_fixture, readers, sink_fixture, statuses  # noqa: F401 - fixtures
from tests.helpers import read_outbox

ROOT = Path(__file__).resolve().parent.parent
REFUSED_AT_MAIL = "SMTPSenderRefused: (421"


def test_an_outage_longer_than_any_count_of_attempts_delays_mail_and_loses_nobody(digest, sink):
    ok = readers(3)
    sink.refuse_mail = 12  # 421 on the first dozen MAIL FROMs: more tries than the old fixed count of six
    counts = pipeline.send(digest)
    assert counts.summary() == "sent=3 skipped=0 failed=0 unsent=0"
    assert sink.received == {p.email: 1 for p in ok} and sink.refused["421"] == 12
    assert Delivery.objects.get(subscriber=ok[0]).attempts == 13


def test_rows_wait_for_their_own_next_attempt_and_the_digest_is_not_sent_meanwhile(digest, sink, settings):
    settings.DELIVERY_RETRY_BASE_SECONDS, settings.DELIVERY_RETRY_MAX_SECONDS = 30, 1800
    people = readers(3)
    sink.refuse_mail = 1  # the first message is refused with 421: the connection is gone for the whole chunk
    with time_machine.travel(NOON, tick=False):
        chunk = delivery.start_send(digest.pk)
        counts = delivery.send_chunk(digest.pk, chunk)
        assert (counts.sent, counts.retry) == (0, 3)
        rows = list(Delivery.objects.order_by("subscriber_id"))
        assert {r.status for r in rows} == {"queued"} and [r.attempts for r in rows] == [1, 0, 0]
        waits = {(r.next_attempt_at - NOON).total_seconds() for r in rows}
        assert len(waits) == 1 and 15 <= waits.pop() <= 30  # the untried rows wait as long as the refused one
        assert rows[0].retry_until == NOON + timedelta(hours=12) and REFUSED_AT_MAIL in rows[0].error
        assert Digest.objects.get(pk=digest.pk).status == Digest.Status.SENDING
    with time_machine.travel(NOON + timedelta(seconds=14), tick=False):
        assert delivery.send_chunk(digest.pk, chunk).sent == 0  # a task run early claims nothing
        assert dict(sweeper.sweep().hand_out) == {}  # nor does the sweeper hand them out
        waiting = ledger.waiting(digest.pk)
        assert waiting.rows == 3 and waiting.error.startswith(REFUSED_AT_MAIL)
    with time_machine.travel(NOON + timedelta(seconds=31), tick=False):
        # Due and not yet handed out: still waiting for their retry (a report at this instant once said nobody was,
        # and send_digest's outage report came out empty).
        assert ledger.waiting(digest.pk).rows == 3
        sweep_task()  # in-process, the chunk it queues runs at once
    assert sink.received == {p.email: 1 for p in people}
    assert ledger.waiting(digest.pk).rows == 0
    assert Digest.objects.get(pk=digest.pk).status == Digest.Status.SENT


def test_a_row_fails_only_once_its_retry_window_is_over(digest, sink, settings):
    settings.DELIVERY_RETRY_WINDOW_HOURS = 12
    (reader,) = readers(1)
    sink.defer_rcpt = 1000  # greylisted for good
    with time_machine.travel(NOON, tick=False):
        delivery.send_chunk(digest.pk, delivery.start_send(digest.pk))
    for hours in (1, 6, 11.9):
        with time_machine.travel(NOON + timedelta(hours=hours), tick=False):
            sweep_task()
        assert statuses(digest) == {"queued": 1}
    with time_machine.travel(NOON + timedelta(hours=12, seconds=1), tick=False):
        sweep_task()
    row = Delivery.objects.get(subscriber=reader)
    assert row.status == "failed" and row.attempts == 5 and sink.refused["451"] == 5
    assert row.error.startswith("gave up after 12 h of transient errors (5 tries); the last: SMTPRecipientsRefused")
    assert Digest.objects.get(pk=digest.pk).status == Digest.Status.SENT


@pytest.mark.parametrize(
    ("error", "refuses"),
    [
        (smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"5.1.1 no such user")}), True),
        (smtplib.SMTPRecipientsRefused({"a@example.com": (451, b"greylisted")}), False),
        (smtplib.SMTPSenderRefused(550, b"sender refused", "digest@example.org"), False),  # our fault, not theirs
        (smtplib.SMTPDataError(554, b"rejected as spam"), False),
        (AnymailRecipientsRefused("all recipients rejected"), True),
    ],
)
def test_only_a_refusal_of_the_recipient_counts_against_the_address(error, refuses):
    assert failures.refuses_recipient(error) is refuses


def test_a_refused_address_is_suppressed_once_past_the_limit_and_retrying_leaves_it_alone(digest, sink, settings):
    settings.DELIVERY_REJECTION_LIMIT = 2
    (refused,) = readers(1, "reject")
    (gone,) = readers(1, "reject-later-unsubscribed")
    assert pipeline.send(digest).summary() == "sent=0 skipped=0 failed=2 unsent=0"
    refused.refresh_from_db()
    assert (refused.status, refused.rejections) == ("active", 1)  # one refusal is not yet a verdict
    Subscriber.objects.filter(pk=gone.pk).update(status=Subscriber.Status.UNSUBSCRIBED)

    digest_actions.retry_failed(digest.pk)  # the reader who left stays failed; the other is tried again
    assert Delivery.objects.get(subscriber=gone).status == "failed"
    assert pipeline.send(digest).summary() == "sent=0 skipped=0 failed=2 unsent=0"
    refused.refresh_from_db()
    assert (refused.status, refused.rejections) == ("suppressed", 2)
    suppression = Suppression.objects.get(email_hash=email_hash(refused.email))
    assert suppression.reason == "bounce" and "refused 2 times, the last: SMTPRecipientsRefused" in suppression.detail
    assert sink.refused["550"] == 3
    with pytest.raises(digest_actions.ActionRefused, match="no failed delivery to retry"):
        digest_actions.retry_failed(digest.pk)


def test_a_readers_copy_has_one_message_id_on_every_attempt_and_in_every_process(digest, sink):
    (reader,) = readers(1)
    sink.defer_data = 1  # the whole message was read, then refused with 451: it goes again
    pipeline.send(digest)
    [(_, first), (_, second)] = sink.message_ids
    row = Delivery.objects.get()
    assert first == second == row.message_id == digest_message_id(digest, reader)
    assert sink.received == {reader.email: 1}
    code = (
        "import django, sys; django.setup(); from datetime import date; from newsletter.emails.headers import "
        "digest_message_id; from newsletter.models import Digest; from subscribers.models import Subscriber; "
        f"print(digest_message_id(Digest(pk={digest.pk}, date=date.fromisoformat('{digest.date}')), "
        f"Subscriber(pk={reader.pk})))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert other.stdout.strip() == row.message_id
    assert digest_message_id(digest, Subscriber(pk=reader.pk + 1)) != row.message_id


def hold(digest: Digest, chunk: list[int], claimed: int) -> ledger.Lease:
    """A worker takes the chunk and claims its first rows, then dies."""
    lease = ledger.Lease(digest.pk, chunk)
    rows = Delivery.objects.filter(digest=digest, subscriber_id__in=chunk).order_by("subscriber_id")
    ledger.claim(digest.pk, list(rows.values_list("pk", flat=True)[:claimed]), lease.token)
    return lease


def test_a_dead_workers_whole_chunk_goes_to_the_live_workers_once_its_lease_runs_out(digest, outbox, settings):
    settings.DELIVERY_LEASE_SECONDS = 60
    people = readers(60)
    with time_machine.travel(NOON, tick=False):
        chunk = delivery.start_send(digest.pk)
        hold(digest, chunk, claimed=ledger.CLAIM_BATCH_SIZE)
        assert statuses(digest) == {"sending": 20, "queued": 40}
    with time_machine.travel(NOON + timedelta(seconds=59), tick=False):
        sweep_task()
        assert statuses(digest) == {"sending": 20, "queued": 40}  # nobody touches a live lease's chunk
    with time_machine.travel(NOON + timedelta(seconds=61), tick=False):
        assert sweep_task() == 20  # the claimed rows resolved; all 60 readers handed out, and sent here
    assert sorted(m["To"] for m in read_outbox(outbox)) == sorted(p.email for p in people)
    assert Delivery.objects.filter(interruptions=1).count() == 20
    assert Digest.objects.get(pk=digest.pk).status == Digest.Status.SENT


def test_a_live_worker_keeps_its_chunk_by_renewing_the_lease(digest, settings):
    settings.DELIVERY_LEASE_SECONDS = 60
    readers(3)
    with time_machine.travel(NOON, tick=False):
        chunk = delivery.start_send(digest.pk)
        lease = hold(digest, chunk, claimed=3)
    with time_machine.travel(NOON + timedelta(seconds=50), tick=False):
        assert lease.keep()  # due: renewed until 50 + 60 s
    with time_machine.travel(NOON + timedelta(seconds=100), tick=False):
        assert sweeper.stuck_count() == 0 and sweeper.sweep().resolved == 0
    with time_machine.travel(NOON + timedelta(seconds=111), tick=False):
        assert sweeper.sweep().resolved == 3
        assert not lease.keep()  # the sweeper took it: the worker must stop claiming


def test_tasks_the_broker_lost_are_handed_out_when_nobody_holds_the_send(digest, settings):
    people = readers(5)
    with time_machine.travel(NOON, tick=False):
        delivery.start_send(digest.pk)  # rows queued; their tasks are gone with a broker restarted empty
    with time_machine.travel(NOON + sweeper.LOST_TASK_GRACE - timedelta(seconds=1), tick=False):
        assert dict(sweeper.sweep().hand_out) == {}  # just queued: their tasks may still be on their way
    with time_machine.travel(NOON + sweeper.LOST_TASK_GRACE + timedelta(seconds=1), tick=False):
        assert dict(sweeper.sweep(send_queue_empty=lambda: False).hand_out) == {}  # tasks wait in the queue
        assert dict(sweeper.sweep().hand_out) == {digest.pk: {p.pk for p in people}}


def last_lines(capsys, count: int = 2) -> list[str]:
    return capsys.readouterr().out.strip().splitlines()[-count:]


def test_send_digest_exits_3_when_readers_failed_and_retry_failed_queues_them_again(digest, sink, capsys):
    readers(2)
    readers(1, "reject")
    with pytest.raises(SystemExit) as stopped:
        call_command("send_digest", "--date", TODAY.isoformat())
    assert stopped.value.code == 3
    assert last_lines(capsys) == [
        f"1 readers failed: their errors are in the admin's delivery ledger; send_digest --date {TODAY} "
        "--retry-failed queues them again.",
        "sent=2 skipped=0 failed=1 unsent=0",
    ]
    Subscriber.objects.filter(email__startswith="reject").update(email="fixed@example.com")  # the address corrected
    call_command("send_digest", "--date", TODAY.isoformat(), "--retry-failed")
    out = capsys.readouterr().out.strip().splitlines()
    assert f"Failed deliveries of the {TODAY} digest queued again." in out
    assert out[-1] == "sent=3 skipped=0 failed=0 unsent=0"
    assert statuses(digest) == {"sent": 3} and sink.received["fixed@example.com"] == 1


def test_send_digest_says_what_it_waits_for_and_exits_4_while_readers_wait(digest, sink, settings, capsys):
    settings.DELIVERY_RETRY_BASE_SECONDS = 60  # the first retry comes 30-60 s later: longer than the command waits
    readers(3)
    sink.refuse_mail = 1
    with pytest.raises(SystemExit) as stopped:
        call_command("send_digest", "--date", TODAY.isoformat(), "--timeout", "0.5")
    out = capsys.readouterr().out.strip().splitlines()
    assert stopped.value.code == 4
    waiting = [line for line in out if "waiting for a retry" in line]
    assert waiting and waiting[0].startswith(f"0 of 3 done; 3 readers waiting for a retry after '{REFUSED_AT_MAIL}")
    assert "4.3.2 Service not available" in waiting[0] and waiting[0].endswith(" s")
    assert 30 <= int(waiting[0].rsplit("next attempt in ", 1)[1].removesuffix(" s")) <= 60
    assert out[-2:] == [
        f"3 readers are not sent yet (waiting for a retry): the workers go on with them; run send_digest --date "
        f"{TODAY} again to follow.",
        "sent=0 skipped=0 failed=0 unsent=3",
    ]
    assert Digest.objects.get(pk=digest.pk).status == Digest.Status.SENDING


def test_every_queue_is_declared_so_a_bare_worker_serves_them_all():
    """`celery -A newsletter worker` consumes every declared queue; only `default` was, so no mail went out."""
    assert set(celery_app.amqp.queues) == {"default", "send", "fetch"}
    route = celery_app.amqp.router.route
    assert route({}, "newsletter.tasks.send_chunk_task")["queue"].name == "send"
    assert route({}, "papers.tasks.fetch_source")["queue"].name == "fetch"
    assert route({}, "newsletter.tasks.sweep_task")["queue"].name == "default"
