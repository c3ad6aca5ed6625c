"""Fault drills at full size, with the production defaults (backoff, lease, sweeper): what an outage of the
provider and dead workers cost in time, on two workers started as operators start them (the Procfile's command
and a bare `celery -A newsletter worker`) and `send_digest` as an operator runs it.

- outage: the SMTP server refuses every MAIL FROM with 421 for OUTAGE_SECONDS of a 2,000-reader send, then
  accepts; some addresses are refused with 550. Measured: how long after the outage the last reader was
  served, the longest silence of `send_digest` while it waited, its exit status.
- kills: a worker SIGKILLed twice mid-send (each time replaced). Measured: how long after the last kill the last
  reader was served (the target: 2 minutes), duplicates against the messages in flight at the kills.
Everything runs on its own database (<bench db>_outage), its own redis-server and an SMTP server in this process.
The same drills, scaled down to run in seconds, are acceptance tests (tests/test_delivery_workers.py).
"""

import tempfile
import threading
import time
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

from django.utils import timezone

from bench import Row, own_database, smtp_env

READERS = 2_000  # the drills' size, whatever BENCH_SUBSCRIBERS says: the figures are times, not rates
REJECTED = 20  # refused with 550; half of them were refused once before, so past the limit of 2
OUTAGE_SECONDS = 120
KILLS_AT = (500, 1_100)  # sent rows at which a worker dies
KILL_TARGET_SECONDS = 120  # every reader served within 2 minutes of the last kill
SILENCE_TARGET_SECONDS = 60  # `send_digest` never says nothing for a minute while it waits
DRILL_TIMEOUT_SECONDS = 900
POLL_SECONDS = 0.05


def run(size: int) -> list[Row]:
    from tests import smtp_sink
    from tests.private_redis import PrivateRedis
    from tests.workers_support import Workers

    with own_database("outage") as database_url:
        tmp = Path(tempfile.mkdtemp(prefix="bench-outage-"))
        broker = PrivateRedis(tmp)
        broker.start()
        controller, sink, port = smtp_sink.start(pipelining=True)
        workers = Workers(smtp_env(database_url, broker.url, port), tmp)
        try:
            reset()
            running = [workers.start("procfile"), workers.start("bare")]
            rows = outage_drill(workers.env, sink, tmp)
            reset()
            sink.received.clear()
            rows += kill_drill(workers.env, sink, workers, running, tmp)
        finally:
            workers.stop_all()
            controller.stop()
            broker.stop()
    return rows


def reset() -> None:
    """No readers, digests or suppressions from an earlier drill or run."""
    from django.core.management import call_command

    from newsletter.models import Digest
    from subscribers.models import Subscriber, Suppression

    call_command("migrate", verbosity=0)
    Digest.objects.all().delete()
    Subscriber.objects.all().delete()
    Suppression.objects.all().delete()


class Command:
    """`send_digest` with each line of its output stamped as it comes."""

    def __init__(self, env: dict[str, str], day, logs: Path) -> None:
        from tests.workers_support import send_digest

        self.started = time.monotonic()
        self.process = send_digest(env, day, logs)
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait(self) -> int:
        code = self.process.wait(timeout=DRILL_TIMEOUT_SECONDS)
        self.reader.join(timeout=10)
        return code

    def longest_silence(self) -> float:
        stamps = [self.started, *(at for at, _ in self.lines)]
        return max(b - a for a, b in pairwise(stamps))


def outage_drill(env: dict[str, str], sink, logs: Path) -> list[Row]:
    from subscribers.models import Subscriber
    from tests.workers_support import population

    day = timezone.now().date()
    groups = population(day, active=READERS - REJECTED, rejected=REJECTED, refused_before=REJECTED // 2)
    sink.refuse_until = time.monotonic() + OUTAGE_SECONDS
    command = Command(env, day, logs)
    code = command.wait()
    outage_end = command.started + OUTAGE_SECONDS
    served_after = sink.last_new_at - outage_end
    doubles = sum(n - 1 for n in sink.received.values())
    suppressed = Subscriber.objects.filter(email__startswith="reject", status="suppressed").count()
    last = command.lines[-1][1] if command.lines else ""
    print(
        f"  outage: exit {code}, {last!r}; last reader served {served_after:.1f} s after {OUTAGE_SECONDS} s of 421; "
        f"longest silence {command.longest_silence():.1f} s; duplicates {doubles}; suppressed {suppressed} of "
        f"{REJECTED} refused; refused {dict(sink.refused)}",
        flush=True,
    )
    for i, (at, line) in enumerate(command.lines):
        if "waiting" in line or i >= len(command.lines) - 2:
            print(f"    +{at - command.started:6.1f} s  {line}", flush=True)
    served = len(set(sink.received) & set(groups["active"]))
    return [
        Row("outage", f"s to last reader after {OUTAGE_SECONDS} s 421", served_after, "", None,
            "all served, once", served == len(groups["active"]) and doubles == 0),
        Row("outage", "longest silence of send_digest, s", command.longest_silence(), "", None,
            f"< {SILENCE_TARGET_SECONDS} s", command.longest_silence() < SILENCE_TARGET_SECONDS),
        Row("outage", "exit status (3: some refused)", code, "", None, "3", code == 3),
    ]  # fmt: skip


def kill_drill(env: dict[str, str], sink, workers, running: list, logs: Path) -> list[Row]:
    from newsletter.models import Delivery
    from tests.workers_support import population

    day = timezone.now().date() + timedelta(days=1)
    groups = population(day, active=READERS)
    command = Command(env, day, logs)
    in_flight, last_kill = [], 0.0
    kills = list(KILLS_AT)
    deadline = time.monotonic() + DRILL_TIMEOUT_SECONDS
    while kills and command.process.poll() is None and time.monotonic() < deadline:
        if Delivery.objects.filter(digest__date=day, status="sent").count() >= kills[0]:
            kills.pop(0)
            victim = running.pop(0)
            in_flight.append(workers.kill(victim))
            last_kill = time.monotonic()
            running.append(workers.start(victim.kind))
        time.sleep(POLL_SECONDS)
    code = command.wait()
    served_after = sink.last_new_at - last_kill
    doubles = sum(n - 1 for n in sink.received.values())
    served = len(set(sink.received) & set(groups["active"]))
    print(
        f"  kills: exit {code}, {command.lines[-1][1] if command.lines else ''!r}; {len(KILLS_AT) - len(kills)} kills, "
        f"in flight {in_flight}; last reader served {served_after:.1f} s after the last kill; duplicates {doubles}",
        flush=True,
    )
    return [
        Row("kills", "s from last kill to last reader", served_after, "target", KILL_TARGET_SECONDS,
            f"<= {KILL_TARGET_SECONDS} s, all served", served_after <= KILL_TARGET_SECONDS and served == READERS),
        Row("kills", "duplicate messages", doubles, "messages in flight at the kills", sum(in_flight),
            "<= in flight", doubles <= sum(in_flight)),
    ]  # fmt: skip
