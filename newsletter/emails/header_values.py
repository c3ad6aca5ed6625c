"""Header values and addresses as our directly written messages (newsletter.emails.mime) and the SMTP envelope
(newsletter.mail) carry them: refused with a line break in them (header injection), RFC 2047-encoded when not
ASCII, address domains in their IDNA (punycode) form. The same values Django's message() writes, reached
through the email package's public API (Header, Address, getaddresses, formataddr)."""

from email.header import Header
from email.headerregistry import Address
from email.utils import formataddr, getaddresses

from django.core.mail import BadHeaderError

# Headers whose value is a list of addresses: their non-ASCII parts are encoded address by address.
ADDRESS_HEADERS = frozenset(
    {"from", "sender", "reply-to", "to", "cc", "bcc", "resent-from", "resent-sender", "resent-to", "resent-cc",
     "resent-bcc"}
)  # fmt: skip
LINE_BREAKS = ("\n", "\r")


def has_line_break(value: str) -> bool:
    return any(brk in value for brk in LINE_BREAKS)


def encoded_value(name: str, value: str, encoding: str) -> str:
    """`value` as header `name` carries it. Raises BadHeaderError for a value holding a line break: it would
    start a header of the sender's choosing. A long non-ASCII or Subject value comes back folded with "\\n "."""
    value = str(value)  # may be lazy
    if has_line_break(value):
        raise BadHeaderError(f"Header values can't contain newlines (got {value!r} for header {name!r})")
    if value.isascii():
        return Header(value).encode() if name.lower() == "subject" else value
    if name.lower() in ADDRESS_HEADERS:
        return ", ".join(formatted_address(display, address, encoding) for display, address in getaddresses([value]))
    return Header(value, encoding).encode()


def formatted_address(display_name: str, address: str, encoding: str) -> str:
    """`Name <local@domain>` with a non-ASCII name or local part RFC 2047-encoded and the domain in IDNA form."""
    local_part, domain = split_address(address)
    if has_line_break(display_name):
        raise ValueError("Invalid address; address parts cannot contain newlines.")
    name = Header(display_name, None if display_name.isascii() else encoding).encode()
    return formataddr((name, Address(username=local_part_for(local_part, encoding), domain=idna(domain)).addr_spec))


def envelope_address(address: str, encoding: str) -> str:
    """The bare address for MAIL FROM / RCPT TO (no display name), domain in IDNA form. Raises ValueError
    unless `address` is exactly one address."""
    parsed = getaddresses([address])
    if len(parsed) != 1 or has_line_break(address):
        raise ValueError(f'Invalid address "{address}"')
    local_part, domain = split_address(parsed[0][1])
    return Address(username=local_part_for(local_part, encoding), domain=idna(domain)).addr_spec


def split_address(address: str) -> tuple[str, str]:
    if "@" not in address or has_line_break(address):
        raise ValueError(f'Invalid address "{address}"')
    local_part, domain = address.rsplit("@", 1)
    return local_part, domain


def local_part_for(local_part: str, encoding: str) -> str:
    return local_part if local_part.isascii() else Header(local_part, encoding).encode()


def idna(domain: str) -> str:
    """The domain in its ASCII form (Python's IDNA 2003 codec, as Django's own messages use)."""
    return domain.encode("idna").decode("ascii")
