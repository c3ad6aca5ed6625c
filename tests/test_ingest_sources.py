"""Every source reads its real captures: ids, authors, categories, announce types, clean text."""

from datetime import date

import pytest

from papers.models import FetchRun, Paper
from papers.sources import SourceError, get_source
from tests.conftest import fixture_path

pytestmark = pytest.mark.clock("2026-11-28T07:00:00+00:00")


def parse(spec: str, name: str):
    return get_source(spec).parse(fixture_path(name).read_bytes())


def test_arxiv_rss2_listing_keeps_new_and_cross_and_marks_replace_as_update():
    result = parse("arxiv:cs.LG+cs.AI", "arxiv_rss2_combined_4items.xml")
    by_id = {r.arxiv_id: r for r in result.records}
    assert list(by_id) == ["2609.26811", "2609.26820", "2205.06398", "2009.13987"]
    assert [r.announce_type for r in result.records] == ["new", "new", "cross", "replace"]
    assert [r.update_only for r in result.records] == [False, False, False, True]
    cross = by_id["2205.06398"]
    assert cross.authors == ["Pritam Dey", "Zhengwu Zhang", "David B. Dunson"]
    assert cross.categories == ["stat.ME", "stat.AP", "stat.ML"]
    assert cross.doi == "10.1093/bioinformatics/btac431"
    assert cross.abstract.startswith("It has become routine in neuroscience")
    assert "Announce Type" not in cross.abstract
    assert cross.published == date(2026, 9, 24)
    assert result.errors == []


def test_arxiv_atom_listing_reads_like_the_rss_one():
    result = parse("arxiv:cs.AI", "arxiv_rss_atom_cs.AI_7items.xml")
    assert len(result.records) == 7
    first = result.records[0]
    assert first.arxiv_id == "2508.13426"
    assert first.authors == ["Chunhua Liu", "Kabir Manandhar Shrestha", "Sukai Huang"]
    assert first.announce_type == "cross"
    assert first.abstract.startswith("As large language models")
    assert first.published == date(2025, 8, 20)


def test_old_rdf_listing_strips_title_suffix_splits_linked_authors_and_treats_updated_as_replace():
    result = parse("arxiv:hep-ex", "arxiv_rss1_rdf_hep-ex.xml")
    first, cross, updated = result.records
    assert first.arxiv_id == "2107.03419"
    assert first.title.endswith("decays.") and "(arXiv:" not in first.title
    assert first.authors == ["LHCb collaboration", "R. Aaij"]
    assert cross.announce_type == "new" and not cross.update_only  # "CROSS LISTED" is today's news too
    assert updated.update_only
    assert first.published == date(2021, 7, 9)  # the listing's date (20:30 US Central = the 9th, UTC)


@pytest.mark.django_db
def test_old_rdf_latex_title_is_stored_as_readable_unicode():
    from papers.ingest import ingest_records

    ingest_records(parse("arxiv:hep-ex", "arxiv_rss1_rdf_hep-ex.xml").records, "arxiv:hep-ex")
    title = Paper.objects.get(canonical_id="2107.03419").title
    assert "Ω_c⁰" in title and "$" not in title and "\\Omega" not in title


def test_arxiv_api_reads_primary_category_comment_journal_ref_doi_and_old_style_ids():
    result = parse("arxiv-api:cat:cond-mat", "arxiv_api_atom_10entries.xml")
    by_id = {r.arxiv_id: r for r in result.records}
    assert len(by_id) == 10
    paper = by_id["1509.01687"]
    assert paper.primary_category == "cond-mat.mes-hall"
    assert paper.journal_ref == "Journal of Applied Physics 116, 244307 (2014)"
    assert paper.doi == "10.1063/1.4904358"
    assert paper.comment == "4 figures"
    assert paper.pdf_url == "https://arxiv.org/pdf/1509.01687"
    assert "q-bio/0509018" in by_id  # old-style id, version stripped


def test_arxiv_api_spec_is_a_lookup_by_ids_or_a_search():
    lookup = get_source("arxiv-api:2606.13677v1, hep-ex/0101001")
    assert lookup.ids() == ["2606.13677", "hep-ex/0101001"]
    assert "id_list=2606.13677%2Chep-ex%2F0101001" in lookup.url_for(None)
    search = get_source("arxiv-api:cat:cs.LG AND abs:diffusion")
    assert search.ids() == []
    assert "search_query=cat%3Acs.LG+AND+abs%3Adiffusion" in search.url_for(None)
    assert "sortBy=submittedDate" in search.url_for(None)


def test_hf_daily_papers_carry_the_community_signals():
    result = parse("hf", "hf_daily_papers_5items.json")
    paper = next(r for r in result.records if r.arxiv_id == "2607.27958")
    assert paper.upvotes == 11 and paper.num_comments == 2 and paper.github_stars == 1
    assert paper.code_url == "https://github.com/declare-lab/sigma-mem"
    assert paper.thumbnail_url.endswith("2607.27958.png")
    assert paper.authors == ["Peilin Feng", "Suorong Yang", "Soujanya Poria"]
    assert get_source("hf").url_for(date(2026, 7, 31)).endswith("/api/daily_papers?date=2026-07-31")


def test_generic_feed_maps_title_link_authors_and_doi():
    result = parse("feed:https://journal.example.org/rss", "arxiv_rss2_cs.LG_3items.xml")
    assert len(result.records) == 3
    assert all(r.title and r.url.startswith("https://arxiv.org/abs/") for r in result.records)
    assert result.records[0].arxiv_id == "2604.21952"  # a feed that links to arXiv still ties to the paper


def test_json_file_reads_a_list_a_papers_object_and_json_lines():
    seed = parse("json", "seed_papers.json")
    assert len(seed.records) == 79 and seed.errors == []
    lines = b'{"title": "A", "id": "2401.00001", "authors": "X, Y"}\n\n{"title": "B", "upvotes": 3}\n'
    result = get_source("json").parse(lines)
    assert [(r.title, r.canonical_id, r.authors, r.upvotes) for r in result.records] == [
        ("A", "2401.00001", ["X", " Y"], None),
        ("B", "", [], 3),
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuch", "unknown source"),
        ("arxiv:cs.LG+not a category", "not an arXiv category"),
        ("feed:ftp://example.org/x", "needs a URL"),
        ("arxiv-api:", "needs ids or a query"),
        ("hf:extra", "takes no argument"),
    ],
)
def test_unusable_specs_are_refused_with_one_clear_line(spec, message):
    with pytest.raises(SourceError, match=message):
        get_source(spec)


@pytest.mark.django_db
def test_weekend_listing_is_a_normal_empty_run():
    from papers.ingest import fetch_and_ingest

    run = fetch_and_ingest("arxiv:cs.CL", path=fixture_path("arxiv_rss2_cs.CL_saturday_empty.xml"))
    assert run.status == FetchRun.Status.EMPTY
    assert (run.fetched, run.created, run.errors) == (0, 0, 0)
    assert run.finished_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "spec", ["hf", "arxiv:cs.LG", "arxiv-api:cat:cs.LG", "feed:https://journal.example.org/rss", "json"]
)
def test_every_kind_of_source_has_an_offline_sample(spec):
    from papers.ingest import fetch_and_ingest

    run = fetch_and_ingest(spec, offline=True)
    assert run.status == FetchRun.Status.OK and run.created > 0
