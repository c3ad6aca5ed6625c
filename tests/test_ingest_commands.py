"""The command-line contract (fetch_papers, export_papers), the Celery task, and the per-source schedules."""

import json

import pytest
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from papers.models import Paper
from papers.schedules import sync_fetch_schedules
from tests.conftest import fixture_path

pytestmark = pytest.mark.django_db

EXPORT_KEYS = ["id", "title", "abstract", "authors", "url", "categories", "published", "listed", "upvotes", "sources"]


def last_line(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_fetch_papers_sums_several_sources_into_one_line(capsys):
    call_command("fetch_papers", "json", "--file", str(fixture_path("seed_papers.json")))
    assert last_line(capsys) == "fetched=79 created=79 updated=0 skipped=0 errors=0"
    listing = str(fixture_path("arxiv_rss2_combined_4items.xml"))
    call_command("fetch_papers", "arxiv:cs.LG", "feed:https://rss.arxiv.org/rss/cs.LG", "--file", listing)
    # arXiv: 3 new papers and a replacement skipped; the generic feed knows no replacements: 1 new, 3 joined.
    assert last_line(capsys) == "fetched=8 created=4 updated=3 skipped=1 errors=0"


def test_fetch_papers_reingest_prints_no_changes(capsys):
    path = str(fixture_path("arxiv_rss_atom_cs.AI_7items.xml"))
    call_command("fetch_papers", "arxiv:cs.AI", "--file", path)
    assert last_line(capsys) == "fetched=7 created=7 updated=0 skipped=0 errors=0"
    call_command("fetch_papers", "arxiv:cs.AI", "--file", path)
    assert last_line(capsys) == "fetched=7 created=0 updated=0 skipped=0 errors=0"
    call_command("fetch_papers", "arxiv:cs.AI", "--file", path, "--force")
    assert last_line(capsys) == "fetched=7 created=0 updated=0 skipped=0 errors=0"


def test_fetch_papers_refuses_an_unknown_source_in_one_line():
    with pytest.raises(CommandError, match="unknown source 'arxive'; known: arxiv, arxiv-api, feed, hf, json"):
        call_command("fetch_papers", "arxive", "--file", str(fixture_path("seed_papers.json")))


def test_export_papers_writes_json_lines_with_the_contract_keys(capsys):
    call_command("fetch_papers", "arxiv:cs.LG", "--file", str(fixture_path("arxiv_rss2_combined_4items.xml")))
    call_command("fetch_papers", "json", "--file", str(fixture_path("seed_papers.json")))
    capsys.readouterr()
    call_command("export_papers")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3 + 79
    assert all(list(line) == EXPORT_KEYS for line in lines)
    cross = next(line for line in lines if line["id"] == "2205.06398")
    assert cross == {
        "id": "2205.06398",
        "title": "Outlier Detection for Multi-Network Data",
        "abstract": cross["abstract"],
        "authors": ["Pritam Dey", "Zhengwu Zhang", "David B. Dunson"],
        "url": "https://arxiv.org/abs/2205.06398",
        "categories": ["stat.ME", "stat.AP", "stat.ML"],
        "published": "2026-09-24",
        "listed": "2026-09-24",
        "upvotes": None,
        "sources": ["arxiv"],
    }
    seed = lines[-1]
    assert seed["id"].startswith("title:") and seed["published"] is None and seed["sources"] == ["json"]


def test_export_since_keeps_papers_published_from_that_day(capsys):
    call_command("fetch_papers", "arxiv:cs.LG", "--file", str(fixture_path("arxiv_rss2_combined_4items.xml")))
    call_command("fetch_papers", "arxiv:cs.AI", "--file", str(fixture_path("arxiv_rss_atom_cs.AI_7items.xml")))
    capsys.readouterr()
    call_command("export_papers", "--since", "2026-01-01")
    ids = [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]
    assert ids == ["2609.26811", "2609.26820", "2205.06398"]


def test_exported_papers_read_back_as_the_same_papers(capsys, tmp_path):
    call_command("fetch_papers", "hf", "--file", str(fixture_path("hf_daily_papers_5items.json")))
    call_command("fetch_papers", "json", "--file", str(fixture_path("seed_papers.json")))
    capsys.readouterr()
    call_command("export_papers")
    export = tmp_path / "export.jsonl"
    export.write_text(capsys.readouterr().out)
    call_command("fetch_papers", "json", "--file", str(export))
    assert last_line(capsys) == "fetched=84 created=0 updated=5 skipped=0 errors=0"  # "json" joins HF's sources
    assert Paper.objects.count() == 84


def test_sync_fetch_schedules_creates_one_editable_task_per_source(settings):
    settings.PAPER_SOURCES = ["hf", "arxiv:cs.LG+cs.CL", "json"]
    assert sync_fetch_schedules() == ["hf", "arxiv:cs.LG+cs.CL"]  # json reads local files: nothing to schedule
    task = PeriodicTask.objects.get(name="fetch arxiv:cs.LG+cs.CL")
    assert task.task == "papers.tasks.fetch_source"
    assert json.loads(task.args) == ["arxiv:cs.LG+cs.CL"]
    assert (task.crontab.minute, task.crontab.hour) == ("30", "4")
    task.enabled = False  # an operator's change survives the next sync
    task.save()
    settings.PAPER_SOURCES = ["hf", "arxiv:cs.LG+cs.CL", "feed:https://journal.example.org/rss"]
    assert sync_fetch_schedules() == ["feed:https://journal.example.org/rss"]
    assert not PeriodicTask.objects.get(name="fetch arxiv:cs.LG+cs.CL").enabled


def test_sync_fetch_schedules_command_refuses_a_misspelt_source(settings, capsys):
    settings.PAPER_SOURCES = ["hf", "arxive:cs.LG"]
    with pytest.raises(CommandError, match=r"unknown source 'arxive:cs\.LG'"):
        call_command("sync_fetch_schedules")
    assert not PeriodicTask.objects.filter(name__startswith="fetch ").exists()
    settings.PAPER_SOURCES = ["hf"]
    call_command("sync_fetch_schedules", "--cron", "0 */6 * * *")
    assert capsys.readouterr().out.strip() == "schedules added: hf"
    assert PeriodicTask.objects.get(name="fetch hf").crontab.hour == "*/6"
