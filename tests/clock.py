"""The tests' clock: a session moved days ahead (`--clock-shift-days`), a test frozen on the date it names
(`@pytest.mark.clock("2026-11-28T07:00:00+00:00")`), and the same clock handed to the processes a test starts.

No test may depend on the wall clock. CI runs the date-sensitive tests a second time with the clock moved 400
days ahead, which catches a test that names a date while the code under it reads the clock.

Started as a program, this module runs another one on the clock of the test that started it:
`python -m tests.clock celery -A newsletter worker ...` or `python -m tests.clock manage.py send_digest ...`,
with the offset from `env()` in TEST_CLOCK_OFFSET_SECONDS.
"""

import os
import runpy
import sys
from datetime import UTC, datetime, timedelta

import time_machine

OFFSET_VARIABLE = "TEST_CLOCK_OFFSET_SECONDS"


def real_now() -> datetime:
    """The machine's clock, whatever the test travelled to."""
    if not time_machine.escape_hatch.is_travelling():
        return datetime.now(UTC)
    return datetime.fromtimestamp(time_machine.escape_hatch.time.time(), tz=UTC)


def offset_seconds() -> float:
    """How far the test's clock is from the machine's, now."""
    return (datetime.now(UTC) - real_now()).total_seconds()


def env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for a child process that carries this test's clock."""
    return (dict(os.environ) if base is None else dict(base)) | {OFFSET_VARIABLE: f"{offset_seconds():.3f}"}


def command(*args: str) -> list[str]:
    """`python ARGS` run on the test's clock: a module name (celery) or a script (manage.py)."""
    return [sys.executable, "-m", "tests.clock", *args]


def travel(offset: float) -> time_machine.travel | None:
    if abs(offset) < 1:
        return None
    traveller = time_machine.travel(real_now() + timedelta(seconds=offset), tick=True)
    traveller.start()
    return traveller


def main() -> None:
    travel(float(os.environ.get(OFFSET_VARIABLE, "0") or 0))
    target, *rest = sys.argv[1:]
    sys.argv = [target, *rest]
    if target.endswith(".py"):
        runpy.run_path(target, run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
