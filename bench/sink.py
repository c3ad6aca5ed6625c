"""A loopback SMTP sink for benchmarks: accepts every message, keeps only a count.

python -m bench.sink PORT COUNT_FILE     (writes the count to COUNT_FILE on SIGTERM)
"""

import asyncio
import signal
import sys
from pathlib import Path

from aiosmtpd.controller import Controller


class CountingHandler:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.count += 1
        return "250 OK"


def main() -> None:
    port, count_file = int(sys.argv[1]), Path(sys.argv[2])
    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=0)
    controller.start()
    print("ready", flush=True)
    loop = asyncio.new_event_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    loop.run_until_complete(stop)
    controller.stop()
    count_file.write_text(str(handler.count))


if __name__ == "__main__":
    main()
