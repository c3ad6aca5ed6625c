"""One paper per canonical id, the best data any source has for it, and re-ingest that changes nothing."""

import json

import pytest

from papers.ingest import canonical_id, fetch_and_ingest, ingest_records
from papers.models import FetchRun, Paper
from papers.sources import PaperRecord, get_source
from tests.conftest import fixture_path

pytestmark = pytest.mark.django_db

SHARED_ID = "2609.26811"  # a paper of the real arXiv listing, also given to an HF item below


def hf_variant(tmp_path, upvotes: int = 42):
    """The real HF capture, its first item re-pointed at a paper of the real arXiv listing."""
    items = json.loads(fixture_path("hf_daily_papers_5items.json").read_text())
    paper = items[0]["paper"]
    paper["id"] = SHARED_ID
    paper["summary"] = "Local learning with spectral updates."  # shorter than arXiv's abstract
    paper["upvotes"] = upvotes
    path = tmp_path / f"hf_{upvotes}.json"
    path.write_text(json.dumps(items))
    return path


def merged_view(paper: Paper) -> dict:
    fields = ("title", "abstract", "authors", "url", "categories", "upvotes", "num_comments", "code_url", "published")
    return {name: getattr(paper, name) for name in fields}


@pytest.mark.parametrize("hf_first", [False, True])
def test_a_paper_in_hf_and_arxiv_is_one_row_with_the_best_of_each(tmp_path, hf_first):
    runs = [("arxiv:cs.LG", fixture_path("arxiv_rss2_combined_4items.xml")), ("hf", hf_variant(tmp_path))]
    for spec, path in reversed(runs) if hf_first else runs:
        fetch_and_ingest(spec, path=path)
    paper = Paper.objects.get(canonical_id=SHARED_ID)
    assert paper.upvotes == 42 and paper.num_comments is not None  # signals from HF
    assert paper.categories == ["cs.LG"]  # categories from arXiv
    assert paper.abstract.startswith("Local learning trains each layer")  # the longest abstract
    assert paper.url == f"https://arxiv.org/abs/{SHARED_ID}"  # bibliographic data from arXiv
    assert paper.title == "The Drift Contract: Spectral Updates for Depth-Robust Local Learning"
    assert sorted(paper.sources) == ["arxiv", "hf"]
    assert Paper.objects.filter(arxiv_id=SHARED_ID).count() == 1


def test_merge_result_does_not_depend_on_the_order_sources_arrive(tmp_path):
    order_a = [("arxiv:cs.LG", fixture_path("arxiv_rss2_combined_4items.xml")), ("hf", hf_variant(tmp_path))]
    for spec, path in order_a:
        fetch_and_ingest(spec, path=path)
    view_a = merged_view(Paper.objects.get(canonical_id=SHARED_ID))
    Paper.objects.all().delete()  # the same files again: they give their papers back
    for spec, path in reversed(order_a):
        fetch_and_ingest(spec, path=path)
    assert merged_view(Paper.objects.get(canonical_id=SHARED_ID)) == view_a


def test_alternating_sources_do_not_flip_values_back_and_forth(tmp_path):
    arxiv, hf = fixture_path("arxiv_rss2_combined_4items.xml"), hf_variant(tmp_path)
    fetch_and_ingest("arxiv:cs.LG", path=arxiv)
    fetch_and_ingest("hf", path=hf)
    for spec, path in [("arxiv:cs.LG", arxiv), ("hf", hf)]:
        run = fetch_and_ingest(spec, path=path, force=True)
        assert (run.created, run.updated) == (0, 0), spec


