"""Does sign-up's timing say who is subscribed? The median time of SAMPLES sign-up POSTs for addresses in each
state (new, pending, active, unsubscribed, suppressed), against gunicorn on PostgreSQL, in both modes: in-process
(no Redis: tasks run in the web process) and with Redis (tasks queued for a worker). Each state's median is
printed beside the fastest state's of the same mode; the target is within 10 % of it.

Requests go one at a time; the time is the client's, from sending the request to the last byte of the answer.
Each request's own time is what is measured: the work a request leaves for after its response (recording the
sign-up, mailing a confirmation; in-process, in the web process itself) would otherwise compete for the CPU with
the requests that come next, and on a 2-core machine they were measurably slower, whatever their own address.
So the client waits PAUSE_SECONDS between requests, and the order is a de Bruijn sequence of the states (every
state follows every state, itself included, equally often), repeated, so that whatever is left of that and the
machine's drift over the run fall on every state alike. That drift is then taken out lap by lap (`drift_removed`):
on a 2-core machine shared with other work, it moved single runs' medians by more than the 10 % under test.
BENCH_TIMING_SAMPLES (a multiple of 5) measures more than the 50 per state the target names.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import Row
from bench.bench_web import DEFAULT_REDIS_URL, ROOT, csrf_pair, free_port, service_env, start_gunicorn
from subscribers.models import Subscriber

# Requests per state and mode: 50 as the target is stated; BENCH_TIMING_SAMPLES (a multiple of 5) for more.
SAMPLES = int(os.environ.get("BENCH_TIMING_SAMPLES", "50"))
WARM_UP_REQUESTS = 10  # not counted: connections, prepared statements, templates, the first task
STATES = ("new", "pending", "active", "unsubscribed", "suppressed")
MAX_SPREAD = 0.10  # each state's median within 10 % of the fastest state's
DOMAIN = "bench-timing.example.com"
REQUEST_TIMEOUT_SECONDS = 10
PAUSE_SECONDS = 0.1  # on a busy 2-core machine, 0.03 s still left the request before showing in the next


def make_readers(rounds: int) -> dict[str, list[str]]:
    """`rounds` addresses per state, the known ones stored in that state (new ones are not stored)."""
    Subscriber.objects.filter(email__endswith=f"@{DOMAIN}").delete()
    addresses = {state: [f"{state}-{n}@{DOMAIN}" for n in range(rounds)] for state in STATES}
    Subscriber.objects.bulk_create(
        Subscriber(email=address, status=state)
        for state, emails in addresses.items()
        if state != "new"
        for address in emails
    )
    return addresses


def de_bruijn(symbols: tuple[str, ...]) -> list[str]:
    """Every ordered pair of `symbols` exactly once, read cyclically (B(k, 2), by the standard Lyndon-word
    construction): len(symbols)**2 items, each symbol len(symbols) times, after each symbol once."""
    k, sequence, a = len(symbols), [], [0] * (2 * len(symbols))

    def extend(t: int, p: int) -> None:
        if t > 2:
            if 2 % p == 0:
                sequence.extend(a[1 : p + 1])
            return
        a[t] = a[t - p]
        extend(t + 1, p)
        for j in range(a[t - p] + 1, k):
            a[t] = j
            extend(t + 1, t)

    extend(1, 1)
    return [symbols[i] for i in sequence]


def measure(base: str, cookie: str, token: str, addresses: dict[str, list[str]]) -> dict[str, list[float]]:
    """Milliseconds per sign-up, by state, warm-up requests left out, each scaled by its lap's median over the
    run's (see `drift_removed`)."""
    cycle = de_bruijn(STATES)
    order = cycle[-WARM_UP_REQUESTS:] + cycle * (SAMPLES // len(STATES))  # the warm-up leads into the first lap
    unused = {state: iter(emails) for state, emails in addresses.items()}
    measured: list[tuple[str, float]] = []
    with httpx.Client(base_url=base, cookies={"csrftoken": cookie}, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        for n, state in enumerate(order):
            data = {"csrfmiddlewaretoken": token, "email": next(unused[state]), "frequency": "daily"}
            started = time.perf_counter()
            response = client.post("/subscribe/", data=data)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"sign-up answered {response.status_code} for a {state} address")
            if n >= WARM_UP_REQUESTS:
                measured.append((state, elapsed * 1000))
            time.sleep(PAUSE_SECONDS)
    return drift_removed(measured, len(cycle))


def drift_removed(measured: list[tuple[str, float]], lap: int) -> dict[str, list[float]]:
    """Each time times the run's median over its lap's median. A lap holds every state equally often, so what
    the machine was doing meanwhile (other processes come and go over seconds) weighs on all states alike and
    is taken out; a state that is slower stays slower within every lap."""
    overall = statistics.median(ms for _, ms in measured)
    timings: dict[str, list[float]] = {state: [] for state in STATES}
    for start in range(0, len(measured), lap):
        laps = measured[start : start + lap]
        lap_median = statistics.median(ms for _, ms in laps)
        for state, ms in laps:
            timings[state].append(ms * overall / lap_median)
    return timings


def purge_queue(env: dict[str, str]) -> None:
    """The Redis run queued one confirmation task per sign-up and no worker ran them: drop them."""
    command = [sys.executable, "-m", "celery", "-A", "newsletter", "purge", "-f", "-Q", "default"]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)


def run_mode(mode: str, redis_url: str, workdir: Path) -> list[Row]:
    env = service_env(workdir / f"outbox-{mode}", redis_url)
    if mode == "in-process":
        env = env | {"REDIS_URL": ""}  # no broker: Celery runs each task in the web process
    addresses = make_readers(WARM_UP_REQUESTS + SAMPLES)
    port = free_port()
    server = start_gunicorn(port, env)
    try:
        cookie, token = csrf_pair(f"http://127.0.0.1:{port}")
        timings = measure(f"http://127.0.0.1:{port}", cookie, token, addresses)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if mode == "redis":
            purge_queue(env)
        Subscriber.objects.filter(email__endswith=f"@{DOMAIN}").delete()
    medians = {state: statistics.median(values) for state, values in timings.items()}
    fastest = min(medians.values())
    target, limit = f"<= {1 + MAX_SPREAD:.0%} of fastest", f"fastest state's median ({mode})"
    within = {state: median <= fastest * (1 + MAX_SPREAD) for state, median in medians.items()}
    return [
        Row("timing", f"{mode}: sign-up median ms, {state}", median, limit, fastest, target, within[state])
        for state, median in medians.items()
    ]


def run(size: int) -> list[Row]:
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    with tempfile.TemporaryDirectory(prefix="bench-timing-") as tmp:
        return run_mode("in-process", redis_url, Path(tmp)) + run_mode("redis", redis_url, Path(tmp))
