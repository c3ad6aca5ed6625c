"""Subscribers: search and filters, CSV import and export, one reader's delivery history; the suppression list."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from subscribers.importing import ImportFileError, export_rows, import_subscribers, open_text, read_rows
from subscribers.models import Subscriber, Suppression, email_hash

# Uploads through the browser stay small; bigger lists go through `manage.py import_subscribers`.
UPLOAD_MAX_BYTES = 10 * 1024 * 1024


class InterestsFilter(admin.SimpleListFilter):
    title = "interests"
    parameter_name = "has_interests"

    def lookups(self, request, model_admin):
        return [("yes", "Has interests"), ("no", "Trending only (none)")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(interests="")
        if self.value() == "no":
            return queryset.filter(interests="")
        return queryset


class ImportForm(forms.Form):
    file = forms.FileField(help_text="CSV, UTF-8: a column `email`, optionally `interests`; or email,interests rows")
    confirmed = forms.BooleanField(
        required=False,
        label="I hold their consent",
        help_text="New readers start active. Unticked, they are pending until they confirm.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > UPLOAD_MAX_BYTES:
            raise forms.ValidationError(
                f"Larger than {UPLOAD_MAX_BYTES // (1024 * 1024)} MB: use `manage.py import_subscribers FILE.csv`."
            )
        return upload


def export_response(queryset) -> StreamingHttpResponse:
    response = StreamingHttpResponse(export_rows(queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="subscribers-{timezone.now():%Y%m%d-%H%M}.csv"'
    return response


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = (
        "email",
        "status",
        "short_interests",
        "frequency",
        "created_at",
        "requested_at",
        "confirmed_at",
        "history",
    )
    list_filter = ("status", InterestsFilter, "frequency", ("created_at", admin.DateFieldListFilter))
    search_fields = ("email", "interests")
    date_hierarchy = "created_at"
    actions = ["export_csv"]

    @admin.display(description="interests")
    def short_interests(self, subscriber: Subscriber) -> str:
        return subscriber.interests[:80] + ("…" if len(subscriber.interests) > 80 else "")

    @admin.display(description="deliveries")
    def history(self, subscriber: Subscriber) -> str:
        url = reverse("admin:newsletter_delivery_changelist") + f"?subscriber__exact={subscriber.pk}"
        return format_html('<a href="{}">history</a>', url)

    @admin.action(description="Export selected as CSV", permissions=["view"])
    def export_csv(self, request, queryset) -> StreamingHttpResponse:
        return export_response(queryset.order_by("pk"))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name="subscribers_subscriber_import"),
            path("export/", view(self.export_view), name="subscribers_subscriber_export"),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """Every subscriber the changelist shows with the same filters and search, as CSV."""
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        return export_response(self.get_changelist_instance(request).get_queryset(request).order_by("pk"))

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            return HttpResponse(status=403)
        form = ImportForm(request.POST or None, request.FILES or None)
        result = None
        if request.method == "POST" and form.is_valid():
            try:
                text = open_text(form.cleaned_data["file"].read())
                result = import_subscribers(read_rows(text), confirmed=form.cleaned_data["confirmed"])
            except ImportFileError as exc:
                form.add_error("file", str(exc))
            else:
                self.message_user(request, f"Import done: {result.summary()}", messages.SUCCESS)
        context = {
            **self.admin_site.each_context(request),
            "title": "Import subscribers from CSV",
            "form": form,
            "result": result,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/subscribers/subscriber/import.html", context)


class SuppressionForm(forms.ModelForm):
    """Operators type an address; only its hash is stored."""

    email = forms.EmailField(help_text="Stored as a hash only: the address cannot be read back.")

    class Meta:
        model = Suppression
        fields = ("email", "reason", "detail")

    def save(self, commit: bool = True) -> Suppression:
        self.instance.email_hash = email_hash(self.cleaned_data["email"])
        return super().save(commit)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if Suppression.objects.filter(email_hash=email_hash(email)).exists():
            raise forms.ValidationError("This address is already suppressed.")
        return email


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("short_hash", "reason", "detail", "created_at")
    list_filter = ("reason", ("created_at", admin.DateFieldListFilter))
    search_fields = ("email_hash", "detail")
    search_help_text = "Type a full address to find its suppression (addresses are stored hashed)."

    @admin.display(description="address hash", ordering="email_hash")
    def short_hash(self, suppression: Suppression) -> str:
        return suppression.email_hash[:16] + "…"

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = SuppressionForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ("email", "reason", "detail") if obj is None else ("email_hash", "reason", "detail", "created_at")

    def get_readonly_fields(self, request, obj=None):
        return ("email_hash", "created_at") if obj else ()

    def get_search_results(self, request, queryset, search_term):
        if "@" in search_term:
            return queryset.filter(email_hash=email_hash(search_term)), False
        return super().get_search_results(request, queryset, search_term)
