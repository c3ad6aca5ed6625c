"""The web archive: past digests as pages (the emails' "view in browser" link) and as an Atom feed; the front
page, which shows the latest digest's top papers beside the sign-up form."""

from datetime import UTC, date, datetime, time

from django.contrib.syndication.views import Feed
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET

from newsletter.emails import textfmt
from newsletter.emails.cards import PaperView, paper_view
from newsletter.emails.templates import archive_path, site_link
from newsletter.models import Digest
from subscribers.forms import SignUpForm

# Digests readers have been sent (or are being sent): drafts, cancelled and skipped days are not news.
PUBLISHED = (Digest.Status.SENDING, Digest.Status.SENT)
ARCHIVE_PAGE_SIZE = 30  # a month of digests per page
FEED_ITEMS = 30  # feed readers poll daily; a month covers any reader that was away
SAMPLE_PAPERS = 5  # enough of the latest digest on the front page to show what one looks like


def published_digests() -> QuerySet[Digest]:
    return Digest.objects.filter(status__in=PUBLISHED).order_by("-date")


def trending_views(digest: Digest) -> list[PaperView]:
    fallback = site_link(archive_path(digest.date))
    return [paper_view(item.paper, fallback) for item in digest.items.select_related("paper").order_by("position")]


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    latest = published_digests().first()
    papers = trending_views(latest)[:SAMPLE_PAPERS] if latest else []
    context = {"form": SignUpForm(), "latest": latest, "papers": papers, "error": ""}
    return render(request, "site/landing.html", context)


def date_label(day: date) -> str:
    return f"{day:%A, %B} {day.day}, {day:%Y}"


def digest_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(published_digests().prefetch_related("items__paper"), ARCHIVE_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = []
    for digest in page:
        items = sorted(digest.items.all(), key=lambda item: item.position)
        top = textfmt.display_text(items[0].paper.title) if items else ""
        rows.append({"digest": digest, "label": date_label(digest.date), "top": top, "count": len(items)})
    return render(request, "site/archive_list.html", {"page": page, "rows": rows})


def digest_day(request: HttpRequest, day: str) -> HttpResponse:
    try:
        the_day = date.fromisoformat(day)
    except ValueError:
        raise Http404("no such day") from None
    digest = published_digests().filter(date=the_day).first()
    if digest is None:
        raise Http404("no digest was sent that day")
    context = {
        "digest": digest,
        "label": date_label(digest.date),
        "papers": trending_views(digest),
        "note_html": _note(digest),
        "previous": published_digests().filter(date__lt=digest.date).first(),
        "next": published_digests().filter(date__gt=digest.date).order_by("date").first(),
    }
    return render(request, "site/archive_day.html", context)


def _note(digest: Digest) -> SafeString:
    # nh3 kept only text formatting, lists and http(s) links of the editor's Markdown.
    return mark_safe(textfmt.note_html(digest.editor_note))  # noqa: S308


class DigestFeed(Feed):
    """/digests/feed.xml: one entry per digest, its trending papers as the entry's content."""

    feed_type = Atom1Feed
    title = "Daily Papers"
    subtitle = "The research papers the community is talking about, every day."
    description_template = "site/archive_feed_item.html"

    def link(self) -> str:
        return reverse("archive")

    def items(self) -> list[Digest]:
        return list(published_digests()[:FEED_ITEMS])

    def item_title(self, item: Digest) -> str:
        views = trending_views(item)
        return f"{date_label(item.date)}: {views[0].title}" if views else date_label(item.date)

    def item_link(self, item: Digest) -> str:
        return archive_path(item.date)

    def item_pubdate(self, item: Digest) -> datetime:
        return item.sent_at or item.send_started_at or datetime.combine(item.date, time.min, tzinfo=UTC)

    def item_updateddate(self, item: Digest) -> datetime:
        return self.item_pubdate(item)

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        context["papers"] = trending_views(kwargs["item"])
        context["note_html"] = _note(kwargs["item"])
        return context
