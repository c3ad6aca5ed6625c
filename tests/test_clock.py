"""The tests' own clock: a test that names a date runs on it, the session can be moved days ahead, and the
processes a test starts (workers, commands) keep the test's clock."""

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.utils import timezone

from tests import clock

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DATE_LITERAL = re.compile(r"\b(?:date|datetime)\(20\d\d,")
FREEZES = re.compile(r"pytest\.mark\.clock\(|time_machine\.(?:travel|move_to)\(")
# Modules that name dates only to build other modules' tests on them; their users freeze the clock.
SHARED = {"admin_support.py", "delivery_support.py", "render_data.py", "clock.py"}


def test_every_module_that_names_a_date_also_freezes_the_clock():
    offenders = [
        path.name
        for path in sorted(TESTS.glob("*.py"))
        if path.name not in SHARED and DATE_LITERAL.search(text := path.read_text()) and not FREEZES.search(text)
    ]
    assert offenders == [], "name a date, freeze the clock: pytest.mark.clock(...) or time_machine.travel(...)"


@pytest.mark.clock("2026-11-28T07:00:00+00:00")
def test_the_marker_runs_the_test_at_its_instant_and_the_clock_ticks():
    start = timezone.now()
    assert datetime(2026, 11, 28, 7, tzinfo=UTC) <= start < datetime(2026, 11, 28, 7, 1, tzinfo=UTC)
    assert timezone.now() >= start


def test_a_shifted_session_is_shifted(request):
    days = request.config.getoption("--clock-shift-days")
    ahead = (timezone.now() - clock.real_now()).days
    assert ahead in (days - 1, days)


@pytest.mark.clock("2031-02-03T04:05:06+00:00")
def test_a_started_process_keeps_the_tests_clock(tmp_path):
    script = tmp_path / "now.py"
    script.write_text("from datetime import datetime, UTC; print(datetime.now(UTC).isoformat())")
    out = subprocess.run(
        clock.command(str(script)), cwd=ROOT, env=clock.env(), capture_output=True, text=True, timeout=60
    ).stdout
    seen = datetime.fromisoformat(out.strip())
    assert datetime(2031, 2, 3, 4, 5, tzinfo=UTC) <= seen < datetime(2031, 2, 3, 4, 10, tzinfo=UTC)
