"""One home for what counts as an address we accept: validated, normalized, and never a header injection."""

import idna
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

# RFC 5321: a path is at most 256 octets including the angle brackets, so 254 for the address itself;
# the local part at most 64.
MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
# Anything here would let one form field become several recipients or extra header lines.
SEPARATORS = frozenset(',;<>" ')

MESSAGES = {
    "empty": "Please enter your email address.",
    "too_long": "That address is too long; an email address has at most 254 characters.",
    "lines": "Please enter one address on a single line.",
    "several": "Please enter just one email address, without a name, commas or spaces.",
    "invalid": "That doesn't look like an email address. Please check it, e.g. name@example.com.",
    "local_ascii": "We can only deliver to addresses written with plain letters, digits and .-_+ before the @.",
}


def _refuse(code: str) -> ValidationError:
    return ValidationError(MESSAGES[code], code=code)


def normalize_address(raw: str) -> str:
    """The address as we store it: surrounding blanks removed, the domain lower-cased and in its ASCII
    (punycode) form. Raises ValidationError with a message meant for the reader."""
    address = (raw or "").strip()
    if not address:
        raise _refuse("empty")
    if len(address) > MAX_ADDRESS_LENGTH:
        raise _refuse("too_long")
    if any(ord(ch) < 32 or ord(ch) == 127 or ch in "\u2028\u2029\x85" for ch in address):
        raise _refuse("lines")
    if any(ch in SEPARATORS for ch in address) or address.count("@") > 1:
        raise _refuse("several")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise _refuse("invalid")
    if len(local) > MAX_LOCAL_PART_LENGTH:
        raise _refuse("too_long")
    if not local.isascii():
        raise _refuse("local_ascii")
    try:
        # Label by label, so a domain that grows too long in punycode gets the "too long" message below.
        labels = idna.uts46_remap(domain, std3_rules=True).rstrip(".").split(".")
        domain = ".".join(idna.alabel(label).decode("ascii") for label in labels).lower()
    except (idna.IDNAError, UnicodeError):
        raise _refuse("invalid") from None
    address = f"{local}@{domain}"
    if len(address) > MAX_ADDRESS_LENGTH:
        raise _refuse("too_long")
    try:
        validate_email(address)
    except ValidationError:
        raise _refuse("invalid") from None
    if "." not in domain:  # "root@localhost" is valid syntax but never a reader's mailbox
        raise _refuse("invalid")
    return address
