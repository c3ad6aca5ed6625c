"""The digest email as a reader's mail client sees it: both parts, headers, links, LaTeX, size, safety."""

import re
from datetime import date
from html.parser import HTMLParser

import pytest

from newsletter.emails import cards, render, textfmt
from newsletter.models import Digest
from papers.models import Paper
from papers.ranking import Pick
from papers.sources import get_source
from papers.text import arxiv_id_from
from subscribers.models import Subscriber
from subscribers.tokens import Purpose, read_token
from tests.helpers import parts, read_outbox
from tests.render_data import FIXTURE_SOURCES, FIXTURES, fresh_render_caches_fixture, papers_fixture  # noqa: F401 - fixtures

DAY = date(2026, 11, 28)
SITE = "http://127.0.0.1:8000"


pytestmark = [pytest.mark.usefixtures("fresh_render_caches"), pytest.mark.clock("2026-11-28T07:00:00+00:00")]


@pytest.fixture
def digest(db) -> Digest:
    return Digest.objects.create(date=DAY, status=Digest.Status.SENDING)


@pytest.fixture
def reader(db) -> Subscriber:
    return Subscriber.objects.create(email="ada@example.com", status=Subscriber.Status.ACTIVE, interests="agents")


def send(digest, reader, trending, picks, **kwargs):
    message = render.digest_email(digest, reader, trending, picks, **kwargs)
    message.send()
    return message


def received(outbox):
    (message,) = read_outbox(outbox)
    return message, *parts(message)


