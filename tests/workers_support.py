"""Worker processes as operators start them, and a population of readers, for the acceptance tests
(tests/test_delivery_workers.py) and the fault drills of `make bench` (bench/bench_outage.py).

Workers start the way the Procfile says, or as Celery's own first command (`celery -A newsletter worker`, with
nothing else), on the clock of the test that starts them; each can be killed with SIGKILL, its child processes
with it, and the rows it held in `sending` are then the messages it had in flight."""

import os
import re
import signal
import subprocess
from collections import Counter
from datetime import date
from pathlib import Path

import psutil
import pytest
from django.db import connection

from newsletter.digests.build import build_digest
from newsletter.models import Delivery
from papers.ingest import fetch_and_ingest
from papers.models import Paper
from subscribers.models import Subscriber, Suppression, email_hash
from tests import clock

ROOT = Path(__file__).resolve().parent.parent
PROCFILE_DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")  # ${NAME:-default}, as a shell expands it


def process_env(redis_url: str, settings: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a process we start (a worker, a command): this one's plus the database the test runs on
    (the test database, not the one DATABASE_URL names), the given Redis and any further settings."""
    db = connection.settings_dict
    return os.environ | {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        **(settings or {}),
    }


def procfile_command(process: str = "worker") -> list[str]:
    """The Procfile's command for `process`, its ${NAME:-default}s expanded from the environment as a shell would."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            expanded = PROCFILE_DEFAULT.sub(lambda m: os.environ.get(m[1], m[2]), command)
            return expanded.split()
    raise LookupError(f"no {process} in the Procfile")


BARE_WORKER = ["celery", "-A", "newsletter", "worker"]  # Celery's own first command, nothing added


class Workers:
    """Celery worker processes, started as `kind` says: "procfile" or "bare"."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.processes: list[subprocess.Popen] = []

    def start(self, kind: str) -> subprocess.Popen:
        command = {"procfile": procfile_command(), "bare": BARE_WORKER}[kind]
        assert command[0] == "celery", command
        log = (self.logs / f"worker-{len(self.processes)}-{kind}.log").open("w")
        process = subprocess.Popen(
            clock.command(*command),
            cwd=ROOT, env=clock.env(self.env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        process.kind = kind
        self.processes.append(process)
        return process

    @staticmethod
    def pids(process: subprocess.Popen) -> set[int]:
        """The worker and its pool's processes (prefork): a claim token names the process that claimed."""
        try:
            return {process.pid} | {child.pid for child in psutil.Process(process.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            return {process.pid}

    def kill(self, process: subprocess.Popen) -> int:
        """SIGKILL to the worker and its children, then the rows they held: the messages in flight at its death."""
        pids = self.pids(process)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return held_by(pids)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def held_by(pids: set[int]) -> int:
    prefixes = tuple(f"{pid:x}-" for pid in pids)
    tokens = Delivery.objects.filter(status="sending").values_list("claim_token", flat=True)
    return sum(1 for token in tokens if token.startswith(prefixes))


def sent_by(pids: set[int]) -> int:
    prefixes = tuple(f"{pid:x}-" for pid in pids)
    tokens = Delivery.objects.filter(status="sent").values_list("claim_token", flat=True)
    return sum(1 for token in tokens if token.startswith(prefixes))


def population(day: date, active: int, rejected: int = 0, refused_before: int = 0) -> dict[str, list[str]]:
    """Active readers (one in ten with interests), some refused by the server with 550 (the first
    `refused_before` of them refused once already, on an earlier day), some unsubscribed, some suppressed by
    status and some only by a Suppression entry (e.g. a bounce recorded by hash). The day's digest built."""
    groups = {
        "active": [f"reader{i}@example.com" for i in range(active)],
        "rejected": [f"reject{i}@example.com" for i in range(rejected)],
        "unsubscribed": [f"left{i}@example.com" for i in range(active // 40)],
        "suppressed": [f"bounced{i}@example.com" for i in range(active // 40)],
        "hash_suppressed": [f"complained{i}@example.com" for i in range(active // 100)],
    }
    status = {"unsubscribed": "unsubscribed", "suppressed": "suppressed"}
    people = [(group, i, email) for group, emails in groups.items() for i, email in enumerate(emails)]
    # Refused addresses spread through the list, as stale ones are, not bunched in one chunk: a chunk of them
    # served first after an outage would look like a failing send and pause it.
    people.sort(key=lambda person: person[1] * active // max(rejected, 1) if person[0] == "rejected" else person[1])
    Subscriber.objects.bulk_create(
        Subscriber(
            email=email,
            status=status.get(group, "active"),
            interests="language models, reinforcement learning" if i % 10 == 0 else "",
            rejections=1 if group == "rejected" and i < refused_before else 0,
        )
        for group, i, email in people
    )
    Suppression.objects.bulk_create(
        Suppression(email_hash=email_hash(e), reason=Suppression.Reason.COMPLAINT) for e in groups["hash_suppressed"]
    )
    if not Paper.objects.exists():
        fetch_and_ingest("hf", offline=True)
        fetch_and_ingest("json", offline=True)
    Paper.objects.update(listed=day)  # news on `day`
    build_digest(day)
    return groups


def send_digest(env: dict[str, str], day: date, logs: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        clock.command("manage.py", "send_digest", "--date", day.isoformat(), *options),
        cwd=ROOT, env=clock.env(env), stdout=subprocess.PIPE, stderr=(logs / "send_digest.log").open("a"), text=True,
    )  # fmt: skip


def ledger() -> dict[str, int]:
    return dict(Counter(Delivery.objects.values_list("status", flat=True)))


def finish(command: subprocess.Popen, logs: Path, timeout: float) -> tuple[int, list[str]]:
    """send_digest's exit status and lines, once it ends; the ledger and its log in the failure if it does not."""
    try:
        out, _ = command.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        command.kill()
        pytest.fail(f"send_digest did not finish; ledger: {ledger()}; logs: {(logs / 'send_digest.log').read_text()}")
    return command.returncode, out.strip().splitlines()
