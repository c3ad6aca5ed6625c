"""Digest review and send control, the delivery ledger, the audit trail, the dashboard; admin-wide settings."""

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from newsletter.backoffice import actions as digest_actions
from newsletter.backoffice import audit, dashboard
from newsletter.digests import states as digest_states
from newsletter.emails import textfmt
from newsletter.models import AuditEntry, Delivery, Digest, DigestPaper
from subscribers.models import Subscriber

admin.site.site_header = "Daily Papers admin"
admin.site.site_title = "Daily Papers admin"
admin.site.index_title = "Run the newsletter"
admin.site.index_template = "admin/daily_index.html"
admin.site.enable_nav_sidebar = False  # the queue and the preview need the width more than a second menu

# The editor's actions the admin offers, each: (function, past-tense message). Which of them a digest shows is
# the state table's answer (newsletter.digests.states.editor_actions); "send_test" has its own form.
DIGEST_ACTIONS = {
    "refresh": (digest_actions.refresh, "re-ranked with the papers as they are now"),
    "approve": (digest_actions.approve, "approved; each reader gets it at their delivery hour"),
    "pause": (digest_actions.pause, "paused"),
    "resume": (digest_actions.resume, "resumed"),
    "retry_failed": (digest_actions.retry_failed, "failed deliveries queued again"),
    "cancel": (digest_actions.cancel, "cancelled"),
}
NO_DIGEST_YET = "No digest for today yet: the daily job builds it right after the morning fetch."
PREVIEW_REFRESH_SECONDS = 5  # while a send runs, the preview page reloads to show progress


class DigestPaperInline(admin.TabularInline):
    model = DigestPaper
    extra = 0
    raw_id_fields = ("paper",)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.status in digest_actions.EDITABLE)

    def has_add_permission(self, request, obj=None) -> bool:
        return super().has_add_permission(request, obj) and (obj is None or obj.status in digest_actions.EDITABLE)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or obj.status in digest_actions.EDITABLE)


