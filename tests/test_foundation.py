"""Configuration, the embedded outbox, the health probe, and production settings."""

import gc
import uuid

import pytest
import redis
from celery import Celery
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from threadpoolctl import threadpool_info, threadpool_limits

from newsletter.config.celery import app as celery_app
from newsletter.config.env import env_bool, env_int, env_list
from tests.helpers import manage, read_outbox


def test_env_helpers_read_types(monkeypatch):
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_LIST", "a.com, b.com,,")
    assert env_bool("X_BOOL") is True
    assert env_int("X_INT", 1) == 42
    assert env_list("X_LIST") == ["a.com", "b.com"]
    assert env_int("X_MISSING", 7) == 7


@pytest.mark.parametrize(("name", "value", "reader"), [("X_BOOL", "maybe", env_bool), ("X_INT", "4x", env_int)])
def test_env_helpers_refuse_bad_values_clearly(monkeypatch, name, value, reader):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        reader(name, 0) if reader is env_int else reader(name)


def test_outbox_backend_writes_one_rfc5322_file_per_message(outbox):
    for n in range(3):
        EmailMessage(f"Hello {n}", "Body ünïcode", "from@example.com", [f"to{n}@example.com"]).send()
    messages = read_outbox(outbox)
    assert sorted(m["To"] for m in messages) == ["to0@example.com", "to1@example.com", "to2@example.com"]
    assert all(m["Message-ID"] for m in messages)
    assert messages[0].get_content().strip() == "Body ünïcode"
    assert not list(outbox.glob(".*.tmp")), "no half-written file is left behind"


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "in-process"}


@pytest.mark.django_db
def test_healthz_answers_503_when_the_broker_is_down(client):
    broker_url = celery_app.conf.broker_url
    celery_app.conf.task_always_eager = False  # the autouse fixture turns it back on
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get("/healthz")
    finally:
        celery_app.conf.broker_url = broker_url
    assert response.status_code == 503
    assert response.json()["broker"] == "down"


PUBLISHED = 5


def test_tasks_queued_on_redis_all_arrive(redis_url):
    """kombu's own Redis transport, as the settings leave it: every task queued lands on its queue."""
    app = Celery("broker-test", broker=redis_url, set_as_current=False)
    queue = f"test-broker-{uuid.uuid4().hex}"  # not a queue any worker reads
    queued = redis.Redis.from_url(redis_url)
    try:
        for n in range(PUBLISHED):
            app.send_task("subscribers.tasks.send_confirmation_task", args=[n], queue=queue)
        assert queued.llen(queue) == PUBLISHED
    finally:
        queued.delete(queue)
        app.close()


def test_a_starting_worker_runs_blas_on_one_thread_and_sets_its_start_up_aside():
    from newsletter.tasks import WORKER_BLAS_THREADS, WORKER_GC_THRESHOLD, load_ranking

    # Two workers on two cores, each with BLAS's thread per core: one worker's ranking spun threads on the
    # cores the other sent from. (threadpool_limits as a block puts this process's own limits back after.)
    thresholds = gc.get_threshold()
    with threadpool_limits(limits=None):
        try:
            load_ranking()
            blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
            assert blas and set(blas) == {WORKER_BLAS_THREADS}
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold() == (WORKER_GC_THRESHOLD, *thresholds[1:])
        finally:
            gc.unfreeze()
            gc.set_threshold(*thresholds)


def test_production_settings_pass_check_deploy():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="a-long-random-production-secret-" + "x" * 40,
        SITE_URL="https://papers.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_secret_key():
    result = manage("check", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_plain_http_keeps_cookies_usable_on_localhost():
    result = manage(
        "shell", "-c", "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.SECURE_SSL_REDIRECT)"
    )
    assert result.stdout.split()[-2:] == ["False", "False"]
