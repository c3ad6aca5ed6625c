"""Shared test set-up. Services come from DATABASE_URL / REDIS_URL; when one is missing, tests that need it
skip with the reason, except under CI=true, where a missing service is a failure."""

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
import time_machine
from django.core.cache import cache
from django.db import connection, connections

from newsletter.config.celery import app as celery_app
from papers import caches
from tests import clock
from tests.helpers import WARNINGS_AS_ERRORS

IN_CI = os.environ.get("CI", "").lower() == "true"
# Worker and server processes the tests start read this from the environment, for the same reason.
os.environ.setdefault("RANKING_EMBEDDINGS", "off")
os.environ["PYTHONWARNINGS"] = WARNINGS_AS_ERRORS  # and deprecations are errors there, as in this process
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--clock-shift-days",
        type=int,
        default=0,
        help="run the whole session with the clock this many days ahead (tests that name a date still freeze it)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clock(instant): the test runs at this ISO instant, the clock ticking from it")
    days = config.getoption("--clock-shift-days")
    if days:
        clock.travel(timedelta(days=days).total_seconds())


@pytest.fixture(autouse=True)
def _named_instant(request: pytest.FixtureRequest):
    """A test (or module) that names a date runs on it: `@pytest.mark.clock("2026-11-28T07:00:00+00:00")`."""
    marker = request.node.get_closest_marker("clock")
    if marker is None:
        yield
        return
    instant = datetime.fromisoformat(marker.args[0])
    assert instant.tzinfo is not None, "a test's instant names its time zone"
    with time_machine.travel(instant, tick=True):
        yield


SERVICE_HINTS = {
    "PostgreSQL": "DATABASE_URL=postgres://postgres@127.0.0.1:5432/test",
    "Redis": "REDIS_URL=redis://127.0.0.1:6379/0",
}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter):
    """After the list of skips: name what a run without the services left out, and how to run it."""
    yield
    reasons = [str(report.longrepr[-1]) for report in terminalreporter.stats.get("skipped", [])]
    missing = {name: sum(f"needs {name}" in r for r in reasons) for name in SERVICE_HINTS}
    missing = {name: count for name, count in missing.items() if count}
    if missing:
        counts = ", ".join(f"{count} need {name}" for name, count in missing.items())
        hint = " ".join(SERVICE_HINTS[name] for name in missing)
        terminalreporter.write_line(f"Skipped without the services: {counts}. To run them: {hint} make test")


def require(available: bool, reason: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    """Every test: its own outbox (the real .eml backend, not pytest-django's locmem), tasks in-process,
    an empty cache and none of the per-process caches of earlier tests (on SQLite a rolled-back test's
    primary keys come back, so a kept candidate index would match the next test's papers), TF-IDF relevance
    (the embedding tests turn the model on themselves: loading it takes seconds, and ingesting fixtures would
    embed every paper)."""
    settings.EMAIL_BACKEND = "newsletter.mail.OutboxBackend"
    settings.RANKING_EMBEDDINGS = "off"
    settings.OUTBOX_DIR = tmp_path / "outbox"
    settings.VAR_DIR = tmp_path / "var"
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    cache.clear()
    caches.clear_all()
    yield
    celery_app.conf.task_always_eager = eager


@pytest.fixture
def outbox(settings) -> Path:
    return Path(settings.OUTBOX_DIR)


@pytest.fixture
def postgres() -> None:
    require(connection.vendor == "postgresql", "this test needs PostgreSQL: set DATABASE_URL=postgres://...")


@pytest.fixture
def redis_url(settings) -> str:
    url = settings.REDIS_URL
    require(bool(url), "this test needs Redis: set REDIS_URL=redis://...")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        require(False, f"Redis at {url} does not answer: {exc}")
    return url


@pytest.fixture
def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    require(Path(path).exists(), "this test needs Debian's chromium (make browser)")
    return path


@pytest.fixture
def browser(chromium_path, monkeypatch):
    """Debian's Chromium driven by Playwright, headless, with nothing that would reach for the network."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's ORM calls are still plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
        # ORM calls made while Playwright's loop runs get connections of their own (Django's connections are
        # context-local): close them, or the test database cannot be dropped at the end of the run.
        connections.close_all()


def fixture_path(name: str) -> Path:
    return FIXTURES / name


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of the test's own, which it may restart empty."""
    from tests.private_redis import PrivateRedis

    require(shutil.which("redis-server") is not None, "this test needs redis-server (Debian's redis-server package)")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def workers(env, tmp_path):
    """Celery workers started as operators start them, with the test module's `env`; stopped at the end."""
    from tests.workers_support import Workers

    pool = Workers(env, tmp_path)
    yield pool
    pool.stop_all()
