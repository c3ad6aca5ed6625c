"""A DNS server on loopback (UDP) answering TXT questions from a dict, and NXDOMAIN for every other name: what
`check_sending` reads SPF, DKIM and DMARC from, with no network. Built on dnspython's own wire format."""

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

MAX_UDP_BYTES = 4096
TXT_CHUNK = 255  # a TXT record is made of strings of at most 255 bytes each (RFC 1035)


class DnsStub:
    def __init__(self, records: dict[str, list[str]]) -> None:
        self.records = {name.lower().rstrip("."): values for name, values in records.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.nameserver = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def start(self) -> "DnsStub":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.sock.close()

    def serve(self) -> None:
        while True:
            try:
                data, client = self.sock.recvfrom(MAX_UDP_BYTES)
            except OSError:
                return  # closed
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            question = query.question[0]
            values = self.records.get(question.name.to_text().lower().rstrip("."))
            if values is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT:
                texts = [
                    " ".join(f'"{value[i : i + TXT_CHUNK]}"' for i in range(0, len(value), TXT_CHUNK))
                    for value in values
                ]
                response.answer.append(dns.rrset.from_text_list(question.name, 300, dns.rdataclass.IN, "TXT", texts))
            self.sock.sendto(response.to_wire(), client)