def preview_subscriber(request: HttpRequest) -> Subscriber:
    """The reader chosen for the preview, else an active one with interests, else a stand-in for the editor."""
    chosen = request.GET.get("subscriber", "").strip()
    if chosen:
        found = Subscriber.objects.filter(email__iexact=chosen).first()
        if found:
            return found
    active = Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).order_by("pk")
    return (
        active.exclude(interests="").first()
        or active.first()
        or Subscriber(email=request.user.email or "preview@example.com")
    )


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    list_display = (
        "date", "status", "pause_reason", "paper_count", "progress", "send_started_at", "sent_at", "preview_link"
    )  # fmt: skip
    list_filter = ("status",)
    date_hierarchy = "date"
    fields = ("date", "status", "pause_reason", "editor_note", "note_preview", "ledger", "send_started_at", "sent_at")
    readonly_fields = ("date", "status", "pause_reason", "note_preview", "ledger", "send_started_at", "sent_at")
    inlines = [DigestPaperInline]
    actions = ["approve_selected", "pause_selected", "resume_selected", "retry_failed_selected", "cancel_selected"]

    def has_add_permission(self, request) -> bool:
        return False  # digests are built by the daily job, or by "Preview today's digest"

    @admin.display(description="papers")
    def paper_count(self, digest: Digest) -> int:
        return digest.items.count()

    @admin.display(description="send progress")
    def progress(self, digest: Digest) -> str:
        summary = digest_actions.ledger_summary(digest)
        if not summary["total"]:
            return "–"
        return format_html(
            '<progress max="{}" value="{}"></progress> {}/{}',
            summary["total"],
            summary["done"],
            summary["done"],
            summary["total"],
        )

    @admin.display(description="preview")
    def preview_link(self, digest: Digest) -> str:
        return format_html('<a href="{}">Preview</a>', reverse("admin:newsletter_digest_preview", args=[digest.pk]))

    @admin.display(description="editor's note as readers will see it")
    def note_preview(self, digest: Digest) -> str:
        html = textfmt.note_html(digest.editor_note)
        return mark_safe(html) if html else "–"  # noqa: S308 - nh3 keeps only simple, attribute-free tags

    @admin.display(description="delivery ledger")
    def ledger(self, digest: Digest) -> str:
        return render_to_string("admin/newsletter/digest/_ledger.html", {"digest": digest, **self._ledger(digest)})

    def _ledger(self, digest: Digest) -> dict:
        summary = digest_actions.ledger_summary(digest)
        base = reverse("admin:newsletter_delivery_changelist") + f"?digest__id__exact={digest.pk}"
        summary["rows"] = [
            (label, summary["counts"][value], f"{base}&status__exact={value}")
            for value, label in Delivery.Status.choices
        ]
        summary["all_url"] = base
        return summary

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if change and "editor_note" in form.changed_data:
            audit.record(request.user, "edit_note", obj)

    def _bulk(self, request, queryset, name: str) -> None:
        function, done = DIGEST_ACTIONS[name]
        for digest in queryset:
            try:
                function(digest.pk, request.user)
            except digest_actions.ActionRefused as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                self.message_user(request, f"{digest} {done}.", messages.SUCCESS)

    @admin.action(description="Approve selected digests (sent at each reader's hour)", permissions=["change"])
    def approve_selected(self, request, queryset) -> None:
        self._bulk(request, queryset, "approve")

    @admin.action(description="Pause sending", permissions=["change"])
    def pause_selected(self, request, queryset) -> None:
        self._bulk(request, queryset, "pause")

    @admin.action(description="Resume sending", permissions=["change"])
    def resume_selected(self, request, queryset) -> None:
        self._bulk(request, queryset, "resume")

    @admin.action(description="Retry failed deliveries", permissions=["change"])
    def retry_failed_selected(self, request, queryset) -> None:
        self._bulk(request, queryset, "retry_failed")

    @admin.action(description="Cancel (stops for good)", permissions=["change"])
    def cancel_selected(self, request, queryset) -> None:
        self._bulk(request, queryset, "cancel")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboard_view), name="newsletter_dashboard"),
            path("today/", view(self.today_view), name="newsletter_digest_today"),
            path("<int:digest_id>/preview/", view(self.preview_view), name="newsletter_digest_preview"),
            path("<int:digest_id>/act/<str:name>/", view(self.act_view), name="newsletter_digest_act"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, title: str, **extra) -> dict:
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta, **extra}

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        context = self._context(request, "Dashboard", **dashboard.dashboard_context())
        return TemplateResponse(request, "admin/newsletter/dashboard.html", context)

    def today_view(self, request: HttpRequest) -> HttpResponse:
        """Shows today's digest and changes nothing (a cross-site page can send an editor's browser to this
        URL): re-ranking is the preview's "Re-rank the draft" action, a POST with its CSRF token."""
        if not self.has_change_permission(request):
            return HttpResponse(status=403)
        # Not built here: a digest built before the morning fetch would go out without the morning's papers.
        digest = Digest.objects.filter(date=timezone.now().date()).first()
        if digest is None:
            self.message_user(request, NO_DIGEST_YET, messages.INFO)
            return redirect("admin:newsletter_digest_changelist")
        return redirect("admin:newsletter_digest_preview", digest.pk)

    def preview_view(self, request: HttpRequest, digest_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        digest = get_object_or_404(Digest, pk=digest_id)
        subscriber = preview_subscriber(request)
        message = digest_actions.preview_email(digest, subscriber)
        html = next((body for body, kind in message.alternatives if kind == "text/html"), "")
        actions = [
            (name, digest_states.TABLE[name].label)
            for name in digest_states.editor_actions(digest.status)
            if name in DIGEST_ACTIONS
        ]
        context = self._context(
            request,
            f"Preview: {digest}",
            digest=digest,
            subscriber=subscriber,
            message=message,
            html=html,
            note=mark_safe(textfmt.note_html(digest.editor_note)),  # noqa: S308 - nh3-cleaned
            actions=actions if self.has_change_permission(request) else [],
            can_change=self.has_change_permission(request),
            refresh=PREVIEW_REFRESH_SECONDS if digest.status == Digest.Status.SENDING else None,
            readers=Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).order_by("email")[:200],
            **self._ledger(digest),
        )
        return TemplateResponse(request, "admin/newsletter/digest/preview.html", context)

    def act_view(self, request: HttpRequest, digest_id: int, name: str) -> HttpResponse:
        return require_POST(self._act)(request, digest_id, name)

    def _act(self, request: HttpRequest, digest_id: int, name: str) -> HttpResponse:
        if not self.has_change_permission(request) or name not in {*DIGEST_ACTIONS, "send_test"}:
            return HttpResponse(status=403)
        digest = get_object_or_404(Digest, pk=digest_id)
        try:
            if name == "send_test":
                subscriber = preview_subscriber(request)
                digest_actions.send_test(digest, subscriber, request.user.email, request.user)
                done = f"test sent to {request.user.email} (as {subscriber.email} sees it)"
            else:
                function, done = DIGEST_ACTIONS[name]
                function(digest.pk, request.user)
        except digest_actions.ActionRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, f"{digest}: {done}.", messages.SUCCESS)
        back = reverse("admin:newsletter_digest_preview", args=[digest.pk])
        chosen = request.GET.get("subscriber")
        return redirect(f"{back}?subscriber={chosen}" if chosen else back)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the system: anyone allowed may look, nobody edits them by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """The ledger, read-only: filter by digest and status, or open one reader's history from their page."""

    list_display = (
        "digest",
        "subscriber_email",
        "status",
        "attempts",
        "short_error",
        "next_attempt_at",
        "sent_at",
        "message_id",
    )
    list_filter = ("status", "digest")
    search_fields = ("subscriber__email", "message_id")
    list_select_related = ("digest", "subscriber")
    raw_id_fields = ("subscriber", "digest")

    @admin.display(description="subscriber", ordering="subscriber__email")
    def subscriber_email(self, delivery: Delivery) -> str:
        url = reverse("admin:newsletter_delivery_changelist") + f"?subscriber__exact={delivery.subscriber_id}"
        return format_html('<a href="{}" title="this reader\'s history">{}</a>', url, delivery.subscriber.email)

    @admin.display(description="error")
    def short_error(self, delivery: Delivery) -> str:
        return delivery.error[:120]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "action", "target_type", "target", "detail")
    list_filter = ("action", "target_type", "actor")
    search_fields = ("target_repr", "detail", "actor")
    date_hierarchy = "created_at"

    @admin.display(description="target", ordering="target_repr")
    def target(self, entry: AuditEntry) -> str:
        app_label, _, model_name = entry.target_type.partition(".")
        try:
            url = reverse(f"admin:{app_label}_{model_name}_change", args=[entry.target_id])
        except NoReverseMatch:
            return entry.target_repr
        return format_html('<a href="{}">{}</a>', url, entry.target_repr)
