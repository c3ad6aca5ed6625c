"""Load test of the two endpoints mail and sign-up traffic hit hardest: sign-up POSTs and RFC 8058 one-click
unsubscribe POSTs, with wrk against gunicorn (2 workers) on PostgreSQL, loopback only.

Bounded twice: each wrk run lasts DURATION_SECONDS and its threads stop after MAX_REQUESTS responses. wrk
divides by the whole duration even when its threads stop early, so the request bound sits well above what
the targets need (a run that reaches it reports a rate that is a lower bound, and says so).
The rate limits are raised for the run through their settings (SUBSCRIBE_RATE_PER_IP / _PER_ADDRESS).
As in production, gunicorn runs with Redis (BENCH_REDIS_URL, default db 13): the rate-limit counters live
there and each sign-up queues its task there (the task records the sign-up and mails the confirmation). One
Celery worker is started after the load phase, so the measured web figures don't share the machine's cores
with it; it drains the queue into the bench's database and own outbox. Afterwards every accepted sign-up must
be in the database and have its .eml.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis
from django.conf import settings

from bench import Row
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, make_token

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2  # the setting: what one small web box runs
# 1 = gunicorn's sync workers, as the Procfile runs them; BENCH_WEB_THREADS=4 tries gthread workers.
THREADS = int(os.environ.get("BENCH_WEB_THREADS", "1"))
WRK_THREADS, WRK_CONNECTIONS = 2, 8  # enough concurrency to keep 2 sync workers busy without queueing
DURATION_SECONDS = 6  # a few thousand requests per run: enough for a p99, and the sign-ups drain in seconds
CEILING_DURATION_SECONDS = 3
MAX_REQUESTS = 30_000  # far above what DURATION_SECONDS at any rate seen here brings, still a bound

TARGET_RPS = 300
TARGET_P99_MS = 200
START_TIMEOUT_SECONDS = 30
BENCH_DOMAIN = "bench-web.example.com"
RAISED_LIMIT = 10**9  # "no limit" for the run; the limiter still counts every request
# The same gunicorn serving a static file (no database, no template): what this machine allows right now.
CEILING = "static file, same server"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
DRAIN_TIMEOUT_SECONDS = 300

LUA_COMMON = """
local threads = {}
counter, responses, ok = 0, 0, 0
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function response(status, headers, body)
  responses = responses + 1
  if status == 200 then ok = ok + 1 end
  if responses >= MAX_PER_THREAD then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local accepted = 0
  for _, t in ipairs(threads) do accepted = accepted + t:get("ok") end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"socket_errors": %d, "status_errors": %d, "ok": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status, accepted))
end
"""

LUA_STATIC = """
function request()
  return wrk.format("GET", "/static/site.css")
