"""`manage.py rank_papers`: the editors' preview of a hypothetical reader's "For you" list."""

import json
from datetime import date

import pytest
from django.core.management import call_command

from papers.ingest import fetch_and_ingest
from papers.models import Moderation, Paper

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def papers(settings):
    settings.RANKING_EMBEDDINGS = "off"
    fetch_and_ingest("json", offline=True)  # the 79 seed papers, no dates
    fetch_and_ingest("hf", offline=True)  # 5 HF papers, dated


def run(*args: str, capsys) -> str:
    call_command("rank_papers", *args)
    return capsys.readouterr().out


def test_json_lists_id_title_score_reason(capsys):
    rows = json.loads(run("--interests", "continual learning, no replay", "--limit", "4", "--json", capsys=capsys))
    assert len(rows) == 4
    assert all(set(row) == {"id", "title", "score", "reason"} for row in rows)
    assert all(row["reason"] == "matches: continual learning" for row in rows)
    assert all("replay" not in Paper.objects.get(pk=row["id"]).abstract.lower() for row in rows)
    assert Paper.objects.get(pk=rows[0]["id"]).title == rows[0]["title"]


def test_text_output_and_no_match(capsys):
    out = run("--interests", "model merging", "--limit", "2", capsys=capsys)
    assert out.count("matches: model merging") == 2 and " 1. [" in out
    assert "No paper matches" in run("--interests", "zzzz qqqq", capsys=capsys)


def test_since_keeps_undated_papers_and_drops_older_dated_ones(capsys):
    dated = Paper.objects.exclude(published=None)
    assert dated.exists()
    after_all = date.fromordinal(max(p.published for p in dated).toordinal() + 1)
    rows = json.loads(run("--interests", "language models", "--limit", "100", "--json", capsys=capsys))
    assert {r["id"] for r in rows} & set(dated.values_list("pk", flat=True))
    since = json.loads(
        run("--interests", "language models", "--limit", "100", "--json", "--since", str(after_all), capsys=capsys)
    )
    assert since and not {r["id"] for r in since} & set(dated.values_list("pk", flat=True))


def test_rejected_papers_are_not_previewed(capsys):
    first = json.loads(run("--interests", "model merging", "--limit", "1", "--json", capsys=capsys))[0]
    Paper.objects.filter(pk=first["id"]).update(moderation=Moderation.REJECTED)
    again = json.loads(run("--interests", "model merging", "--json", capsys=capsys))
    assert first["id"] not in {r["id"] for r in again}
