"""Work a request hands over to run once its response has been sent.

A sign-up answers the same page whatever the address's state, and must take as long: the work that depends on
the state (finding out whether to mail, rendering and writing the email) belongs after the response. With
Redis that is a worker's job already; in-process (no REDIS_URL) Celery runs the task where it is queued, so the
queueing itself is handed here. Django sends `request_finished` when the server closes the response, after
its last byte went out (the test client does the same before it returns), in the thread that served it.

Outside a request (commands, tasks, a test calling code directly) the work runs at once.
"""

import logging
import threading
from collections.abc import Callable

from django.core.signals import request_finished, request_started
from django.dispatch import receiver

log = logging.getLogger(__name__)
_local = threading.local()


def run_after_response(work: Callable[[], object]) -> None:
    """Run `work` after the current response is sent, or now when no request is being served."""
    pending = getattr(_local, "pending", None)
    if pending is None:
        _run(work)
    else:
        pending.append(work)


def _run(work: Callable[[], object]) -> None:
    try:
        work()
    except Exception:  # the reader already has their answer: the error goes to the log, not to them
        log.exception("work after the response failed")


@receiver(request_started, dispatch_uid="subscribers.after_response.started")
def _request_started(**kwargs: object) -> None:
    _local.pending = []


@receiver(request_finished, dispatch_uid="subscribers.after_response.finished")
def _request_finished(**kwargs: object) -> None:
    pending, _local.pending = getattr(_local, "pending", None) or [], None
    for work in pending:
        _run(work)
