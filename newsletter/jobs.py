"""Work queued for the Celery workers, by task name, after the transaction commits.

Services queue tasks through here rather than importing newsletter/tasks.py, the edge that runs them: tasks call
services, never the other way round. The names are the tasks' own (`@shared_task(name=...)` in tasks.py uses
these constants); the beat schedule and the queue routes in settings name them too.
"""

from celery import Task
from django.db import transaction

from newsletter.config.celery import app

SEND_CHUNK = "newsletter.tasks.send_chunk_task"
DELIVER_DUE = "newsletter.tasks.deliver_due_task"
PROCESS_WEBHOOK_EVENT = "newsletter.tasks.process_webhook_event_task"


def task(name: str) -> Task:
    """The registered task of that name. A process that has not loaded the apps' task modules yet (a command,
    a web process) loads them now, as a worker does when it starts (Celery's autodiscovery)."""
    if name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[name]


def queue(name: str, *args: object) -> None:
    """Queue the task once the current transaction commits (at once outside one), so a worker never looks for
    rows that are not there yet. In-process mode (no broker) runs it then and there."""
    transaction.on_commit(lambda: task(name).delay(*args))


def queue_name(name: str) -> str:
    """The broker queue a task is routed to (CELERY_TASK_ROUTES)."""
    return app.amqp.router.route({}, name)["queue"].name
