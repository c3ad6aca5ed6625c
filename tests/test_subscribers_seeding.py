"""A profile seeded from papers the reader knows: pasted arXiv ids and URLs, a BibTeX file, Zotero's RIS and CSV
exports. Each recognised paper becomes a "more like this"; papers we hold are rated at once, the others after a
look-up through the arXiv API source (its saved answer here). Hostile files get a clear message and change
nothing."""

import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from papers.ingest import fetch_and_ingest
from papers.models import CANDIDATE_WINDOW, Paper, today
from subscribers import seeding, seeds
from subscribers.models import Rating, Subscriber
from subscribers.seeds import MAX_SEED_FILE_BYTES, MAX_SEED_PAPERS, SeedError
from subscribers.tokens import Purpose, make_token
from tests.conftest import fixture_path

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-11-28T07:00:00+00:00")]
HELD = ["2606.13677", "2606.13591", "2606.13568", "2606.13515", "2606.13501"]  # arxiv_api_atom_5entries.xml


def test_bibtex_reads_eprint_journal_doi_and_url_fields_and_counts_entries_without_an_id():
    found = seeds.parse(fixture_path("seed_library.bib").read_text())
    assert found.ids == ["2606.13677", "2606.13591", "2606.13568", "2606.13515", "hep-th/9711200"]
    assert (found.entries, found.without_id) == (7, 2)  # @string and @comment are not entries
    assert found.summary() == "5 papers recognised; 2 of 7 entries had no arXiv id"


def test_zotero_ris_and_csv_exports_are_read():
    ris = seeds.parse(fixture_path("seed_zotero.ris").read_text())
    assert ris.ids == ["2606.13677", "2606.13515", "cond-mat/9901001"]
    assert (ris.entries, ris.without_id) == (4, 1)
    csv = seeds.parse(fixture_path("seed_zotero.csv").read_text())
    assert csv.ids == ["2606.13677", "2606.13568"]
    assert csv.summary() == "2 papers recognised; 1 of 3 entries had no arXiv id"


def test_pasted_ids_and_urls_of_every_style():
    pasted = """2401.12345
    2401.12346v3
    https://arxiv.org/abs/2401.12347v2
    https://arxiv.org/pdf/2401.12348
    arXiv:2401.12349, hep-th/9901001
    http://arxiv.org/abs/math.GT/0309136
    Attention is all you need
    2401.12345
    """
    found = seeds.parse(pasted)
    assert found.ids == [
        "2401.12345",
        "2401.12346",
        "2401.12347",
        "2401.12348",
        "2401.12349",
        "hep-th/9901001",
        "math.GT/0309136",
    ]
    assert (found.entries, found.without_id) == (8, 1)


def test_a_journal_doi_or_a_publisher_url_is_not_taken_for_an_arxiv_id():
    bib = "@article{x, doi = {10.1016/j.2020.12345}, url = {https://example.org/2401.12345}, pages = {2401.12345}}"
    assert seeds.parse(bib).ids == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"@misc{a, eprint={2401.12345}}\n" + b"%" * MAX_SEED_FILE_BYTES, "larger than 2 MB"),
        ("@misc{a, title={Caf\u00e9}, eprint={2401.12345}}".encode("latin-1"), "isn't UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "isn't UTF-8"),
        (b"PK\x03\x04\x00\x00", "isn't text"),
        (b"just some notes\nno papers here\n", "None of the 2 entries had an arXiv id"),
        (b"", "found no papers"),
    ],
)
def test_hostile_uploads_are_refused_with_a_clear_message(data, message):
    with pytest.raises(SeedError, match=message):
        seeds.read_upload(data)


def test_more_papers_than_the_ranking_reads_are_refused():
    pasted = "\n".join(f"2401.{n:05d}" for n in range(MAX_SEED_PAPERS + 1))
    with pytest.raises(SeedError, match=f"at most {MAX_SEED_PAPERS}"):
        seeds.checked(seeds.parse(pasted))


@pytest.fixture
def ada():
    fetch_and_ingest("arxiv-api:" + ",".join(HELD), path=fixture_path("arxiv_api_atom_5entries.xml"))
    return Subscriber.objects.create(email="ada@example.com", status="active", interests="agents")


def liked(subscriber: Subscriber) -> set[str]:
    return set(
        Rating.objects.filter(subscriber=subscriber, value=Rating.MORE).values_list("paper__arxiv_id", flat=True)
    )


