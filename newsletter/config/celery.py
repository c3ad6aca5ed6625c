"""The Celery app: `celery -A newsletter worker` / `celery -A newsletter beat`."""

import gc
import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready
from threadpoolctl import threadpool_limits

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.config.settings")

app = Celery("newsletter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Threads each worker process gives BLAS and OpenMP (numpy, scipy, scikit-learn). By default each sizes its
# pool to the whole machine, and several workers share its cores (two on two in the bench): one worker's ranking
# then spun threads on the cores the others were sending from. Parallelism comes from the processes.
WORKER_BLAS_THREADS = 1


@worker_ready.connect  # the process that runs the tasks with --pool solo
@worker_process_init.connect  # each child of --pool prefork
def settle_worker(**_: object) -> None:
    """Ready to run tasks: BLAS on one thread, and what start-up loaded (Django, the models, numpy, templates)
    moved out of the garbage collector's sight, so a full collection walks only what the tasks made."""
    threadpool_limits(limits=WORKER_BLAS_THREADS)
    gc.freeze()