def test_newer_hf_votes_update_the_paper(tmp_path):
    fetch_and_ingest("arxiv:cs.LG", path=fixture_path("arxiv_rss2_combined_4items.xml"))
    fetch_and_ingest("hf", path=hf_variant(tmp_path, upvotes=42))
    run = fetch_and_ingest("hf", path=hf_variant(tmp_path, upvotes=57))
    assert (run.created, run.updated) == (0, 1)
    assert Paper.objects.get(canonical_id=SHARED_ID).upvotes == 57


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("arxiv:cs.LG", "arxiv_rss2_combined_4items.xml"),
        ("arxiv:cs.AI", "arxiv_rss_atom_cs.AI_7items.xml"),
        ("arxiv:hep-ex", "arxiv_rss1_rdf_hep-ex.xml"),
        ("arxiv-api:cat:cs.LG", "arxiv_api_atom_10entries.xml"),
        ("hf", "hf_daily_papers_5items.json"),
        ("json", "seed_papers.json"),
        ("feed:https://journal.example.org/rss", "arxiv_rss2_cs.CL_3items.xml"),
    ],
)
def test_reingesting_the_same_input_creates_and_changes_nothing(spec, name, django_assert_max_num_queries):
    first = fetch_and_ingest(spec, path=fixture_path(name))
    assert first.created > 0
    before = list(Paper.objects.order_by("pk").values())
    again = fetch_and_ingest(spec, path=fixture_path(name))
    assert (again.status, again.fetched, again.created, again.updated) == ("unchanged", first.fetched, 0, 0)
    # Parsed again (as after a forced run): still nothing to write, in a handful of queries whatever the size.
    with django_assert_max_num_queries(12):
        forced = fetch_and_ingest(spec, path=fixture_path(name), force=True)
    assert (forced.fetched, forced.created, forced.updated) == (first.fetched, 0, 0)
    assert list(Paper.objects.order_by("pk").values()) == before


def test_replace_announcements_add_no_paper():
    run = fetch_and_ingest("arxiv:cs.LG", path=fixture_path("arxiv_rss2_combined_4items.xml"))
    assert (run.fetched, run.created, run.skipped, run.errors) == (4, 3, 1, 0)  # a new version is not news
    assert not Paper.objects.filter(canonical_id="2009.13987").exists()


def test_replace_announcements_update_the_papers_we_have(tmp_path):
    listing = fixture_path("arxiv_rss2_combined_4items.xml").read_text()
    earlier = tmp_path / "earlier.xml"  # the listing of the day the paper was new, under its first title
    earlier.write_text(
        listing.replace("<arxiv:announce_type>replace</", "<arxiv:announce_type>new</").replace(
            "Random Polytope Descriptors", "Random Polytopes"
        )
    )
    fetch_and_ingest("arxiv:cs.LG", path=earlier)
    assert Paper.objects.get(canonical_id="2009.13987").title == "Random Polytopes"
    run = fetch_and_ingest("arxiv:cs.LG", path=fixture_path("arxiv_rss2_combined_4items.xml"))
    assert (run.created, run.updated) == (0, 1)
    assert Paper.objects.get(canonical_id="2009.13987").title == "Random Polytope Descriptors"


def test_duplicated_entries_are_merged_counted_and_recorded(tmp_path):
    items = json.loads(fixture_path("hf_daily_papers_3items.json").read_text())
    path = tmp_path / "dup.json"
    path.write_text(json.dumps([*items, items[0]]))
    run = fetch_and_ingest("hf", path=path)
    assert (run.fetched, run.created, run.skipped) == (4, 3, 1)
    assert any("duplicate entry for 2607.26654" in m for m in run.messages)


def test_a_journal_feed_entry_with_the_doi_of_an_arxiv_paper_joins_it(tmp_path):
    fetch_and_ingest("arxiv:cs.LG", path=fixture_path("arxiv_rss2_combined_4items.xml"))
    record = PaperRecord(title="Outlier detection for multi-network data", doi="10.1093/Bioinformatics/btac431")
    counts = ingest_records([record], "feed:https://academic.example.org/bioinformatics.rss")
    assert (counts.created, counts.updated) == (0, 1)
    assert Paper.objects.get(canonical_id="2205.06398").sources == ["arxiv", "feed"]