def test_an_uploaded_bibtex_library_likes_the_papers_we_hold_at_once_and_says_what_it_found(client, ada):
    token = make_token(ada.pk, Purpose.PREFERENCES)
    upload = SimpleUploadedFile("library.bib", fixture_path("seed_library.bib").read_bytes())
    page = client.post(f"/preferences/{token}/seed/", {"seed_file": upload})
    assert page.status_code == 200
    text = page.content.decode()
    assert "5 papers recognised; 2 of 7 entries had no arXiv id; 1 is being looked up on arXiv" in text
    assert liked(ada) == {"2606.13677", "2606.13591", "2606.13568", "2606.13515"}
    # Only ids are read from the file: its titles (and the script in one) are stored nowhere.
    assert not Paper.objects.filter(title__icontains="script").exists()
    assert "<script>alert" not in text


def test_a_rating_the_reader_gave_is_not_overwritten_by_a_seed(client, ada):
    paper = Paper.objects.get(arxiv_id="2606.13677")
    Rating.objects.create(subscriber=ada, paper=paper, value=Rating.LESS)
    client.post(f"/preferences/{make_token(ada.pk, Purpose.PREFERENCES)}/seed/", {"seed_papers": "2606.13677"})
    assert Rating.objects.get(subscriber=ada, paper=paper).value == Rating.LESS


def test_papers_we_dont_hold_are_looked_up_on_arxiv_and_liked_but_are_not_todays_news(ada):
    missing = seeding.rate_known(ada.pk, ["2606.13677", "1509.01687", "q-bio/0509018", "2699.99999"])
    assert missing == ["1509.01687", "q-bio/0509018", "2699.99999"]
    rated = seeding.fetch_and_rate(ada.pk, missing, path=fixture_path("arxiv_api_atom_10entries.xml"))
    assert rated == 2  # arXiv does not know 2699.99999
    assert liked(ada) == {"2606.13677", "1509.01687", "q-bio/0509018"}
    looked_up = Paper.objects.get(arxiv_id="1509.01687")
    assert looked_up.listed == today() - CANDIDATE_WINDOW
    assert not Paper.objects.news_on(today()).filter(arxiv_id__in=missing).exists()
    assert seeding.fetch_and_rate(ada.pk, missing, path=fixture_path("arxiv_api_atom_10entries.xml")) == 2
    assert Rating.objects.filter(subscriber=ada).count() == 3  # run again: nothing rated twice


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("huge.bib", b"@misc{a, eprint={2401.12345}}\n" + b" " * (10 * 1024 * 1024), "larger than 2 MB"),
        ("latin1.bib", "@misc{a, title={Caf\u00e9}, eprint={2606.13677}}".encode("latin-1"), "isn't UTF-8"),
        ("export.csv", b"\x00\x01\x02garbage", "isn't text"),
    ],
)
def test_hostile_files_on_the_preferences_page_get_a_form_error_and_store_nothing(client, ada, name, data, message):
    token = make_token(ada.pk, Purpose.PREFERENCES)
    page = client.post(f"/preferences/{token}/seed/", {"seed_file": SimpleUploadedFile(name, data)})
    assert page.status_code == 400
    assert message in html.unescape(page.content.decode())
    assert not Rating.objects.filter(subscriber=ada).exists()
    Subscriber.objects.get(pk=ada.pk)  # still there, unchanged


def test_the_seed_form_needs_the_readers_preferences_link(client, ada):
    other = make_token(ada.pk, Purpose.UNSUBSCRIBE)
    assert client.post(f"/preferences/{other}/seed/", {"seed_papers": "2606.13677"}).status_code == 404
    assert client.get(f"/preferences/{make_token(ada.pk, Purpose.PREFERENCES)}/seed/").status_code == 405
    assert not Rating.objects.exists()


def test_papers_named_at_sign_up_are_liked_by_the_new_reader(client, ada, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(
            "/subscribe/",
            {"email": "bo@example.com", "frequency": "daily", "seed_papers": "https://arxiv.org/abs/2606.13591v1"},
        )
    assert page.status_code == 200
    bo = Subscriber.objects.get(email="bo@example.com")
    assert liked(bo) == {"2606.13591"}


def test_a_sign_up_for_an_active_address_adds_nothing_to_its_profile(client, ada, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/subscribe/", {"email": "ada@example.com", "frequency": "daily", "seed_papers": "2606.13591"})
    assert not Rating.objects.filter(subscriber=ada).exists()


def test_a_hostile_file_at_sign_up_is_a_form_error_and_signs_nobody_up(client, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("library.bib", "@misc{a, title={Caf\u00e9}}".encode("latin-1"))
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post("/subscribe/", {"email": "cy@example.com", "frequency": "daily", "seed_file": upload})
    assert page.status_code == 400
    assert "isn't UTF-8" in html.unescape(page.content.decode())
    assert not Subscriber.objects.filter(email="cy@example.com").exists()
