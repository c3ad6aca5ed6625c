"""`manage.py check_sending [--nameserver IP[:PORT]]`: what a bulk sender needs, and what is missing. Exits 1 when
something is missing (warnings alone do not fail it)."""

import dns.resolver
from django.core.management.base import BaseCommand, CommandError

from newsletter import webhooks
from newsletter.sending import checkup


def resolver_for(nameserver: str | None) -> dns.resolver.Resolver:
    if not nameserver:
        return dns.resolver.Resolver()
    resolver = dns.resolver.Resolver(configure=False)
    host, _, port = nameserver.partition(":")
    resolver.nameservers = [host]
    resolver.port = int(port or 53)
    return resolver


class Command(BaseCommand):
    help = "Check SPF, DKIM, DMARC, webhook credentials, unsubscribe headers and footer, and SITE_URL for bulk mail."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--nameserver", help="ask this DNS server (IP[:PORT]) instead of the system's")

    def handle(self, *args, nameserver: str | None = None, **options) -> None:
        esp = webhooks.configured_esp()
        findings = checkup.check_all(resolver_for(nameserver), esp, webhooks.credentials_problem(esp) if esp else "")
        for finding in findings:
            self.stdout.write(f"{finding.level:<8} {finding.what:<17} {finding.detail}")
        missing = [f.what for f in findings if f.level == checkup.MISSING]
        if missing:
            raise CommandError(f"missing for bulk sending: {', '.join(missing)}", returncode=1)
        self.stdout.write("Everything a bulk sender needs is in place.")
