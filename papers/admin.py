"""The paper moderation queue: today's candidates by trending score; approve, reject, pin, feature, merge."""

from collections import Counter
from datetime import date, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import models
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from papers import moderation
from papers.models import CANDIDATE_WINDOW, FetchRun, Moderation, Paper, day_end, today
from papers.ranking import trending_score

# Most papers ranked in one queue page load: a day brings a few hundred; past this the newest are ranked.
QUEUE_RANKED_MAX = 2000
CATEGORY_CHOICES_MAX = 25
# What papers.ranking.trending_score reads: the queue loads only these for the day's papers.
SCORE_FIELDS = ("pk", "upvotes", "num_comments", "github_stars", "listed", "featured", "moderation", "pinned")
CATEGORY_LOOKBACK = timedelta(days=30)


def in_queue(paper: Paper, day: date) -> bool:
    """Whether the paper is one of the day's candidates by its listing day (Paper.objects.news_on)."""
    return day - CANDIDATE_WINDOW < paper.listed <= day


def _is_changelist(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    return bool(match) and match.url_name == "papers_paper_changelist"


class QueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("today", "Today's candidates"), ("all", "All papers")]

    def value(self) -> str:
        # A search reaches every paper; otherwise the queue opens on today's candidates.
        return super().value() or ("all" if self.used_search else "today")

    def __init__(self, request, params, model, model_admin) -> None:
        self.used_search = bool(request.GET.get("q"))
        super().__init__(request, params, model, model_admin)

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "today":
            return queryset.news_on(today())
        return queryset


class SourceFilter(admin.SimpleListFilter):
    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        from papers.sources import SOURCE_KINDS

        return [(kind, kind) for kind in sorted({*SOURCE_KINDS, "arxiv-api"})]

    def queryset(self, request, queryset):
        # `sources` is a JSON list of kinds; the quoted kind matches one element exactly.
        return queryset.filter(sources__icontains=f'"{self.value()}"') if self.value() else queryset


class CategoryFilter(admin.SimpleListFilter):
    title = "category"
    parameter_name = "category"

    def lookups(self, request, model_admin):
        # The most common categories of the last month's papers; a paper lists several (cross-lists).
        recent = Paper.objects.filter(listed__gte=today() - CATEGORY_LOOKBACK).values_list("categories", flat=True)
        counts = Counter(c for categories in recent.iterator() for c in categories)
        return [(c, c) for c, _ in sorted(counts.most_common(CATEGORY_CHOICES_MAX))]

    def queryset(self, request, queryset):
        return queryset.filter(categories__icontains=f'"{self.value()}"') if self.value() else queryset


class RejectForm(forms.Form):
    reason = forms.CharField(max_length=moderation.REJECTION_REASON_MAX, widget=forms.TextInput(attrs={"size": 80}))


class MergeForm(forms.Form):
    keep = forms.ModelChoiceField(queryset=Paper.objects.none(), widget=forms.RadioSelect, empty_label=None)

    def __init__(self, *args, papers: QuerySet, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["keep"].queryset = papers


class AddFromArxivForm(forms.Form):
    reference = forms.CharField(
        label="arXiv id or URL", max_length=300, widget=forms.TextInput(attrs={"size": 60, "autofocus": True})
    )


def _intermediate(modeladmin, request, queryset, template: str, form, title: str, action: str) -> TemplateResponse:
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "papers": queryset,
        "form": form,
        "action": action,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, template, context)


