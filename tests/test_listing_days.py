"""A digest belongs to the day its papers were announced, not the day we fetched them: catch-up sends of a missed
day, skipped days rebuilt when their papers arrive, and one bad entry never losing a source."""

import json
import re
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from newsletter.digests.build import build_digest
from newsletter.models import Delivery, Digest, DigestPaper
from papers.ingest import fetch_and_ingest
from papers.models import FetchRun, Paper
from papers.text import UNSAFE_CHARS
from subscribers.models import Subscriber
from tests.conftest import fixture_path
from tests.helpers import parts, read_outbox

TODAY = date(2026, 12, 6)
YESTERDAY = TODAY - timedelta(days=1)
pytestmark = [pytest.mark.clock("2026-12-06T07:00:00+00:00"), pytest.mark.django_db(transaction=True)]
SEED = str(fixture_path("seed_papers.json"))


def readers() -> list[Subscriber]:
    Subscriber.objects.create(email="gone@example.com", status="unsubscribed")
    return [
        Subscriber.objects.create(email="ada@example.com", status="active", interests="reinforcement learning"),
        Subscriber.objects.create(email="bob@example.com", status="active"),
    ]


def last_line(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_each_source_gives_the_listing_day_it_announced_and_first_seen_stays_when_we_saw_it():
    fetch_and_ingest("hf", path=fixture_path("hf_daily_papers_5items.json"))
    fetch_and_ingest("arxiv:cs.AI", path=fixture_path("arxiv_rss_atom_cs.AI_7items.xml"))
    hf = Paper.objects.filter(sources=["hf"])
    assert hf.count() == 5 and {p.listed for p in hf} == {date(2026, 7, 31)}  # HF's daily page of that day
    arxiv = Paper.objects.filter(sources=["arxiv"])
    assert arxiv.count() == 7 and {p.listed for p in arxiv} == {date(2025, 8, 20)}  # the announcement
    assert {p.first_seen.date() for p in Paper.objects.all()} == {timezone.now().date()} == {TODAY}


def test_a_file_ingested_for_a_day_is_that_days_listing(capsys):
    call_command("fetch_papers", "json", "--file", SEED, "--date", "2026-12-05")
    assert last_line(capsys) == "fetched=79 created=79 updated=0 skipped=0 errors=0"
    assert set(Paper.objects.values_list("listed", flat=True)) == {YESTERDAY}
    assert {p.first_seen.date() for p in Paper.objects.all()} == {TODAY}


def test_a_listing_seen_again_later_keeps_its_first_announcement():
    fetch_and_ingest("json", YESTERDAY, path=fixture_path("seed_papers.json"))
    fetch_and_ingest("json", TODAY, path=fixture_path("seed_papers.json"), force=True)
    assert set(Paper.objects.values_list("listed", flat=True)) == {YESTERDAY}


def test_an_export_read_back_keeps_each_papers_listing_day(capsys, tmp_path):
    fetch_and_ingest("arxiv:cs.AI", path=fixture_path("arxiv_rss_atom_cs.AI_7items.xml"))
    fetch_and_ingest("json", YESTERDAY, path=fixture_path("seed_papers.json"))
    before = dict(Paper.objects.values_list("canonical_id", "listed"))
    call_command("export_papers")
    export = tmp_path / "papers.jsonl"
    export.write_text(capsys.readouterr().out)
    Paper.objects.all().delete()
    fetch_and_ingest("json", path=export)
    assert dict(Paper.objects.values_list("canonical_id", "listed")) == before


def test_catch_up_a_missed_day_after_an_outage(capsys, outbox):
    """The day's fetch failed; the next morning an operator imports yesterday's listing and sends yesterday's
    digest. Asking for it before the papers arrived skipped it; that is not for good."""
    readers()
    call_command("send_digest", "--date", YESTERDAY.isoformat())
    assert "No new papers for 2026-12-05" in capsys.readouterr().out
    assert Digest.objects.get(date=YESTERDAY).status == Digest.Status.SKIPPED

    call_command("fetch_papers", "json", "--file", SEED, "--date", YESTERDAY.isoformat())
    assert Digest.objects.get(date=YESTERDAY).status == Digest.Status.DRAFT  # rebuilt as the papers arrived
    call_command("send_digest", "--date", YESTERDAY.isoformat())
    assert "sent=2 skipped=0 failed=0" in last_line(capsys)
    call_command("send_digest", "--date", YESTERDAY.isoformat())
    assert "sent=2 skipped=0 failed=0" in last_line(capsys)  # the ledger's count; nobody was sent it again

    messages = read_outbox(outbox)
    assert sorted(m["To"] for m in messages) == ["ada@example.com", "bob@example.com"]
    assert all("/digests/2026-12-05/" in parts(m)[0] for m in messages)
    assert Delivery.objects.filter(digest__date=YESTERDAY, status="sent").count() == 2


def test_run_daily_for_a_past_day_works_end_to_end(capsys, outbox):
    readers()
    call_command("run_daily", "--offline", "--date", "2026-12-01")
    assert "digest=sent sent=2 skipped=0 failed=0" in last_line(capsys)
    assert Digest.objects.get(date=date(2026, 12, 1)).status == Digest.Status.SENT
    assert len(read_outbox(outbox)) == 2


def test_a_catch_up_send_never_repeats_what_a_later_digest_already_sent(outbox):
    """Today's digest went out (its window reaches back to yesterday); then yesterday's is sent late. Nobody gets
    a paper twice."""
    readers()
    fetch_and_ingest("json", YESTERDAY, path=fixture_path("seed_papers.json"))
    fetch_and_ingest("hf", TODAY, path=fixture_path("hf_daily_papers_5items.json"))
    call_command("send_digest", "--date", TODAY.isoformat())
    call_command("send_digest", "--date", YESTERDAY.isoformat())
    for reader in Subscriber.objects.filter(status="active"):
        today, yesterday = (
            set(Delivery.objects.get(subscriber=reader, digest__date=day).paper_ids) for day in (TODAY, YESTERDAY)
        )
        assert today and yesterday and not today & yesterday, reader.email
    trending = {
        day: set(DigestPaper.objects.filter(digest__date=day).values_list("paper_id", flat=True))
        for day in (TODAY, YESTERDAY)
    }
    assert not trending[TODAY] & trending[YESTERDAY]


def test_a_skipped_day_is_rebuilt_when_its_papers_arrive_but_an_editors_skip_stands():
    assert build_digest(TODAY).status == Digest.Status.SKIPPED
    fetch_and_ingest("hf", TODAY, path=fixture_path("hf_daily_papers_5items.json"))
    digest = Digest.objects.get(date=TODAY)
    assert digest.status == Digest.Status.DRAFT and digest.items.count() == 5
    # A digest skipped with its papers (the review deadline, an editor) is a decision, not a missing listing.
    Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.SKIPPED)
    fetch_and_ingest("json", TODAY, path=fixture_path("seed_papers.json"))
    assert build_digest(TODAY).status == Digest.Status.SKIPPED


