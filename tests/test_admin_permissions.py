"""Who may do what in the admin: staff only; editors moderate papers and digests but do not touch settings,
schedules or users. (Sign-in throttling: tests/test_admin_signin.py.)"""

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from newsletter.backoffice.roles import EDITOR_GROUP
from newsletter.models import AuditEntry, Digest
from papers.models import Moderation, Paper
from tests.admin_support import MORNING, PASSWORD, editor_client, make_morning

LOGIN = reverse("admin:login")
CUSTOM_VIEWS = [
    ("admin:newsletter_dashboard", []),
    ("admin:newsletter_digest_today", []),
    ("admin:papers_paper_add_arxiv", []),
    ("admin:subscribers_subscriber_import", []),
    ("admin:subscribers_subscriber_export", []),
    ("admin:papers_paper_changelist", []),
]
FORBIDDEN_FOR_EDITORS = [
    "/admin/auth/user/",
    "/admin/auth/user/add/",
    "/admin/auth/group/",
    "/admin/django_celery_beat/periodictask/",
    "/admin/django_celery_beat/crontabschedule/add/",
    "/admin/subscribers/subscriber/add/",
    "/admin/subscribers/suppression/add/",
    "/admin/papers/paper/add/",
]


@pytest.fixture
def morning(db):
    with time_machine.travel(MORNING, tick=False):
        yield make_morning()


@pytest.mark.parametrize(("name", "args"), CUSTOM_VIEWS)
def test_anonymous_visitors_are_sent_to_the_login(db, name, args):
    response = Client().get(reverse(name, args=args))
    assert response.status_code == 302 and response.url.startswith(LOGIN)


def test_staff_without_permissions_get_nothing(morning):
    User.objects.create_user("intern", "i@example.com", PASSWORD, is_staff=True)
    client = Client()
    client.force_login(User.objects.get(username="intern"))
    for name, args in CUSTOM_VIEWS:
        assert client.get(reverse(name, args=args)).status_code == 403, name
    preview = reverse("admin:newsletter_digest_preview", args=[morning.digest.pk])
    assert client.get(preview).status_code == 403
    act = reverse("admin:newsletter_digest_act", args=[morning.digest.pk, "approve"])
    assert client.post(act).status_code == 403
    assert Digest.objects.get(pk=morning.digest.pk).status == Digest.Status.DRAFT


def test_non_staff_cannot_sign_in_to_the_admin(db):
    User.objects.create_user("reader", "r@example.com", PASSWORD)
    page = Client().post(LOGIN, {"username": "reader", "password": PASSWORD})
    assert page.status_code == 200 and "Please enter the correct username and password" in page.content.decode()


def test_editors_moderate_papers_and_digests(morning, django_capture_on_commit_callbacks):
    client, user = editor_client()
    paper = Paper.objects.first()
    queue = reverse("admin:papers_paper_changelist")
    client.post(queue, {"action": "reject", "_selected_action": [paper.pk], "apply": "1", "reason": "off-topic"})
    assert Paper.objects.get(pk=paper.pk).moderation == Moderation.REJECTED
    assert client.get(reverse("admin:newsletter_digest_preview", args=[morning.digest.pk])).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:newsletter_digest_act", args=[morning.digest.pk, "approve"]))
    assert Digest.objects.get(pk=morning.digest.pk).status == Digest.Status.SENT
    assert set(AuditEntry.objects.filter(user=user).values_list("action", flat=True)) == {"reject", "approve"}
    assert client.get(reverse("admin:newsletter_auditentry_changelist")).status_code == 200
    assert client.get(reverse("admin:newsletter_dashboard")).status_code == 200


@pytest.mark.parametrize("url", FORBIDDEN_FOR_EDITORS)
def test_editors_cannot_change_settings_schedules_or_users(db, url):
    client, _ = editor_client()
    assert client.get(url).status_code == 403


def test_nobody_edits_the_audit_trail_or_the_ledger(morning):
    client, _ = editor_client()
    AuditEntry.objects.create(actor="x", action="approve", target_type="digest", target_repr="d")
    entry = AuditEntry.objects.get()
    assert client.get(reverse("admin:newsletter_auditentry_change", args=[entry.pk])).status_code == 200
    assert ">d</td>" in client.get(reverse("admin:newsletter_auditentry_changelist")).content.decode()
    assert client.post(reverse("admin:newsletter_auditentry_delete", args=[entry.pk])).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_setup_roles_is_idempotent_and_setup_demo_runs_it(db, capsys):
    call_command("setup_roles")
    call_command("setup_roles")
    group = Group.objects.get(name=EDITOR_GROUP)
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert "change_paper" in codenames and "change_digest" in codenames
    assert not {c for c in codenames if c.endswith(("_user", "_group", "_periodictask", "_crontabschedule"))}
    group.delete()
    call_command("setup_demo")
    assert Group.objects.filter(name=EDITOR_GROUP).exists()