@admin.register(Paper)
class PaperAdmin(admin.ModelAdmin):
    list_display = (
        "rank",
        "paper",
        "origin",
        "upvotes",
        "moderation_state",
        "pinned",
        "featured",
        "seen",
    )
    list_display_links = ("paper",)
    list_filter = (
        QueueFilter,
        "moderation",
        SourceFilter,
        CategoryFilter,
        ("listed", admin.DateFieldListFilter),
        "pinned",
        "featured",
    )
    search_fields = ("canonical_id", "arxiv_id", "title", "abstract", "authors")
    list_per_page = 50
    actions = ["approve", "reject", "pin", "unpin", "feature", "unfeature", "merge"]
    exclude = ("embedding",)
    readonly_fields = ("canonical_id", "sources", "listed", "first_seen", "updated_at", "trending")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # Django 6's default, chosen now

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        # The queue's rank is an annotation of this admin's own queryset only (not a field the checks accept).
        if _is_changelist(request):
            return ("queue_rank", "-first_seen")
        return ("-first_seen",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        if not _is_changelist(request):
            return super().get_queryset(request)
        day = today()
        window = list(Paper.objects.news_on(day).only(*SCORE_FIELDS).order_by("-first_seen")[:QUEUE_RANKED_MAX])
        # Pinned first, and scored as the day's digest scores them.
        ranked = sorted(window, key=lambda p: (not p.pinned, -trending_score(p, day_end(day)), p.pk))
        whens = [When(pk=p.pk, then=Value(i)) for i, p in enumerate(ranked)]
        rank = Case(*whens, default=Value(len(ranked)), output_field=IntegerField()) if whens else Value(0)
        # Annotated before ordering: ModelAdmin.get_queryset would order by the rank before it exists.
        return self.model._default_manager.annotate(queue_rank=rank).order_by(*self.get_ordering(request))

    @admin.display(description="#", ordering="queue_rank")
    def rank(self, paper: Paper) -> str:
        return f"{paper.queue_rank + 1}" if self._in_window(paper) and hasattr(paper, "queue_rank") else "–"

    def _in_window(self, paper: Paper) -> bool:
        return in_queue(paper, today())

    @admin.display(description="paper", ordering="title")
    def paper(self, paper: Paper) -> str:
        authors = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
        return format_html(
            '<strong>{}</strong><br><span class="quiet">{} · {} · score {}</span>',
            paper.title,
            paper.canonical_id,
            authors or "no authors",
            f"{trending_score(paper, day_end(today())):.2f}",
        )

    @admin.display(description="sources · categories")
    def origin(self, paper: Paper) -> str:
        categories = ", ".join(paper.categories[:3]) or paper.primary_category
        return format_html("{}<br><small>{}</small>", ", ".join(paper.sources), categories)

    @admin.display(description="listed · seen", ordering="listed")
    def seen(self, paper: Paper) -> str:
        return format_html(
            "{}<br><small>seen {}</small>",
            f"{paper.listed:%b %d}",
            f"{timezone.localtime(paper.first_seen):%b %d %H:%M}",
        )

    @admin.display(description="moderation", ordering="moderation")
    def moderation_state(self, paper: Paper) -> str:
        colors = {Moderation.APPROVED: "#2e7d32", Moderation.REJECTED: "#c62828", Moderation.PENDING: "#8a6d00"}
        return format_html(
            '<span style="color:{}">{}</span>{}',
            colors[paper.moderation],
            paper.get_moderation_display(),
            format_html("<br><small>{}</small>", paper.rejection_reason) if paper.rejection_reason else "",
        )

    @admin.display(description="trending score")
    def trending(self, paper: Paper) -> str:
        return f"{trending_score(paper, day_end(today())):.3f}"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The same actions as the queue, one click away on the paper's own page.
        paper = self.get_object(request, object_id)
        actions = [
            ("approve", "Approve"),
            ("reject", "Reject…"),
            ("unpin", "Unpin") if paper and paper.pinned else ("pin", "Pin"),
            ("unfeature", "Unfeature") if paper and paper.featured else ("feature", "Feature"),
        ]
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "paper_actions": actions})

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if change and form.changed_data:
            moderation.decided(request.user, "edit", [obj], "changed " + ", ".join(form.changed_data))

    def _done(self, request: HttpRequest, count: int, verb: str) -> None:
        self.message_user(request, f"{count} paper{'s' if count != 1 else ''} {verb}.", messages.SUCCESS)

    @admin.action(description="Approve selected papers", permissions=["change"])
    def approve(self, request, queryset) -> None:
        self._done(request, moderation.approve(queryset, request.user), "approved")

    @admin.action(description="Reject selected papers (with a reason)…", permissions=["change"])
    def reject(self, request, queryset) -> HttpResponse | None:
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            self._done(request, moderation.reject(queryset, form.cleaned_data["reason"], request.user), "rejected")
            return None
        return _intermediate(self, request, queryset, "admin/papers/paper/reject.html", form, "Reject papers", "reject")

    @admin.action(description="Pin selected papers to the top", permissions=["change"])
    def pin(self, request, queryset) -> None:
        self._done(request, moderation.pin(queryset, request.user), "pinned")

    @admin.action(description="Unpin selected papers", permissions=["change"])
    def unpin(self, request, queryset) -> None:
        self._done(request, moderation.pin(queryset, request.user, pinned=False), "unpinned")

    @admin.action(description="Feature selected papers", permissions=["change"])
    def feature(self, request, queryset) -> None:
        self._done(request, moderation.feature(queryset, request.user), "featured")

    @admin.action(description="Stop featuring selected papers", permissions=["change"])
    def unfeature(self, request, queryset) -> None:
        self._done(request, moderation.feature(queryset, request.user, featured=False), "no longer featured")

    @admin.action(description="Merge selected duplicates…", permissions=["change"])
    def merge(self, request, queryset) -> HttpResponse | None:
        if queryset.count() < 2:
            self.message_user(request, "Select at least two papers to merge.", messages.ERROR)
            return None
        form = MergeForm(request.POST if "apply" in request.POST else None, papers=queryset)
        if form.is_valid():
            keep = form.cleaned_data["keep"]
            moderation.merge(keep, queryset.exclude(pk=keep.pk), request.user)
            self.message_user(request, f"Merged {queryset.count() - 1} duplicates into {keep}.", messages.SUCCESS)
            return None
        return _intermediate(self, request, queryset, "admin/papers/paper/merge.html", form, "Merge papers", "merge")

    def get_urls(self):
        return [
            path("add-from-arxiv/", self.admin_site.admin_view(self.add_from_arxiv), name="papers_paper_add_arxiv"),
            *super().get_urls(),
        ]

    def add_from_arxiv(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            return HttpResponse(status=403)
        form = AddFromArxivForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                paper, created = moderation.add_paper(form.cleaned_data["reference"], request.user)
            except moderation.ModerationError as exc:
                form.add_error("reference", str(exc))
            else:
                verb = "Added" if created else "Already here:"
                self.message_user(request, f"{verb} {paper}", messages.SUCCESS if created else messages.INFO)
                return redirect(reverse("admin:papers_paper_change", args=[paper.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Add a paper from arXiv",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/papers/paper/add_arxiv.html", context)


@admin.register(FetchRun)
class FetchRunAdmin(admin.ModelAdmin):
    list_display = ("source", "started_at", "status", "fetched", "created", "updated", "skipped", "errors", "problems")
    list_filter = ("status", "source")
    readonly_fields = [f.name for f in FetchRun._meta.fields]

    @admin.display(description="what went wrong")
    def problems(self, run: FetchRun) -> str:
        return "; ".join(run.messages[:3]) + (" …" if len(run.messages) > 3 else "")

    def has_add_permission(self, request) -> bool:
        return False
