"""What the admin tests share: a morning with real sample papers, readers, today's digest and an editor."""

import html
import re
from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import urljoin, urlsplit

from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from newsletter.backoffice.roles import EDITOR_GROUP, setup_roles
from newsletter.digests.build import build_digest
from newsletter.models import Digest
from papers.ingest import fetch_and_ingest
from papers.models import Paper
from subscribers.models import Subscriber

TODAY = date(2026, 11, 28)
MORNING = datetime(2026, 11, 28, 6, 30, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
# Pages of one kind (a paper's change page, a delivery's) differ only in their row: a few of each are enough.
PAGES_PER_KIND = 3
MAX_PAGES = 600  # a bound on the crawl: a superuser's whole admin is well under it
HREF = re.compile(r"""(?:href|action|src)=["']([^"']+)["']""")


@dataclass
class Morning:
    digest: Digest
    ada: Subscriber
    bob: Subscriber


def make_morning(day: date = TODAY) -> Morning:
    """The bundled HF, arXiv and seed papers ingested now, two active readers (whose delivery hour is now, so
    an approved digest reaches them at once) and one who left, today's draft."""
    fetch_and_ingest("hf", offline=True)
    fetch_and_ingest("json", offline=True)
    fetch_and_ingest("arxiv:cs.LG", offline=True)
    ada = Subscriber.objects.create(
        email="ada@example.com",
        status="active",
        interests="reinforcement learning",
        confirmed_at=timezone.now(),
        delivery_hour=timezone.now().hour,
    )
    bob = Subscriber.objects.create(
        email="bob@example.com", status="active", confirmed_at=timezone.now(), delivery_hour=timezone.now().hour
    )
    Subscriber.objects.create(email="dee@example.com", status="unsubscribed")
    return Morning(digest=build_digest(day), ada=ada, bob=bob)


def trending_titles(digest: Digest) -> list[str]:
    return list(
        Paper.objects.filter(digestpaper__digest=digest)
        .order_by("digestpaper__position")
        .values_list("title", flat=True)
    )


def superuser_client() -> tuple[Client, User]:
    user = User.objects.create_superuser("boss", "boss@example.com", PASSWORD)
    client = Client()
    client.force_login(user)
    return client, user


def editor_client(username: str = "eddie") -> tuple[Client, User]:
    setup_roles()
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=EDITOR_GROUP))
    client = Client()
    client.force_login(user)
    return client, user


def crawl(client, start: str) -> dict[str, str]:
    """Every admin page reachable from `start` by following links, as {url: body}."""
    pages: dict[str, str] = {}
    kinds: dict[str, int] = {}
    queue = deque([start])
    while queue and len(pages) < MAX_PAGES:
        url = queue.popleft()
        response = client.get(url)
        content = b"".join(response.streaming_content) if response.streaming else response.content
        body = content.decode(errors="replace")
        pages[url] = body
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        for href in HREF.findall(body):
            target = urlsplit(urljoin(url, html.unescape(href)))
            if target.netloc not in ("", "testserver") or not target.path.startswith("/admin/"):
                continue
            kind = re.sub(r"\d+", "#", target.path)
            if kinds.get(kind, 0) >= PAGES_PER_KIND:
                continue
            kinds[kind] = kinds.get(kind, 0) + 1
            queue.append(target.path + (f"?{target.query}" if target.query else ""))
    return pages