end
"""

LUA_SIGNUP = """
local headers = {["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = "csrftoken=COOKIE"}
function request()
  counter = counter + 1
  local body = "csrfmiddlewaretoken=TOKEN&frequency=daily&interests=diffusion&email=signup-RUN-" .. tid .. "-" ..
    counter .. "%40DOMAIN"
  return wrk.format("POST", "/subscribe/", headers, body)
end
"""

LUA_UNSUBSCRIBE = """
local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
local paths = {}
local index = nil
function request()
  if index == nil then
    for line in io.lines("TOKENS") do table.insert(paths, line) end
    index = tid
  end
  index = index + THREADS
  local path = paths[(index % #paths) + 1]
  return wrk.format("POST", path, headers, "List-Unsubscribe=One-Click")
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(outbox: Path, redis_url: str) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": redis_url,
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,  # the tokens made here must verify there
        "OUTBOX_DIR": str(outbox),
        "SUBSCRIBE_RATE_PER_IP": str(RAISED_LIMIT),
        "SUBSCRIBE_RATE_PER_ADDRESS": str(RAISED_LIMIT),
        "LOG_LEVEL": "WARNING",
    }


def start_gunicorn(port: int, env: dict[str, str]) -> subprocess.Popen:
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    command = [sys.executable, "-m", "gunicorn", "newsletter.config.wsgi", "--workers", str(WORKERS)]
    command += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--threads", str(THREADS)]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("gunicorn did not answer /healthz in time")


def csrf_pair(base: str) -> tuple[str, str]:
    """One cookie + form token pair, reused by every sign-up request of the run."""
    response = httpx.get(f"{base}/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text).group(1)
    return response.cookies["csrftoken"], token


def queue_drained(redis_url: str) -> bool:
    """No task waiting in the default queue and none taken but unfinished (kombu's Redis transport keeps those
    in its "unacked" hash until the worker acknowledges them)."""
    client = redis.Redis.from_url(redis_url)
    return client.llen("default") == 0 and client.hlen("unacked") == 0


def drain_queue(env: dict[str, str], outbox: Path, expected: int) -> float:
    """Run one Celery worker until the queue is empty and the outbox holds at least `expected` messages; returns
    emails per second."""
    command = [sys.executable, "-m", "celery", "-A", "newsletter", "worker", "--queues", "default"]
    command += ["--concurrency", "2", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
    log = outbox.parent / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        started = time.monotonic()
        try:
            while time.monotonic() - started < DRAIN_TIMEOUT_SECONDS and not (
                len(list(outbox.glob("*.eml"))) >= expected and queue_drained(env["REDIS_URL"])
            ):
                time.sleep(0.5)
            return len(list(outbox.glob("*.eml"))) / (time.monotonic() - started)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            if len(list(outbox.glob("*.eml"))) < expected:
                print(f"bench_web: the worker left mail unsent; its log:\n{log.read_text()[-3000:]}", file=sys.stderr)


def run_wrk(wrk: str, base: str, script: str, workdir: Path, duration: int = DURATION_SECONDS) -> dict:
    path = workdir / "script.lua"
    per_thread = MAX_REQUESTS // WRK_THREADS
    path.write_text(f"MAX_PER_THREAD = {per_thread}\nTHREADS = {WRK_THREADS}\n{LUA_COMMON}\n{script}")
    command = [wrk, "-t", str(WRK_THREADS), "-c", str(WRK_CONNECTIONS), "-d", f"{duration}s"]
    command += ["--timeout", "5s", "-s", str(path), base]
    output = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=True)
    return json.loads(output.stdout.split("RESULT ", 1)[1].splitlines()[0])


def requests_per_second(result: dict) -> float:
    return result["requests"] / (result["duration_us"] / 1e6)


def rows_for(name: str, result: dict, ceiling: float) -> list[Row]:
    rps = requests_per_second(result)
    if result["requests"] >= MAX_REQUESTS:
        name += " (request bound reached: at least)"
    p99_ms = result["p99_us"] / 1000
    errors = result["socket_errors"] + result["status_errors"] + (result["requests"] - result["ok"])
    return [
        Row("web", f"{name} req/s", rps, CEILING, ceiling, f">= {TARGET_RPS} req/s", rps >= TARGET_RPS),
        Row("web", f"{name} p99 ms", p99_ms, target=f"< {TARGET_P99_MS} ms", ok=p99_ms < TARGET_P99_MS),
        Row("web", f"{name} p50 ms", result["p50_us"] / 1000),
        Row("web", f"{name} errors", errors, "responses", result["requests"], target="0", ok=errors == 0),
    ]


def run(size: int) -> list[Row]:
    wrk = shutil.which("wrk")
    if wrk is None:
        print("bench_web: wrk is not installed (Debian: apt-get install wrk); skipped", file=sys.stderr)
        return [Row("web", "wrk missing: not measured", 0, target="apt-get install wrk", ok=False)]
    readers_count = min(size, MAX_REQUESTS)  # one-click links to post; past that they are posted again
    Subscriber.objects.filter(email__endswith=f"@{BENCH_DOMAIN}").delete()
    readers = Subscriber.objects.bulk_create(
        Subscriber(email=f"unsub-{n}@{BENCH_DOMAIN}", status=Subscriber.Status.ACTIVE) for n in range(readers_count)
    )
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        workdir = Path(tmp)
        outbox = workdir / "outbox"
        tokens = workdir / "tokens.txt"
        tokens.write_text("".join(f"/unsubscribe/{make_token(r.pk, Purpose.UNSUBSCRIBE)}/\n" for r in readers))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = service_env(outbox, os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
        server = start_gunicorn(port, env)
        try:
            cookie, token = csrf_pair(base)
            run_id = str(int(time.time()))
            signup_script = LUA_SIGNUP.replace("COOKIE", cookie).replace("TOKEN", token)
            signup_script = signup_script.replace("RUN", run_id).replace("DOMAIN", BENCH_DOMAIN)
            load_before = os.getloadavg()[0]
            ceiling = requests_per_second(run_wrk(wrk, base, LUA_STATIC, workdir, CEILING_DURATION_SECONDS))
            signups = run_wrk(wrk, base, signup_script, workdir)
            unsubscribes = run_wrk(wrk, base, LUA_UNSUBSCRIBE.replace("TOKENS", str(tokens)), workdir)
            load_after = os.getloadavg()[0]
        finally:
            server.terminate()
            server.wait(timeout=30)
        # Each accepted sign-up queued one task, which records it and mails its confirmation: the worker drains
        # them; wrk may have stopped counting a few answers the server still gave, so rows are counted after.
        emails_per_second = drain_queue(env, outbox, signups["ok"])
        emails = len(list(outbox.glob("*.eml")))
        in_db = Subscriber.objects.filter(email__startswith="signup-", email__endswith=f"@{BENCH_DOMAIN}").count()
    accepted = signups["ok"]
    pending = Subscriber.objects.filter(email__startswith="signup-", status=Subscriber.Status.PENDING).count()
    posted = min(unsubscribes["requests"], len(readers))  # each reader's link is posted at most once per lap
    unsubscribed = Subscriber.objects.filter(email__startswith="unsub-", status=Subscriber.Status.UNSUBSCRIBED).count()
    rows = rows_for("sign-up POST", signups, ceiling) + rows_for("one-click unsubscribe POST", unsubscribes, ceiling)
    # wrk stops counting when its bound is reached, while the server may finish a few more requests: every
    # 200 must be in the database, and every row in the database must have its email.
    # The machine's own state: the web figures only mean something next to how busy the CPUs already were.
    cpus = os.cpu_count() or 1
    rows += [
        Row("web", "load avg before the run (1 min)", load_before, "CPUs", cpus),
        Row("web", "load avg after the run (1 min)", load_after, "CPUs", cpus),
        Row("web", "sign-ups pending in DB", pending, "accepted (200) sign-ups", accepted, "all", pending >= accepted),
        Row("web", "confirmation .eml in outbox", emails, "sign-up rows in DB", in_db, "one each", emails == in_db),
        Row("web", "confirmation emails/s (1 worker, after)", emails_per_second),
        Row(
            "web",
            "readers unsubscribed in DB",
            unsubscribed,
            "distinct links posted",
            posted,
            "all",
            unsubscribed >= posted,
        ),
    ]
    Subscriber.objects.filter(email__endswith=f"@{BENCH_DOMAIN}").delete()
    return rows
