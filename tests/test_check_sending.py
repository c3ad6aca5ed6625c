"""`manage.py check_sending`: what a bulk sender needs, read from DNS (a stub nameserver on loopback, no network),
the settings and a digest rendered as a reader gets it. A domain with everything in place passes; a broken one
fails, naming each thing missing."""

import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from newsletter.sending.checkup import sample_message
from tests.delivery_support import digest_fixture  # noqa: F401 - fixtures
from tests.dns_stub import DnsStub

KEYS = Path(__file__).resolve().parent / "fixtures" / "dkim"
DOMAIN, SELECTOR = "papers.example.org", "digest2026"


def public_key(pem: Path) -> str:
    return "".join(line for line in pem.read_text().splitlines() if not line.startswith("-----"))


GOOD = {
    DOMAIN: ["v=spf1 ip4:192.0.2.10 -all", "google-site-verification=abc"],
    f"_dmarc.{DOMAIN}": ["v=DMARC1; p=quarantine; rua=mailto:dmarc@papers.example.org"],
    f"{SELECTOR}._domainkey.{DOMAIN}": [f"v=DKIM1; k=rsa; p={public_key(KEYS / 'test-public.pem')}"],
}
BROKEN = {
    DOMAIN: ["v=spf1 include:_spf.example.net ~all", "v=spf1 ip4:192.0.2.10 -all"],  # two: a permerror
    f"_dmarc.{DOMAIN}": ["v=DMARC1; rua=mailto:dmarc@papers.example.org"],  # no policy
    f"{SELECTOR}._domainkey.{DOMAIN}": [f"v=DKIM1; k=rsa; p={public_key(KEYS / 'other-public.pem')}"],  # not ours
}


@pytest.fixture
def sender(settings):
    settings.DIGEST_FROM_EMAIL = f"Daily Papers <digest@{DOMAIN}>"
    settings.SITE_URL = f"https://{DOMAIN}"
    settings.EMAIL_BACKEND = "newsletter.mail.SMTPBackend"
    settings.DKIM_PRIVATE_KEY_PATH, settings.DKIM_SELECTOR, settings.DKIM_DOMAIN = (
        str(KEYS / "test-private.pem"),
        SELECTOR,
        DOMAIN,
    )
    settings.DIGEST_POSTAL_ADDRESS = ""


def check(records: dict[str, list[str]], capsys) -> tuple[int, dict[str, str]]:
    stub = DnsStub(records).start()
    try:
        call_command("check_sending", "--nameserver", stub.nameserver)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    finally:
        stub.stop()
    lines = capsys.readouterr().out.splitlines()
    found = {m[2]: m[1] for line in lines if (m := re.match(r"(\S+)\s+(.+?)\s{2,}", line))}
    return code, {what.strip(): level for what, level in found.items()}


def test_a_domain_with_everything_in_place_passes(digest, sender, capsys):
    code, levels = check(GOOD, capsys)
    assert code == 0, levels
    assert levels == {
        "SPF": "ok", "DMARC": "ok", "DKIM signing": "ok", "DKIM record": "ok", "List-Unsubscribe": "ok",
        "Footer": "ok", "SITE_URL": "ok",
        "Webhook": "warn",  # SMTP reports no complaints: worth knowing, not missing
        "Postal address": "warn",
    }  # fmt: skip


def test_a_broken_domain_fails_naming_each_thing_missing(digest, sender, settings, capsys):
    settings.SITE_URL = f"http://{DOMAIN}"
    code, levels = check(BROKEN, capsys)
    assert code == 1
    missing = {what for what, level in levels.items() if level == "MISSING"}
    assert missing == {"SPF", "DMARC", "DKIM record", "SITE_URL", "List-Unsubscribe"}  # an http unsubscribe link


def test_no_records_at_all_and_unsigned_smtp_are_missing(digest, sender, settings, capsys):
    settings.DKIM_PRIVATE_KEY_PATH = settings.DKIM_SELECTOR = ""
    code, levels = check({}, capsys)
    assert code == 1
    assert {what for what, level in levels.items() if level == "MISSING"} == {
        "SPF", "DMARC", "DKIM signing", "DKIM record"
    }  # fmt: skip


def test_a_provider_without_webhook_credentials_is_missing_them(digest, sender, settings, capsys):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "t"}
    settings.DKIM_PRIVATE_KEY_PATH = ""  # the provider signs; its selector's record is still checked
    code, levels = check(GOOD, capsys)
    assert code == 1 and levels["Webhook"] == "MISSING" and levels["DKIM record"] == "ok"
    assert "DKIM signing" not in levels
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "t", "WEBHOOK_SECRET": "hook:long-enough-secret"}
    code, levels = check(GOOD, capsys)
    assert code == 0 and levels["Webhook"] == "ok"


def test_the_postal_address_is_in_both_footers_once_set(digest, sender, settings, capsys):
    settings.DIGEST_POSTAL_ADDRESS = "Daily Papers, 1 Example Street & Co, Springfield"
    code, levels = check(GOOD, capsys)
    assert code == 0 and levels["Postal address"] == "ok", levels
    message = sample_message()
    html = "".join(str(content) for content, mimetype in message.alternatives if mimetype == "text/html")
    assert "Daily Papers, 1 Example Street & Co, Springfield" in message.body
    assert "1 Example Street &amp; Co, Springfield" in html  # escaped, like every value in the HTML
