"""The fallback sink: aiosmtpd, printing `mesg=N` after each message like smtp-sink -c does."""

import signal
import sys
import threading

from aiosmtpd.controller import Controller


class CountingHandler:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.count += 1
        sys.stdout.write(f"mesg={self.count}\r")
        sys.stdout.flush()
        return "250 OK"


def main() -> None:
    controller = Controller(CountingHandler(), hostname="127.0.0.1", port=int(sys.argv[1]), data_size_limit=0)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
