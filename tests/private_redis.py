"""A redis-server of our own on a free loopback port, to kill and restart at will: the machine's shared Redis
must never be restarted by a test or a benchmark."""

import subprocess
import time
from pathlib import Path

import redis

from tests.smtp_sink import free_port

REDIS_START_SECONDS = 10
POLL_SECONDS = 0.05


class PrivateRedis:
    """Our own redis-server on a free port: the shared one must never be restarted by a test."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.tmp = tmp
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + REDIS_START_SECONDS
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(POLL_SECONDS)
        raise RuntimeError("redis-server did not start")

    def restart(self) -> None:
        self.process.kill()
        self.process.wait()
        self.start()

    def stop(self) -> None:
        if self.process:
            self.process.kill()
            self.process.wait()