def test_an_arxiv_entry_and_a_doi_entry_of_one_paper_in_one_input_update_it_once():
    fetch_and_ingest("arxiv:cs.LG", path=fixture_path("arxiv_rss2_combined_4items.xml"))
    records = [
        PaperRecord(title="Outlier Detection for Multi-Network Data", arxiv_id="2205.06398", comment="In print"),
        PaperRecord(title="Outlier detection for multi-network data", doi="10.1093/bioinformatics/btac431"),
    ]
    counts = ingest_records(records, "feed:https://academic.example.org/bioinformatics.rss")
    assert (counts.created, counts.updated) == (0, 1)
    assert Paper.objects.get(canonical_id="2205.06398").comment == "In print"


def test_canonical_ids():
    assert canonical_id(PaperRecord(title="x", arxiv_id="2406.12345v3")) == "2406.12345"
    assert canonical_id(PaperRecord(title="x", url="http://arxiv.org/abs/hep-ex/0101001v2")) == "hep-ex/0101001"
    assert canonical_id(PaperRecord(title="x", doi="10.1000/ABC")) == "doi:10.1000/abc"
    assert canonical_id(PaperRecord(title="x", canonical_id="doi:10.1000/ABC")) == "doi:10.1000/abc"
    same = canonical_id(PaperRecord(title="Attention Is All You Need"))
    assert same.startswith("title:")
    assert canonical_id(PaperRecord(title="  attention is all you need! ")) == same


def test_text_is_stored_clean():
    record = PaperRecord(
        title="<b>Deep</b>  &amp; <script>alert('x')</script>Wide\n Networks",
        abstract="We  show &lt;results&gt; <i>here</i>.",
        authors=["<a href='x'>Ada Lovelace</a>", "  ", "Alan   Turing"],
        url="javascript:alert(1)",
    )
    ingest_records([record], "json")
    paper = Paper.objects.get()
    assert paper.title == "Deep & Wide Networks"
    assert paper.abstract == "We show <results> here."
    assert paper.authors == ["Ada Lovelace", "Alan Turing"]
    assert paper.url == ""


def test_a_record_whose_title_is_only_markup_is_skipped_and_recorded():
    counts = ingest_records([PaperRecord(title="<script>x</script>"), PaperRecord(title="Kept")], "json")
    assert (counts.created, counts.skipped, counts.errors) == (1, 1, 1)
    assert Paper.objects.get().title == "Kept"


def test_every_run_is_recorded():
    fetch_and_ingest("hf", path=fixture_path("hf_daily_papers_5items.json"))
    run = FetchRun.objects.get()
    assert (run.source, run.status, run.fetched, run.created) == ("hf", "ok", 5, 5)
    assert run.finished_at >= run.started_at


def test_sources_recorded_by_kind():
    ingest_records([PaperRecord(title="A paper", arxiv_id="2401.00001")], "arxiv:cs.LG")
    ingest_records([PaperRecord(title="A paper", arxiv_id="2401.00001")], "arxiv:cs.CL")
    assert Paper.objects.get().sources == ["arxiv"]
    assert get_source("arxiv:cs.CL").name == "arxiv:cs.CL"


@pytest.mark.django_db(transaction=True)
def test_two_workers_ingesting_the_same_new_papers_at_once_make_one_row_each(postgres):
    import threading

    from django.db import connection

    from papers.sources import get_source

    records = get_source("hf").parse(fixture_path("hf_daily_papers_5items.json").read_bytes()).records
    barrier = threading.Barrier(2)
    results, failures = [], []

    def worker(source_name: str) -> None:
        barrier.wait()
        try:
            results.append(ingest_records(records, source_name))
        except Exception as exc:  # noqa: BLE001 - the test reports any failure of either worker
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("hf", "json")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert Paper.objects.count() == 5
    assert sorted(r.created for r in results) == [0, 5]  # the second worker merged into the first one's rows
    assert all(sorted(p.sources) == ["hf", "json"] for p in Paper.objects.all())
