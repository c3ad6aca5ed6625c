"""A loopback SMTP sink for benchmarks: accepts every message and keeps only a count.

Postfix's smtp-sink (C) when installed (`make bench` installs it as root): it is far faster than any
Python server, so the figure measured is our sending, not the sink. Otherwise aiosmtpd, with a warning.
"""

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.smtp_sink import free_port

SMTP_SINK = Path("/usr/sbin/smtp-sink")
SINK_BACKLOG = 256
COUNTER = re.compile(rb"mesg=(\d+)")


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"SMTP sink on port {port} did not start")


@dataclass
class Sink:
    port: int
    kind: str
    received: int = 0  # messages accepted so far (smtp-sink: as of its last counter line)


@contextlib.contextmanager
def smtp_sink() -> Iterator[Sink]:
    port = free_port()
    if SMTP_SINK.exists():
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        proc = subprocess.Popen(
            [str(SMTP_SINK), "-c", *user, f"127.0.0.1:{port}", str(SINK_BACKLOG)], stdout=subprocess.PIPE
        )
        sink = Sink(port, "postfix smtp-sink")
        reader = threading.Thread(target=_read_counter, args=(proc.stdout, sink), daemon=True)
        reader.start()
    else:
        print("smtp-sink not installed (Debian's postfix): using aiosmtpd, which is slower", file=sys.stderr)
        proc = subprocess.Popen([sys.executable, "-m", "bench.aiosink", str(port)], stdout=subprocess.PIPE)
        sink = Sink(port, "aiosmtpd")
        reader = threading.Thread(target=_read_counter, args=(proc.stdout, sink), daemon=True)
        reader.start()
    try:
        wait_for_port(port)
        yield sink
    finally:
        time.sleep(0.2)  # let the last counter line arrive
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=5)


def _read_counter(stream, sink: Sink) -> None:
    buffer = b""
    while chunk := stream.read1(4096):
        buffer = (buffer + chunk)[-256:]
        counts = COUNTER.findall(buffer)
        if counts:
            sink.received = int(counts[-1])
