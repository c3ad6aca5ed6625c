"""Benchmarks: `make bench`. Each module bench/bench_<name>.py exposes `run(size: int) -> list[Row]`."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass


@dataclass
class Row:
    """One measured figure, with the limit it is measured against in the same run."""

    stage: str
    figure: str  # what is measured, e.g. "digests/s"
    value: float
    baseline: str = ""  # the limit, e.g. "bare Jinja2 render"
    baseline_value: float | None = None
    target: str = ""  # the target, e.g. ">= 70% of bare"
    ok: bool | None = None  # whether the target is met, when it can be judged from this run

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value

    def as_dict(self) -> dict:
        return asdict(self) | {"ratio": self.ratio}


@contextmanager
def own_database(suffix: str) -> Iterator[str]:
    """A stage's own database, `<bench database>_<suffix>`, made anew for each run, for this process's default
    connection while the stage runs; yields its URL, for the processes the stage starts. Anew: a stage deletes and
    writes a hundred thousand readers and their ledger rows each run, and PostgreSQL keeps the dead rows until
    a vacuum; after a dozen runs the provider stage's database held 1.1 GB and its chunks ranked 5x slower."""
    from django.db import connections

    from bench.__main__ import ensure_database

    default = connections["default"]
    name = f"{default.settings_dict['NAME']}_{suffix}"
    url = f"{os.environ['DATABASE_URL'].rpartition('/')[0]}/{name}"
    ensure_database(url, anew=True)
    saved = default.settings_dict["NAME"]
    default.close()
    default.settings_dict["NAME"] = name
    try:
        yield url
    finally:
        default.close()
        default.settings_dict["NAME"] = saved


def smtp_env(database_url: str, redis_url: str, smtp_port: int) -> dict[str, str]:
    """The environment of the workers and commands a sending stage starts: its database, broker and SMTP sink."""
    return os.environ | {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "EMAIL_BACKEND": "newsletter.mail.SMTPBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "LOG_LEVEL": "WARNING",
    }