HOSTILE = [
    "\x00",  # NUL: PostgreSQL refuses it in text
    "\x01\x07\x1b[31m",  # C0 controls and an ANSI escape
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u202a\u202b\u202c\u202d",
    "\u2066\u2067\u2068\u2069",  # isolates
    "\ud800",  # a lone surrogate (not encodable as UTF-8)
    "\x7f\x85\x9b",  # DEL and C1 controls
]


def hostile_papers(tmp_path):
    entries = [
        {
            "id": f"2612.{n:05d}",
            "title": f"Robust learning {bad}number {n}{bad} of the batch",
            "abstract": f"We study{bad} reinforcement learning for robots{bad}. Results are strong.",
            "authors": [f"Ada{bad} Lovelace", "Bob Builder"],
            "categories": [f"cs.LG{bad}"],
        }
        for n, bad in enumerate(HOSTILE)
    ]
    entries.append({"id": "2612.99999", "title": "A clean paper about speech synthesis", "abstract": "Clean."})
    path = tmp_path / "hostile.json"
    # ensure_ascii writes the lone surrogate as the escape \\ud800, as a broken exporter would.
    path.write_text(json.dumps(entries, ensure_ascii=True))
    return path, len(entries)


def stored_text() -> str:
    rows = Paper.objects.values_list("title", "abstract", "authors", "categories")
    return " ".join(f"{t} {a} {' '.join(au)} {' '.join(c)}" for t, a, au, c in rows)


def test_hostile_characters_never_get_in_and_never_reach_an_email_or_a_page(tmp_path, capsys, outbox, client):
    """On PostgreSQL in CI (NUL is what it refuses); the same cleaning on any database."""
    readers()
    path, count = hostile_papers(tmp_path)
    call_command("fetch_papers", "json", "--file", str(path), "--date", TODAY.isoformat())
    assert last_line(capsys) == f"fetched={count} created={count} updated=0 skipped=0 errors=0"
    assert not UNSAFE_CHARS.search(stored_text())
    assert Paper.objects.get(canonical_id="2612.00002").title == "Robust learning number 2 of the batch"

    call_command("send_digest", "--date", TODAY.isoformat())
    messages = read_outbox(outbox)
    assert len(messages) == 2
    for message in messages:
        text, html = parts(message)
        for part in (message["Subject"], text, html):
            assert not UNSAFE_CHARS.search(part)
    page = client.get(f"/digests/{TODAY.isoformat()}/").content.decode()
    assert "Robust learning" in page and not UNSAFE_CHARS.search(page)


def test_an_entry_the_database_refuses_costs_only_itself(postgres, tmp_path, capsys):
    """However a value gets past cleaning, the database refusing it loses that entry alone, counted in errors."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE papers_paper ADD CONSTRAINT refuse_poison CHECK (title NOT LIKE 'Poison%%')")
    try:
        entries = [{"title": f"Paper {n}", "abstract": "Fine."} for n in range(5)]
        entries.insert(2, {"title": "Poison pill", "abstract": "The database refuses this one."})
        path = tmp_path / "batch.json"
        path.write_text(json.dumps(entries))
        call_command("fetch_papers", "json", "--file", str(path))
        assert last_line(capsys) == "fetched=6 created=5 updated=0 skipped=1 errors=1"
        assert sorted(Paper.objects.values_list("title", flat=True)) == [f"Paper {n}" for n in range(5)]
        run_messages = " ".join(FetchRun.objects.get().messages)
        assert re.search(r"refused by the database: .*refuse_poison", run_messages)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE papers_paper DROP CONSTRAINT refuse_poison")
