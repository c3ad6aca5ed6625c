"""What a bulk sender needs before a send, checked (`manage.py check_sending`): SPF, DKIM and DMARC records for
the From domain, DKIM signing where we talk SMTP ourselves, the provider's webhook credentials, the
List-Unsubscribe headers and footer of a digest as a reader would get it, and an https SITE_URL.

Gmail and Yahoo (2024) and Outlook.com (2025) refuse or junk bulk mail without SPF and DKIM aligned with a
DMARC-published From domain and without one-click unsubscribe (RFC 8058). DNS is asked through the resolver
handed in: the system's, or any nameserver (tests run one on loopback).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr

import dkim
import dns.exception
import dns.resolver
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from newsletter.emails import signing
from newsletter.emails.mime import wire_bytes
from newsletter.emails.render import digest_email, preview_links
from newsletter.models import Digest
from subscribers.models import Subscriber

OK, WARN, MISSING = "ok", "warn", "MISSING"
SMTP_BACKENDS = ("newsletter.mail.SMTPBackend", "django.core.mail.backends.smtp.EmailBackend")
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058's only allowed value
SAMPLE_READER = "reader@example.com"
DNS_TIMEOUT_SECONDS = 5.0


@dataclass
class Finding:
    what: str
    level: str  # OK, WARN (worth fixing, not blocking) or MISSING
    detail: str


def from_domain() -> str:
    return parseaddr(settings.DIGEST_FROM_EMAIL)[1].rpartition("@")[2].lower()


def txt(resolver: dns.resolver.Resolver, name: str) -> list[str]:
    """The TXT strings at `name` (each record's pieces joined), [] when there is none."""
    try:
        answer = resolver.resolve(name, "TXT", lifetime=DNS_TIMEOUT_SECONDS)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
        return []
    return [b"".join(record.strings).decode(errors="replace") for record in answer]


def check_spf(resolver: dns.resolver.Resolver, domain: str) -> Finding:
    records = [r for r in txt(resolver, domain) if r.lower().startswith("v=spf1")]
    if not records:
        return Finding("SPF", MISSING, f"no v=spf1 TXT record at {domain}")
    if len(records) > 1:
        return Finding("SPF", MISSING, f"{len(records)} SPF records at {domain}: RFC 7208 makes that an error")
    if re.search(r"(^|\s)\+?all\b", records[0]):
        return Finding("SPF", MISSING, f"{domain}: '{records[0]}' lets any server send as the domain")
    return Finding("SPF", OK, f"{domain}: {records[0]}")


def check_dmarc(resolver: dns.resolver.Resolver, domain: str) -> Finding:
    name = f"_dmarc.{domain}"
    records = [r for r in txt(resolver, name) if r.replace(" ", "").upper().startswith("V=DMARC1")]
    if len(records) != 1:
        return Finding("DMARC", MISSING, f"{len(records) or 'no'} v=DMARC1 TXT records at {name} (one is needed)")
    policy = re.search(r"(?:^|;)\s*p\s*=\s*(none|quarantine|reject)\b", records[0], re.IGNORECASE)
    if not policy:
        return Finding("DMARC", MISSING, f"{name}: '{records[0]}' has no p= policy")
    return Finding("DMARC", OK, f"{name}: {records[0]}")


def check_dkim(resolver: dns.resolver.Resolver, domain: str, message: bytes) -> list[Finding]:
    findings = []
    smtp = settings.EMAIL_BACKEND in SMTP_BACKENDS
    if smtp and not signing.enabled():
        findings.append(Finding("DKIM signing", MISSING, "sending over SMTP unsigned: set DKIM_PRIVATE_KEY(_PATH) "
                                "and DKIM_SELECTOR"))  # fmt: skip
    elif smtp:
        findings.append(Finding("DKIM signing", OK, f"messages signed as s={settings.DKIM_SELECTOR} "
                                f"d={settings.DKIM_DOMAIN}"))  # fmt: skip
    selector = settings.DKIM_SELECTOR
    if not selector:
        findings.append(Finding("DKIM record", MISSING, "DKIM_SELECTOR is not set: no record to check (with a "
                                "provider's API, set it to the selector the provider signs with)"))  # fmt: skip
        return findings
    signing_domain = settings.DKIM_DOMAIN or domain
    name = f"{selector}._domainkey.{signing_domain}"
    records = [r for r in txt(resolver, name) if re.search(r"(^|;)\s*p\s*=\s*[A-Za-z0-9+/]", r)]
    if not records:
        findings.append(Finding("DKIM record", MISSING, f"no TXT record with a public key (p=) at {name}"))
    elif signing.enabled() and not dkim.verify(message, dnsfunc=lookup_with(resolver)):
        findings.append(Finding("DKIM record", MISSING, f"{name} does not verify what DKIM_PRIVATE_KEY signs"))
    else:
        matched = " (it verifies our signature)" if signing.enabled() else ""
        findings.append(Finding("DKIM record", OK, f"{name}{matched}"))
    if signing_domain != domain and not domain.endswith(f".{signing_domain}"):
        findings.append(Finding("DKIM alignment", MISSING, f"signing domain {signing_domain} is not the From "
                                f"domain {domain}: DMARC needs them aligned"))  # fmt: skip
    return findings


def lookup_with(resolver: dns.resolver.Resolver) -> Callable[..., bytes | None]:
    """dkimpy's DNS hook, asking our resolver."""

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        found = txt(resolver, name.decode().rstrip("."))
        return found[0].encode() if found else None

    return lookup


def check_webhook(esp: str | None, credentials_problem: str) -> Finding:
    if esp is None:
        return Finding("Webhook", WARN, f"{settings.EMAIL_BACKEND} reports no bounces or complaints: nothing "
                       "suppresses a complaining reader, and the complaint rate cannot be watched")  # fmt: skip
    if credentials_problem:
        return Finding("Webhook", MISSING, credentials_problem)
    return Finding("Webhook", OK, f"/anymail/{esp}/tracking/ refuses requests without credentials")


def sample_message() -> EmailMultiAlternatives:
    """The latest digest as a reader would get it (links that act for nobody), or an empty one of today."""
    digest = Digest.objects.order_by("-date").first() or Digest(pk=0, date=timezone.now().date())
    reader = Subscriber(pk=0, email=SAMPLE_READER)
    return digest_email(digest, reader, [], [], links=preview_links())


def check_headers(message: EmailMultiAlternatives) -> Finding:
    headers = {name.lower(): value for name, value in message.extra_headers.items()}
    unsubscribe, post = headers.get("list-unsubscribe", ""), headers.get("list-unsubscribe-post", "")
    if not re.search(r"<https://[^>]+>", unsubscribe):
        return Finding("List-Unsubscribe", MISSING, f"List-Unsubscribe has no https link: {unsubscribe!r}")
    if post != ONE_CLICK:
        return Finding("List-Unsubscribe", MISSING, f"List-Unsubscribe-Post is {post!r}, not {ONE_CLICK!r}")
    return Finding("List-Unsubscribe", OK, f"{unsubscribe} with one-click POST")


def check_footer(message: EmailMultiAlternatives) -> list[Finding]:
    html = "".join(str(content) for content, mimetype in message.alternatives if mimetype == "text/html")
    link = re.search(r"<(https?://[^>]+)>", message.extra_headers.get("List-Unsubscribe", ""))
    url = link[1] if link else "/unsubscribe/"
    findings = []
    if "unsubscribe" in message.body.lower() and url in message.body and url in html:
        findings.append(Finding("Footer", OK, "an unsubscribe link in the text and HTML footers"))
    else:
        findings.append(Finding("Footer", MISSING, "no unsubscribe text and link in both footers"))
    address = settings.DIGEST_POSTAL_ADDRESS
    if not address or address not in message.body:
        findings.append(Finding("Postal address", WARN, "no postal address in the footer (CAN-SPAM asks one of "
                                "mail to US readers): set DIGEST_POSTAL_ADDRESS"))  # fmt: skip
    else:
        findings.append(Finding("Postal address", OK, address))
    return findings


def check_site_url() -> Finding:
    if settings.SITE_URL.startswith("https://"):
        return Finding("SITE_URL", OK, settings.SITE_URL)
    return Finding("SITE_URL", MISSING, f"{settings.SITE_URL}: unsubscribe links need https (RFC 8058)")


def check_all(resolver: dns.resolver.Resolver, esp: str | None, credentials_problem: str) -> list[Finding]:
    domain = from_domain()
    message = sample_message()
    signed = signing.sign(wire_bytes(message))
    findings = []
    try:
        findings += [check_spf(resolver, domain), check_dmarc(resolver, domain)]
        findings += check_dkim(resolver, domain, signed)
    except dns.exception.DNSException as exc:
        findings.append(Finding("DNS", MISSING, f"the records of {domain} could not be read: {exc}"))
    findings += [check_webhook(esp, credentials_problem), check_headers(message), *check_footer(message)]
    findings.append(check_site_url())
    return findings