class Links(HTMLParser):
    """Every URL-carrying attribute, every attribute name and every tag of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.attributes: set[str] = set()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            self.attributes.add(name)
            if name in {"href", "src", "action", "background", "formaction", "poster"}:
                self.urls.append(value or "")


def links_of(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


def test_a_digest_has_both_parts_the_list_headers_and_working_links(outbox, papers, digest, reader):
    trending, picks = papers[:5], [(Pick(p.pk, 1.0, "matches: agents"), p) for p in papers[5:8]]
    sent = send(digest, reader, trending, picks)
    message, text, html = received(outbox)

    assert message["Message-ID"] == sent.extra_headers["Message-ID"]
    subject = " ".join(message["Subject"].split())
    assert subject == f"Daily Papers, Nov 28: {trending[0].title}"
    assert message["List-Id"] == "Daily Papers <daily-papers.127.0.0.1>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = "".join(message["List-Unsubscribe"].split())
    unsubscribe = re.fullmatch(r"<(http://127\.0\.0\.1:8000/unsubscribe/([^/]+)/)>", header)
    assert unsubscribe and read_token(unsubscribe.group(2), Purpose.UNSUBSCRIBE) == reader.pk
    preferences = re.search(r"http://127\.0\.0\.1:8000/preferences/([^/\s\"]+)/", html)
    assert preferences and read_token(preferences.group(1), Purpose.PREFERENCES) == reader.pk

    archive = f"{SITE}/digests/2026-11-28/"
    for part in (text, html):
        assert unsubscribe.group(1) in part and preferences.group(0) in part and archive in part
        for paper in trending + [p for _, p in picks]:
            assert paper.title in part  # the full title, never truncated
    assert "View in browser" in html and f"View in browser: {archive}" in text
    assert "Unsubscribe" in html and f"Unsubscribe: {unsubscribe.group(1)}" in text
    assert "FOR YOU" in text and "TRENDING TODAY" in text and text.index("FOR YOU") < text.index("TRENDING TODAY")
    assert text.count("★ For you: matches: agents") == 3 and html.count("matches: agents") == 3
    # The unsubscribe link comes after every paper: a clipped email would lose it first, so size matters.
    assert html.rindex(unsubscribe.group(1)) > max(html.index(p.title) for p in trending)


def test_each_paper_shows_its_votes_authors_categories_and_links(outbox, papers, digest, reader):
    top = max(papers, key=lambda p: p.upvotes or 0)
    with_code = next(p for p in papers if p.code_url)
    many_authors = next(p for p in papers if len(p.authors) > 5)
    few_authors = next(p for p in papers if 1 < len(p.authors) <= 5)
    categorized = next(p for p in papers if p.categories)
    picks = [(Pick(p.pk, 1.0, "matches: x"), p) for p in (with_code, many_authors, few_authors, categorized)]
    send(digest, reader, [top], picks)
    _, text, html = received(outbox)

    assert f"▲&nbsp;{top.upvotes}" in html and f"▲ {top.upvotes} upvotes" in text
    assert f'href="{with_code.code_url}"' in html and f"Code: {with_code.code_url}" in text
    shown = ", ".join(many_authors.authors[:3]) + f", … and {len(many_authors.authors) - 3} others"
    assert shown in html and shown in text
    assert ", ".join(few_authors.authors[:-1]) + " and " + few_authors.authors[-1] in text
    assert categorized.categories[0] in html and categorized.categories[0] in text
    pdf = categorized.pdf_url or f"https://arxiv.org/pdf/{categorized.arxiv_id}"  # arXiv papers always get one
    assert categorized.arxiv_id and f'href="{pdf}"' in html and f"PDF: {pdf}" in text
    for paper in (top, with_code):
        assert f'href="{paper.url}"' in html and f"Read: {paper.url}" in text


def test_a_long_abstract_is_cut_at_a_sentence_with_a_more_link_and_an_ai_summary_wins(outbox, papers, digest, reader):
    long = next(p for p in papers if len(p.abstract) > 1200 and p.url and "$" not in p.abstract)
    summarized = next(p for p in papers if p.abstract and p is not long)
    summarized.ai_summary = "A short machine summary of the paper."
    summarized.save()
    send(digest, reader, [long, summarized], [])
    _, text, html = received(outbox)

    preview, cut = textfmt.cut_abstract(textfmt.display_text(long.abstract))
    assert cut and preview.endswith(".") and len(preview) < 500
    assert preview in html and long.abstract[len(preview) + 50 :][:80] not in html
    assert f'<a class="more" href="{long.url}"' in html
    assert "A short machine summary of the paper." in html and "AI summary: A short machine summary" in text
    assert summarized.abstract[:60] not in html


def raw_fixture_texts() -> dict[str, tuple[str, str]]:
    """Titles and abstracts as the captures hold them, LaTeX and all: {arXiv id: (title, abstract)}."""
    texts = {}
    for spec, name in FIXTURE_SOURCES:
        for record in get_source(spec).parse((FIXTURES / name).read_bytes()).records:
            if record.arxiv_id and re.search(r"\$|\\[A-Za-z]", record.title + record.abstract):
                texts[arxiv_id_from(record.arxiv_id)] = (record.title, record.abstract)
    return texts


def test_latex_in_real_abstracts_and_titles_reads_as_unicode_in_both_parts(outbox, papers, digest, reader):
    raw = raw_fixture_texts()
    assert len(raw) >= 3  # the hep-ex titles and the \textbf{} abstracts of the arXiv captures
    with_latex = [p for p in papers if p.canonical_id in raw]
    # Ingest stores them as readers read them...
    for paper in with_latex:
        assert not re.search(r"\\[A-Za-z]+", paper.title + paper.abstract), paper.canonical_id
    # ...and rendering reads raw LaTeX on its own too: put the captured text back and send it.
    for paper in with_latex:
        paper.title, paper.abstract = raw[paper.canonical_id]
    send(digest, reader, [], [(Pick(p.pk, 1.0, ""), p) for p in with_latex])
    _, text, html = received(outbox)

    hep = next(p for p in with_latex if "Omega" in p.title)
    assert "Ω_c⁰" in textfmt.display_text(hep.title)
    for part in (text, html):
        assert "Ω_c⁰ baryons" in part and "\\Omega" not in part and "\\textbf" not in part
        assert not re.search(r"\\[A-Za-z]+", part), "a LaTeX macro reached the email"
    for paper in with_latex:  # the whole abstract, not only the preview that made it into the email
        shown = textfmt.display_text(paper.abstract)
        assert not re.search(r"\\[A-Za-z]+|[{}]", shown), shown


@pytest.mark.parametrize(
    ("latex", "unicode"),
    [
        (r"runs in $\mathcal{O}(n^2)$ time", "runs in 𝒪(n²) time"),
        (r"an \emph{important} and \textbf{bold} claim", "an important and bold claim"),
        (r"with $\alpha$ and $\beta_{1}$", "with α and β₁"),
        (r"up to 6.01$\times$ faster, 95% of cases and 11\% more", "up to 6.01× faster, 95% of cases and 11% more"),
        (r"a na\"{\i}ve baseline (\eg a model copy) and T\"ULU", "a naïve baseline (e.g. a model copy) and TÜLU"),
        (r"the proposed \OM has", "the proposed OM has"),
        ("costs over $800 per sample, or $5 a day", "costs over $800 per sample, or $5 a day"),
        ("testing costs over $800 per sample.", "testing costs over $800 per sample."),
        (r"it costs $5 and $\beta$ is small", "it costs $5 and β is small"),
        (r"price is $3.50, and $\alpha=2$", "price is $3.50, and α=2"),
        ("we pay $5 per hour and $10 per day", "we pay $5 per hour and $10 per day"),
        (r"$5$ heads and $2 \times 3$ grids", "5 heads and 2 × 3 grids"),
        (r"$x$ then $y_2$", "x then y₂"),
        ("no LaTeX at all", "no LaTeX at all"),
    ],
)
def test_latex_to_unicode(latex, unicode):
    assert textfmt.display_text(latex) == unicode


HOSTILE_TITLE = (
    '<script>alert(1)</script>Robust <b onmouseover="alert(2)">Learning</b> <a href="javascript:alert(3)">x</a>'
)
HOSTILE_ABSTRACT = (
    "We study <img src=x onerror=alert(4)> attacks. <style>body{display:none}</style>See javascript:alert(5) "
    "and &lt;script&gt;alert(6)&lt;/script&gt; and &amp;lt;iframe src=x&amp;gt; too. "
    "Broken <a href='javascript:alert(7)'"
)
# None of these may reach either part of the email, not even as escaped text.
FORBIDDEN = (
    *("<script", "&lt;script", "script&gt;", "javascript:", "vbscript:", "data:text", "<iframe", "&lt;iframe"),
    *("onerror", "onmouseover", "onclick", "onload", "onfocus", "<svg", "&lt;svg", "display:none}"),
    *("alert(1)", "alert(2)", "alert(6)", "alert(8)", "alert(14)", "alert(17)"),
)


def test_hostile_titles_abstracts_links_reasons_and_notes_never_reach_the_email(outbox, db, digest, reader):
    paper = Paper.objects.create(
        canonical_id="hostile",
        title=HOSTILE_TITLE,
        abstract=HOSTILE_ABSTRACT,
        authors=["<script>alert(8)</script>Eve", "Mallory onclick=alert(9)"],
        categories=["cs.CR<svg onload=alert(10)>"],
        url="javascript:alert(11)",
        pdf_url="data:text/html;base64,PHNjcmlwdD4=",
        code_url='https://example.org/code" onmouseover="alert(12)',
        project_url="  vbscript:msgbox(13)",
        ai_summary="",
    )
    digest.editor_note = "Hi <script>alert(14)</script> [click](javascript:alert(15)) <img src=x onerror=alert(16)>"
    digest.save()
    send(digest, reader, [paper], [(Pick(paper.pk, 1.0, "<script>alert(17)</script>matches: x onfocus=y"), paper)])
    _, text, html = received(outbox)

    for part in (text, html):
        lowered = part.lower()
        for needle in FORBIDDEN:
            assert needle not in lowered, f"{needle!r} reached the email"
        assert "Robust Learning" in part and "Eve" in part
    page = links_of(html)
    assert page.urls and all(url.startswith(("https://", "http://")) for url in page.urls)
    assert not [name for name in page.attributes if name.startswith("on")]
    assert not {"script", "iframe", "object", "embed", "svg", "img", "form"} & set(page.tags)
    assert page.tags.count("style") == 1  # ours: the dark-mode and phone rules
    # A paper with no safe URL and no arXiv id links to the day's archive page instead.
    assert f'href="{SITE}/digests/2026-11-28/"' in html and f"Read: {SITE}/digests/2026-11-28/" in text


def test_the_editor_note_opens_the_digest_as_safe_markdown(outbox, papers, digest, reader):
    digest.editor_note = "**Welcome** to the *first* issue.\n\n- Read [the guide](https://example.org/guide)\n- Reply"
    digest.save()
    send(digest, reader, papers[:2], [])
    _, text, html = received(outbox)

    assert "<strong" in html and ">Welcome</strong>" in html and 'href="https://example.org/guide"' in html
    assert html.index("Welcome") < html.index('class="card"')
    assert "Welcome to the first issue." in text and "- Read the guide (https://example.org/guide)" in text
    assert text.index("Welcome") < text.index(papers[0].title)


def test_the_html_is_built_for_mail_clients(outbox, papers, digest, reader):
    send(digest, reader, papers[:5], [(Pick(p.pk, 1.0, "matches: x"), p) for p in papers[5:15]])
    _, text, html = received(outbox)

    assert '<meta name="color-scheme" content="light dark">' in html
    style = re.search(r"<style>(.*?)</style>", html, re.DOTALL).group(1)
    assert "prefers-color-scheme: dark" in style and "max-width: 480px" in style and "!important" in style
    assert "<!--[if mso]>" in html and 'role="presentation"' in html
    # CSS is inlined: every card and title carries its own style attribute.
    assert re.search(r'<td class="card"[^>]* style="[^"]*padding:', html)
    assert html.count('class="card"') == 15
    assert max(len(line.encode()) for line in html.splitlines()) <= 998  # RFC 5322, sent as 8-bit text
    assert max(len(line.encode()) for line in text.splitlines()) <= 998


def test_the_largest_realistic_digest_stays_under_gmails_clip_limit(outbox, papers, digest, reader):
    # Every fixture paper (the 79-paper seed corpus and the feed captures) as "For you" picks.
    trending, candidates = papers[:5], papers[5:]
    assert len(candidates) >= 79
    reasons = ["matches: reinforcement learning, diffusion models, speech", "matches: cs.CL", "author: A. Person"]
    picks = [(Pick(p.pk, 1.0, reasons[i % 3]), p) for i, p in enumerate(candidates)]
    send(digest, reader, trending, picks)
    message, text, html = received(outbox)

    assert len(html.encode()) <= render.MAX_HTML_BYTES < 102 * 1024  # the .eml's own bytes, CRLF line ends
    assert html.rstrip().endswith("</html>")
    unsubscribe = "".join(message["List-Unsubscribe"].split()).strip("<>")
    assert html.index(unsubscribe) > html.rindex('class="card"')
    shown = [p for p in candidates if textfmt.display_text(p.title) in html]
    assert 10 < len(shown) < len(candidates)  # papers were dropped only because summaries were not enough
    assert 'class="summary"' not in html  # ... every summary went first
    assert shown == candidates[: len(shown)]  # and the best picks stayed
    assert all(textfmt.display_text(p.title) in text for p in shown) and unsubscribe in text


def test_summaries_go_before_papers_trending_first_then_the_last_picks(outbox, papers, digest, reader):
    trending, picks = papers[:5], [(Pick(p.pk, 1.0, "matches: x"), p) for p in papers[5:15]]
    full = render.render_digest(digest, reader, trending, picks)[0].html
    limit = cards.wire_size(full) - 2500
    send(digest, reader, trending, picks, max_html_bytes=limit)
    _, _, html = received(outbox)

    assert len(html.encode()) <= limit
    assert all(p.title in html for p in trending + [p for _, p in picks])  # no paper dropped
    shown_cards = html.split('class="card"')[1:]
    for_you, trending_cards = shown_cards[:10], shown_cards[10:]
    assert not any('class="summary"' in card for card in trending_cards)
    assert 'class="summary"' in for_you[0] and 'class="summary"' not in for_you[-1]


def test_fit_to_size_keeps_every_paper_when_it_fits(papers, digest, reader):
    parts_ = render.digest_parts(digest, papers[:5])
    items = [cards.for_you_item(p, "r", parts_.archive_url) for p in papers[5:9]]
    shown, compact, estimate = render.fit_to_size(parts_, items, render.MAX_HTML_BYTES)
    assert shown == items and not compact and not any(item.compact for item in shown)
    html = render.render_digest(digest, reader, papers[:5], [(Pick(p.pk, 1, "r"), p) for p in papers[5:9]])[0].html
    assert len(html.encode()) <= estimate  # the estimate is an upper bound


@pytest.mark.parametrize(
    ("authors", "shown"),
    [
        ([], ""),
        (["Ada Lovelace"], "Ada Lovelace"),
        (["A", "B"], "A and B"),
        (["A", "B", "C", "D", "E"], "A, B, C, D and E"),
        ([*"ABCDEF"], "A, B, C, … and 3 others"),
        ([f"Author {i}" for i in range(15)], "Author 0, Author 1, Author 2, … and 12 others"),
    ],
)
def test_author_lists_are_shortened_past_five(authors, shown):
    assert textfmt.shorten_authors(authors) == shown


def test_abstracts_are_cut_at_a_sentence_boundary_not_inside_abbreviations_or_numbers():
    text = "We use e.g. large models with 3.5 billion parameters. " * 3 + "The rest is detail. " * 30
    preview, cut = textfmt.cut_abstract(text)
    assert cut and text.startswith(preview) and len(preview) <= 320
    assert preview.endswith(("parameters.", "detail.")) and preview.count("3.5 billion") == 3
    one_long_sentence = "word " * 200
    preview, cut = textfmt.cut_abstract(one_long_sentence.strip())
    assert cut and preview.endswith("word…") and len(preview) <= 321
    assert textfmt.cut_abstract("Short.") == ("Short.", False)


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://arxiv.org/abs/2401.00001", True),
        ("http://example.org/a?b=c", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        ("data:text/html,x", False),
        ("//evil.example/x", False),
        ("https://", False),
        ('https://x.org/" onmouseover="y', False),
        ("https://x.org/a b", False),
        ("ftp://x.org/file", False),
        ("", False),
    ],
)
def test_only_http_links_are_links(url, safe):
    assert bool(textfmt.safe_url(url)) is safe


def test_cards_shortened_for_one_reader_stay_whole_for_the_next(papers, digest, reader):
    """Readers share cached "For you" cards; fitting one reader's digest to a smaller size must not shorten
    the cards everyone else gets."""
    picks = [(Pick(p.pk, 1, "matches: agents"), p) for p in papers[5:15]]
    whole, context = render.render_digest(digest, reader, papers[:5], picks)
    assert not any(item.compact for item in context["for_you"])
    _, tight = render.render_digest(digest, reader, papers[:5], picks, max_html_bytes=len(whole.html.encode()) * 3 // 4)
    assert any(item.compact for item in tight["for_you"])
    again, context = render.render_digest(digest, reader, papers[:5], picks)
    assert not any(item.compact for item in context["for_you"])
    assert again.html.replace(context["unsubscribe_url"], "") == whole.html.replace(context["unsubscribe_url"], "")
