"""The Celery app: `celery -A newsletter worker` / `celery -A newsletter beat`."""

import gc
import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newsletter.config.settings")

app = Celery("newsletter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def load_ranking(**kwargs: object) -> None:
    """Workers rank: scikit-learn (imported lazily, so web processes never load it) is loaded before the
    worker takes its first task, not in the middle of the first chunk of a send. Then everything loaded so
    far is moved out of the cycle collector's way (gc.freeze): it lives as long as the process, and every
    full collection during a send would otherwise walk all of it again."""
    from papers.ranking import stop_words

    stop_words()
    gc.collect()
    gc.freeze()
