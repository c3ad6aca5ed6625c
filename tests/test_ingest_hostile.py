"""Bad input, built from the real captures: each bad entry is recorded and skipped, good entries are kept, and
input that is no feed at all fails with one clear line and writes nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from papers.models import FetchRun, Paper
from tests.conftest import fixture_path

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
LISTING = "arxiv_rss2_combined_4items.xml"


def variant(tmp_path: Path, data: bytes, name: str = "variant.xml") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def fetch(capsys, *args: str) -> str:
    call_command("fetch_papers", *args)
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_truncated_feed_keeps_the_complete_entries(tmp_path, capsys):
    data = fixture_path(LISTING).read_bytes()
    cut = data.index(b"Abstract: It has become routine")  # in the middle of the third entry
    line = fetch(capsys, "arxiv:cs.LG", "--file", str(variant(tmp_path, data[:cut])))
    assert line == "fetched=2 created=2 updated=0 skipped=0 errors=1"
    assert sorted(Paper.objects.values_list("canonical_id", flat=True)) == ["2609.26811", "2609.26820"]
    run = FetchRun.objects.get()
    assert run.status == FetchRun.Status.PARTIAL
    assert "malformed feed" in run.messages[0] and "kept the 2 complete entries" in run.messages[0]


def test_latin1_bytes_declared_utf8_are_read_and_recorded(tmp_path, capsys):
    data = b'<?xml version="1.0" encoding="UTF-8"?>\n' + fixture_path(LISTING).read_bytes().split(b"?>", 1)[1]
    data = data.replace(b"Fabien Polly", "Fabien Poll\u00e9".encode("latin-1"))
    fetch(capsys, "arxiv:cs.LG", "--file", str(variant(tmp_path, data)))
    assert Paper.objects.get(canonical_id="2609.26811").authors == ["Fabien Poll\u00e9"]
    assert any("encoding" in m for m in FetchRun.objects.get().messages)


def test_utf8_bytes_declared_latin1_are_read_as_utf8(tmp_path, capsys):
    data = fixture_path(LISTING).read_bytes().replace(b"encoding='UTF-8'", b"encoding='ISO-8859-1'")
    data = data.replace(b"Fabien Polly", "Fabien Poll\u00e9 \u00c5str\u00f6m".encode())
    assert b"ISO-8859-1" in data
    fetch(capsys, "arxiv:cs.LG", "--file", str(variant(tmp_path, data)))
    assert Paper.objects.get(canonical_id="2609.26811").authors == ["Fabien Poll\u00e9 \u00c5str\u00f6m"]


def test_markup_and_script_in_titles_are_stripped(tmp_path, capsys):
    hostile = b"&lt;script&gt;alert('x')&lt;/script&gt;Outlier &lt;b&gt;Detection&lt;/b&gt; &amp;amp; Data"
    data = fixture_path(LISTING).read_bytes()
    data = data.replace(b"<title>Outlier Detection for Multi-Network Data</title>", b"<title>" + hostile + b"</title>")
    fetch(capsys, "arxiv:cs.LG", "--file", str(variant(tmp_path, data)))
    assert Paper.objects.get(canonical_id="2205.06398").title == "Outlier Detection & Data"


def test_entries_with_missing_fields_are_skipped_or_kept_as_far_as_they_go(tmp_path, capsys):
    data = fixture_path(LISTING).read_bytes()
    data = data.replace(b"<link>https://arxiv.org/abs/2609.26811</link>", b"").replace(
        b'<guid isPermaLink="false">oai:arXiv.org:2609.26811v1</guid>', b""
    )  # no id at all: cannot be tied to a paper
    data = data.replace(b"<title>Signal2Symbol", b"<nottitle>Signal2Symbol").replace(
        b"Anomaly Detection</title>", b"Anomaly Detection</nottitle>"
    )
    start = data.index(b"<description>arXiv:2205.06398")
    data = data[:start] + data[data.index(b"</description>", start) + len(b"</description>") :]
    line = fetch(capsys, "arxiv:cs.LG", "--file", str(variant(tmp_path, data)))
    assert line == "fetched=4 created=1 updated=0 skipped=3 errors=2"
    paper = Paper.objects.get()
    assert (paper.canonical_id, paper.abstract) == ("2205.06398", "")
    assert len(FetchRun.objects.get().messages) == 2


def test_duplicated_entries_in_a_feed_make_one_paper(tmp_path, capsys):
    data = fixture_path(LISTING).read_bytes()
    first = data[data.index(b"<item>") : data.index(b"</item>") + len(b"</item>")]
    data = data.replace(b"</channel>", first + first + b"</channel>")
    line = fetch(capsys, "arxiv:cs.LG", "--file", str(variant(tmp_path, data)))
    assert line == "fetched=6 created=3 updated=0 skipped=3 errors=0"
    assert Paper.objects.filter(canonical_id="2609.26811").count() == 1


@pytest.mark.parametrize(
    ("spec", "data", "message"),
    [
        ("arxiv:cs.LG", b"", "empty input"),
        ("arxiv:cs.LG", b"<!doctype html><html><body><h1>Service unavailable</h1></body></html>", "not a feed"),
        ("arxiv:cs.LG", b'{"papers": "nope"}', "not a feed"),
        ("arxiv:cs.LG", fixture_path(LISTING).read_bytes()[:900], "malformed feed"),  # cut before any entry
        ("feed:https://example.org/rss", b"\x00\xff\xfe garbage", "not a feed"),
        ("hf", b'{"error": "Invalid date"}', "expected a JSON list"),
        ("hf", b"<html>", "not JSON"),
        ("json", b"", "empty input"),
        ("json", b"<html><body>404</body></html>\n", "not JSON"),
        ("json", b'{"a": 1}', "expected a JSON list of papers"),
    ],
)
def test_input_that_is_no_feed_fails_with_one_line_and_writes_nothing(tmp_path, spec, data, message):
    with pytest.raises(CommandError) as failure:
        call_command("fetch_papers", spec, "--file", str(variant(tmp_path, data)))
    assert message in str(failure.value)
    assert "\n" not in str(failure.value)
    assert Paper.objects.count() == 0
    assert FetchRun.objects.get().status == FetchRun.Status.FAILED


def test_a_missing_file_is_one_clear_line(tmp_path):
    with pytest.raises(CommandError, match=r"json: cannot read .*nothing\.json: No such file"):
        call_command("fetch_papers", "json", "--file", str(tmp_path / "nothing.json"))


def test_bad_hf_items_are_skipped_without_losing_good_ones(tmp_path, capsys):
    items = json.loads(fixture_path("hf_daily_papers_3items.json").read_text())
    broken = [
        "not an object",
        {"paper": {"title": "No id"}},
        {"paper": {"id": "2607.99999", "title": "Odd values", "upvotes": "many", "authors": "nobody"}},
        {"paper": {"id": "2607.99998", "title": "Huge", "upvotes": 10**12}},
    ]
    line = fetch(capsys, "hf", "--file", str(variant(tmp_path, json.dumps(items + broken).encode(), "hf.json")))
    assert line == "fetched=7 created=5 updated=0 skipped=2 errors=2"
    odd = Paper.objects.get(canonical_id="2607.99999")
    assert (odd.upvotes, odd.authors) == (None, [])
    assert Paper.objects.get(canonical_id="2607.99998").upvotes is None  # beyond any real count: not stored


def test_json_lines_with_broken_lines_keep_the_good_ones(tmp_path, capsys):
    seed = json.loads(fixture_path("seed_papers.json").read_text())["papers"][:3]
    lines = [json.dumps(p) for p in seed]
    lines.insert(1, '{"title": "cut off')
    lines.append("Caf\u00e9 \u2014 not json")
    data = "\n".join(lines).encode("utf-8")
    line = fetch(capsys, "json", "--file", str(variant(tmp_path, data, "papers.jsonl")))
    assert line == "fetched=5 created=3 updated=0 skipped=2 errors=2"


def test_latin1_json_lines_are_read_as_windows_1252_and_recorded(tmp_path, capsys):
    data = json.dumps({"title": "Caf\u00e9 networks", "id": "2401.00001"}, ensure_ascii=False).encode("latin-1")
    line = fetch(capsys, "json", "--file", str(variant(tmp_path, data, "latin1.json")))
    assert line == "fetched=1 created=1 updated=0 skipped=0 errors=1"
    assert Paper.objects.get().title == "Caf\u00e9 networks"
    assert "read as Windows-1252" in FetchRun.objects.get().messages[0]


def test_values_that_do_not_fit_are_dropped_not_fatal(tmp_path, capsys):
    papers = [
        {"title": "Long url", "id": "2401.00002", "url": "https://example.org/" + "x" * 600},
        {"title": "Long id", "id": "x" * 300},
        {"title": "Fine", "id": "2401.00003", "doi": "10.1/" + "y" * 300},
    ]
    line = fetch(capsys, "json", "--file", str(variant(tmp_path, json.dumps(papers).encode(), "long.json")))
    assert line == "fetched=3 created=2 updated=0 skipped=1 errors=1"
    assert Paper.objects.get(canonical_id="2401.00002").url == ""
    assert Paper.objects.get(canonical_id="2401.00003").doi == ""


def test_the_command_exits_with_status_1_and_one_line_for_non_feed_input(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}} | {
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    assert manage("migrate", "-v", "0").returncode == 0
    page = variant(tmp_path, b"<html><body><p>Sorry, we are down.</p></body></html>", "page.html")
    result = manage("fetch_papers", "arxiv:cs.LG", "--file", str(page))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors == ["CommandError: arxiv:cs.LG: not a feed (no RSS, Atom or RDF document found)"]
    good = manage("fetch_papers", "arxiv:cs.LG", "--file", str(fixture_path(LISTING)))
    assert good.returncode == 0
    assert good.stdout.strip().splitlines()[-1] == "fetched=4 created=3 updated=0 skipped=1 errors=0"


def test_an_arxiv_api_error_answer_fails_the_run_with_the_api_message(tmp_path):
    data = fixture_path("arxiv_api_atom_5entries.xml").read_text()
    head, tail = data.split("<entry>", 1)[0], "</feed>\n"
    error = (
        "<entry><id>http://arxiv.org/api/errors#incorrect_id_format_for_1234</id><title>Error</title>"
        "<summary>incorrect id format for 1234</summary></entry>"
    )
    with pytest.raises(CommandError, match="arXiv API error: incorrect id format for 1234"):
        call_command("fetch_papers", "arxiv-api:1234", "--file", str(variant(tmp_path, (head + error + tail).encode())))
    assert Paper.objects.count() == 0
