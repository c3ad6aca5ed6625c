from django.contrib import admin

from papers.models import FetchRun, Paper


@admin.register(Paper)
class PaperAdmin(admin.ModelAdmin):
    list_display = ("canonical_id", "title", "upvotes", "moderation", "pinned", "featured", "first_seen")
    list_filter = ("moderation", "pinned", "featured")
    search_fields = ("canonical_id", "title", "abstract")


@admin.register(FetchRun)
class FetchRunAdmin(admin.ModelAdmin):
    list_display = ("source", "started_at", "status", "fetched", "created", "updated", "skipped", "errors")
    list_filter = ("status", "source")
