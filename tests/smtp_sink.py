"""A real SMTP server on loopback (aiosmtpd) that counts what it accepts and can misbehave on purpose:
421 on MAIL FROM (service unavailable, closes the session; a count of them, or all for a while: an outage),
451 on RCPT TO (greylisting), 451 after DATA, and 550 for senders and recipients whose address starts with
"reject". With pipelining=True it offers PIPELINING
(RFC 2920); aiosmtpd reads commands one line at a time, so pipelined ones are answered in order.
Used in-process by the tests and as a subprocess by the benchmark:
`python -m tests.smtp_sink PORT` prints "ready"; then for each line on stdin: "count" prints the messages
accepted so far, "dump PATH" writes every accepted message (envelope and bytes) to PATH as a pickle, prints
"ok" and forgets them."""

import logging
import pickle
import re
import socket
import sys
import threading
import time
from collections import Counter

from aiosmtpd.controller import Controller

REJECTED_PREFIX = "reject"
MESSAGE_ID = re.compile(rb"^Message-ID: *(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Handler:
    def __init__(self, keep: bool = False, pipelining: bool = False) -> None:
        self.pipelining = pipelining  # offer PIPELINING (RFC 2920) in the EHLO reply
        self.received: Counter[str] = Counter()
        self.last_new_at = 0.0  # time.monotonic() when a recipient got their first message, the latest such
        self.keep = keep  # keep each message's envelope and bytes, to send the very same ones again
        self.kept: list[tuple[str, list[str], bytes]] = []
        self.refuse_mail = 0  # the next N MAIL FROM commands get 421
        self.refuse_until = 0.0  # and every MAIL FROM until this time.monotonic() (an outage of the provider)
        # An outage of this many seconds from the first MAIL FROM on, however late the senders start.
        self.outage_seconds = 0.0
        self.defer_rcpt = 0  # the next N RCPT TO commands get 451
        self.defer_data = 0  # the next N messages get 451 after their data was read
        self.message_ids: list[tuple[str, str]] = []  # (recipient, Message-ID) of every message read, refused or not
        self.refused = Counter()
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            if address.startswith(REJECTED_PREFIX):
                self.refused["550 sender"] += 1
                return "550 5.7.1 Sender refused"
            if self.outage_seconds and not self.refuse_until:
                self.refuse_until = time.monotonic() + self.outage_seconds
            if self.refuse_mail > 0 or time.monotonic() < self.refuse_until:
                self.refuse_mail = max(self.refuse_mail - 1, 0)
                self.refused["421"] += 1
                return "421 4.3.2 Service not available, closing transmission channel"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            if address.startswith(REJECTED_PREFIX):
                self.refused["550"] += 1
                return "550 5.1.1 No such user here"
            if self.defer_rcpt > 0:
                self.defer_rcpt -= 1
                self.refused["451"] += 1
                return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if not self.keep:  # the benchmark's sink keeps whole messages instead, and must stay quick
                found = MESSAGE_ID.search(envelope.original_content)
                self.message_ids += [(to, found[1].decode() if found else "") for to in envelope.rcpt_tos]
            if self.defer_data > 0:
                self.defer_data -= 1
                self.refused["451 data"] += 1
                return "451 4.3.0 Temporary failure, please try again"
            if any(to not in self.received for to in envelope.rcpt_tos):
                self.last_new_at = time.monotonic()
            self.received.update(envelope.rcpt_tos)
            if self.keep:
                self.kept.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 OK queued"

    @property
    def total(self) -> int:
        return sum(self.received.values())


def start(port: int | None = None, keep: bool = False, pipelining: bool = False) -> tuple[Controller, Handler, int]:
    handler = Handler(keep, pipelining)
    port = port or free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    return controller, handler, port


def serve(port: int) -> None:
    controller, handler, _ = start(port, keep=True)
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "dump":
                with handler.lock:
                    kept, handler.kept = handler.kept, []
                with open(arg, "wb") as out:
                    pickle.dump(kept, out)
                print("ok", flush=True)
            else:
                print(handler.total, flush=True)
    finally:
        controller.stop()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
