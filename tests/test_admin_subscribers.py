"""Subscribers in the admin: CSV import (page and command), CSV export, filters, the suppression list."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from subscribers.importing import import_subscribers, read_rows
from subscribers.models import Subscriber, Suppression, email_hash
from tests.admin_support import editor_client, superuser_client

IMPORT_CSV = """\ufeffEmail,Interests
new@example.com,"diffusion, robotics"
NEW2@Example.com,
old@example.com,graph neural networks
not-an-address,whatever
gone@example.com,anything
bounced@example.com,
new@example.com,repeated
pending@example.com,
"<script>@x",
"""


@pytest.fixture
def readers(db):
    Subscriber.objects.create(email="old@example.com", status="active", interests="speech")
    Subscriber.objects.create(email="gone@example.com", status="unsubscribed")
    Subscriber.objects.create(email="pending@example.com", status="pending")
    Suppression.objects.create(email_hash=email_hash("Bounced@example.com"), reason="bounce")


def test_import_creates_updates_and_refuses_with_reasons(readers):
    result = import_subscribers(read_rows(io.StringIO(IMPORT_CSV.lstrip("\ufeff"))))
    assert result.summary() == "imported=2 updated=2 refused=5"
    assert {(line, email, why) for line, email, why in result.refusals} == {
        (5, "not-an-address", "not a valid address"),
        (6, "gone@example.com", "unsubscribed (only they can subscribe again)"),
        (7, "bounced@example.com", "suppressed (bounced, complained or deleted)"),
        (8, "new@example.com", "repeated in this file"),
        (10, "<script>@x", "not a valid address"),
    }
    new = Subscriber.objects.get(email="new@example.com")
    assert (new.status, new.interests, new.confirmed_at) == ("pending", "diffusion, robotics", None)
    # Stored as the sign-up form stores it: the domain lower-cased, the local part as written.
    assert Subscriber.objects.filter(email="NEW2@example.com", status="pending").exists()
    assert Subscriber.objects.get(email="old@example.com").interests == "graph neural networks"
    assert Subscriber.objects.get(email="gone@example.com").status == "unsubscribed"
    assert Subscriber.objects.get(email="pending@example.com").status == "pending"


def test_import_command_with_confirmed_activates_and_prints_the_summary(readers, tmp_path, capsys):
    path = tmp_path / "list.csv"
    path.write_text(IMPORT_CSV, encoding="utf-8")
    call_command("import_subscribers", str(path), "--confirmed")
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "imported=2 updated=2 refused=5"
    assert "line 7: bounced@example.com: suppressed" in err
    assert Subscriber.objects.get(email="new@example.com").status == "active"
    pending = Subscriber.objects.get(email="pending@example.com")
    assert pending.status == "active" and pending.confirmed_at is not None
    assert Subscriber.objects.get(email="gone@example.com").status == "unsubscribed"


def test_import_command_without_a_header_and_in_batches(db, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("subscribers.importing.IMPORT_BATCH_SIZE", 7)
    path = tmp_path / "plain.csv"
    path.write_text("\n".join(f"reader{i}@example.com,topic {i}" for i in range(50)) + "\n\n")
    call_command("import_subscribers", str(path))
    assert capsys.readouterr().out.strip() == "imported=50 updated=0 refused=0"
    assert Subscriber.objects.get(email="reader49@example.com").interests == "topic 49"
    call_command("import_subscribers", str(path))
    assert capsys.readouterr().out.strip() == "imported=0 updated=50 refused=0"


def test_import_command_rejects_unreadable_files(db, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_subscribers", str(tmp_path / "missing.csv"))
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("email,interests\nzoë@example.com,café\n".encode("latin-1"))
    with pytest.raises(CommandError, match=r"latin1\.csv"):
        call_command("import_subscribers", str(latin))
    assert not Subscriber.objects.exists()


def test_import_page_reports_refusals(readers):
    client, _ = superuser_client()
    upload = SimpleUploadedFile("list.csv", IMPORT_CSV.encode(), content_type="text/csv")
    page = client.post(reverse("admin:subscribers_subscriber_import"), {"file": upload}).content.decode()
    assert "Result: imported 2, updated 2, refused 5" in page
    assert "&lt;script&gt;@x" in page and "<script>@x" not in page
    not_utf8 = SimpleUploadedFile("x.csv", b"email\n\xff\xfe@example.com\n")
    page = client.post(reverse("admin:subscribers_subscriber_import"), {"file": not_utf8}).content.decode()
    assert "not UTF-8" in page


def test_export_follows_the_changelist_filters_and_defuses_formulas(db):
    Subscriber.objects.create(email="a@example.com", status="active", interests='=HYPERLINK("http://x")')
    Subscriber.objects.create(email="b@example.com", status="pending", interests="vision")
    client, _ = superuser_client()
    response = client.get(reverse("admin:subscribers_subscriber_export"), {"status__exact": "active"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["email"] for r in rows] == ["a@example.com"]
    assert rows[0]["interests"] == '\'=HYPERLINK("http://x")'
    action = client.post(
        reverse("admin:subscribers_subscriber_changelist"),
        {"action": "export_csv", "_selected_action": list(Subscriber.objects.values_list("pk", flat=True))},
    )
    assert b"".join(action.streaming_content).decode().count("@example.com") == 2


def test_subscriber_filters_and_history_link(db):
    with_interests = Subscriber.objects.create(email="a@example.com", status="active", interests="nlp")
    Subscriber.objects.create(email="b@example.com", status="active")
    client, _ = superuser_client()
    page = client.get(reverse("admin:subscribers_subscriber_changelist"), {"has_interests": "yes"})
    assert list(page.context["cl"].result_list) == [with_interests]
    assert f"?subscriber__exact={with_interests.pk}" in page.content.decode()
    searched = client.get(reverse("admin:subscribers_subscriber_changelist"), {"q": "nlp"})
    assert list(searched.context["cl"].result_list) == [with_interests]


def test_suppression_list_is_searched_and_added_by_address_but_stores_a_hash(db):
    client, _ = superuser_client()
    response = client.post(
        reverse("admin:subscribers_suppression_add"),
        {"email": "Spam.Trap@example.com", "reason": "manual", "detail": "asked by phone"},
    )
    assert response.status_code == 302
    suppression = Suppression.objects.get()
    assert suppression.email_hash == email_hash("spam.trap@example.com")
    assert "example.com" not in str(Suppression.objects.values().get())
    found = client.get(reverse("admin:subscribers_suppression_changelist"), {"q": "spam.trap@example.com"})
    assert list(found.context["cl"].result_list) == [suppression]
    assert "asked by phone" in found.content.decode() and "Added by an operator" in found.content.decode()
    again = client.post(
        reverse("admin:subscribers_suppression_add"), {"email": "spam.trap@example.com", "reason": "manual"}
    )
    assert "already suppressed" in again.content.decode()


def test_editors_cannot_import_subscribers(db):
    client, _ = editor_client()
    assert client.get(reverse("admin:subscribers_subscriber_import")).status_code == 403
    assert client.get(reverse("admin:subscribers_subscriber_export")).status_code == 200


def test_import_page_sends_big_files_to_the_command(db, settings):
    from subscribers.admin import UPLOAD_MAX_BYTES

    client, _ = superuser_client()
    big = SimpleUploadedFile("big.csv", b"email\n" + b"x" * UPLOAD_MAX_BYTES)
    page = client.post(reverse("admin:subscribers_subscriber_import"), {"file": big}).content.decode()
    assert "use `manage.py import_subscribers FILE.csv`" in page
    assert not Subscriber.objects.exists()


def test_import_refuses_overlong_interests_and_addresses(db):
    rows = [(2, "a@example.com", "x" * 2001), (3, "b" * 250 + "@example.com", ""), (4, "ok@example.com", "nlp")]
    result = import_subscribers(iter(rows))
    assert result.summary() == "imported=1 updated=0 refused=2"
    assert [why for _, _, why in result.refusals] == ["interests longer than 2000 characters", "not a valid address"]
