"""What the admin tests share: a morning with real sample papers, readers, today's digest and an editor."""

from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from newsletter.digest import build_digest
from newsletter.models import Digest
from newsletter.roles import EDITOR_GROUP, setup_roles
from papers.ingest import fetch_and_ingest
from papers.models import Paper
from subscribers.models import Subscriber

TODAY = date(2026, 11, 28)
MORNING = datetime(2026, 11, 28, 6, 30, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


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
